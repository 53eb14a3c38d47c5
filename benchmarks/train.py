"""Training speed and memory: one ``train_model`` on a database of N customers.

    python benchmarks/train.py --customers 100000 [--database URL] [--max-rows N]

Without --database a temporary SQLite database with N synthetic customers is made. Prints the
phases and a last line of JSON with the training time and the peak resident memory of the
process (ru_maxrss), which includes reading every customer into a DataFrame.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database")
    parser.add_argument("--algorithm", default="auto", choices=("auto", "hgb", "logreg"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-rows", type=int, help="train on a seeded sample of this many")
    args = parser.parse_args()

    from churndesk.config import sqlite_url
    from churndesk.db.connect import open_database
    from churndesk.services.customer_frames import customer_count
    from churndesk.services.demo import create_demo_database
    from churndesk.services.models import train_model

    tmp = tempfile.TemporaryDirectory()
    url = args.database or sqlite_url(Path(tmp.name) / "train.sqlite3")
    engine = open_database(url).engine
    if customer_count(engine) == 0:
        started = time.perf_counter()
        create_demo_database(url, args.customers, seed=0)
        print(f"created {args.customers:,} customers in {time.perf_counter() - started:.1f} s")
    customers = customer_count(engine)
    phases: dict[str, float] = {}
    last = [time.perf_counter(), ""]

    def progress(fraction: float, text: str) -> None:
        if text != last[1]:
            now = time.perf_counter()
            if last[1]:
                phases[str(last[1])] = phases.get(str(last[1]), 0.0) + now - float(last[0])
            last[0], last[1] = now, text

    started = time.perf_counter()
    summary = train_model(
        engine,
        {"algorithm": args.algorithm, "folds": args.folds},
        max_rows=args.max_rows,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    progress(1.0, "")
    for phase, spent in sorted(phases.items(), key=lambda item: -item[1])[:6]:
        print(f"  {spent:7.1f} s  {phase}")
    print(
        f"trained {summary.label} ({summary.algorithm}) on {summary.training_rows:,} of "
        f"{customers:,} customers in {seconds:.1f} s, peak memory {peak_mb:.0f} MB, "
        f"ROC-AUC {summary.roc_auc:.3f}"
    )
    engine.dispose()
    tmp.cleanup()
    print(
        json.dumps(
            {
                "benchmark": "train",
                "database": engine.dialect.name,
                "customers": customers,
                "training_rows": summary.training_rows,
                "algorithm": summary.algorithm,
                "seconds": round(seconds, 1),
                "peak_rss_mb": round(peak_mb),
                "roc_auc": round(summary.roc_auc or 0.0, 4),
                "phases_s": {k: round(v, 1) for k, v in phases.items()},
            }
        )
    )


if __name__ == "__main__":
    main()

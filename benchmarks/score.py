"""End-to-end scoring speed: read, predict, drivers and atomic write of every customer.

    python benchmarks/score.py --customers 1000000 [--database URL]

Without --database a temporary SQLite database is made. A database without customers gets N
synthetic ones; one without a model gets a logistic-regression model trained on a 100,000
customer sample. Then one scoring run is timed, and the naive way on the same data: pd.read_sql
of the whole table, json.loads of every attribute document, predict_proba, and to_sql of the
scores (no drivers, no history). Prints figures and a last line of JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database")
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()

    from churndesk.config import sqlite_url
    from churndesk.db.connect import open_database
    from churndesk.services.customer_frames import customer_count
    from churndesk.services.demo import create_demo_database
    from churndesk.services.models import active_model, train_model
    from churndesk.services.scoring import score_all

    tmp = tempfile.TemporaryDirectory()
    url = args.database or sqlite_url(Path(tmp.name) / "score.sqlite3")
    database = open_database(url)
    engine = database.engine
    if customer_count(engine) == 0:
        started = time.perf_counter()
        create_demo_database(url, args.customers, seed=0)
        print(f"created {args.customers:,} customers in {time.perf_counter() - started:.1f} s")
    customers = customer_count(engine)
    if active_model(engine) is None:
        started = time.perf_counter()
        train_model(
            engine, {"algorithm": "logreg", "folds": 3, "importance_repeats": 1}, max_rows=100_000
        )
        print(f"trained a model on 100,000 customers in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    run = score_all(engine, actor="benchmark", after_run=lambda e, r: None)
    ours_s = time.perf_counter() - started
    print(f"scoring run of {run.customers_scored:,} customers: {ours_s:.1f} s")

    naive_s = None if args.skip_naive else naive_scoring_seconds(engine)
    if naive_s is not None:
        print(f"naive read_sql + predict_proba + to_sql: {naive_s:.1f} s")
    result = {
        "benchmark": "score",
        "database": engine.dialect.name,
        "customers": customers,
        "seconds": round(ours_s, 2),
        "customers_per_s": round(customers / ours_s),
        "naive_seconds": None if naive_s is None else round(naive_s, 2),
        "naive_over_ours": None if naive_s is None else round(naive_s / ours_s, 2),
    }
    engine.dispose()
    tmp.cleanup()
    print(json.dumps(result))


def naive_scoring_seconds(engine) -> float:
    """What a straightforward script does with the same model and data."""
    from churndesk.ml import features, scoring_math
    from churndesk.services.models import load_active_model

    loaded = load_active_model(engine)
    started = time.perf_counter()
    frame = pd.read_sql("SELECT * FROM customers", engine)
    attributes = frame["attributes"].map(lambda v: v if isinstance(v, dict) else json.loads(v))
    frame = pd.concat([frame.drop(columns=["attributes"]), pd.json_normalize(attributes)], axis=1)
    for column in ("signup_date",):
        frame[column] = pd.to_datetime(frame[column], errors="coerce")
    for column in ("churned_at", "created_at"):
        frame[column] = pd.to_datetime(frame[column], errors="coerce", utc=True)
    matrix = features.build_features(frame, loaded.model.schema)
    scores = scoring_math.risk_score(scoring_math.probabilities(loaded.model, matrix))
    pd.DataFrame({"customer_id": frame["id"], "score": scores}).to_sql(
        "naive_scores", engine, if_exists="replace", index=False, chunksize=50_000
    )
    seconds = time.perf_counter() - started
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE naive_scores")
    return seconds


if __name__ == "__main__":
    main()

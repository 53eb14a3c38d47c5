"""Write a synthetic customer CSV (e.g. 1,000,000 rows) and print how fast it was made."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

try:
    import churndesk  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without installing: use the repository copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from churndesk.errors import ChurndeskError
from churndesk.services import synthetic


def _progress(fraction: float, text: str) -> None:
    print(f"\r{fraction:6.1%}  {text:<60}", end="", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000, help="rows to generate")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    parser.add_argument("--out", type=Path, help="CSV file to write")
    parser.add_argument(
        "--generate-only",
        action="store_true",
        help="time generating the DataFrame chunks only, writing nothing",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.out is None and not args.generate_only:
        parser.error("--out is required unless --generate-only is given")
    progress = None if args.quiet else _progress

    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        if args.generate_only:
            rows = sum(
                len(chunk)
                for chunk in synthetic.generate_customers(
                    args.customers, args.seed, progress=progress
                )
            )
        else:
            rows = synthetic.write_csv(args.out, args.customers, args.seed, progress=progress)
    except ChurndeskError as error:
        print(f"\nerror: {error.user_message}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    if not args.quiet:
        print(file=sys.stderr)
    result = {
        "benchmark": "generate_customers" if args.generate_only else "write_csv",
        "rows": rows,
        "seed": args.seed,
        "seconds": round(seconds, 3),
        # CPU time of this process: less disturbed than wall time on a busy machine.
        "cpu_seconds": round(cpu_seconds, 3),
        "rows_per_s": round(rows / seconds) if seconds > 0 else None,
    }
    if not args.generate_only:
        result["out"] = str(args.out)
        result["bytes"] = args.out.stat().st_size
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

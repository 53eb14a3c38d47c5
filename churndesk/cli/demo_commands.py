"""``churndesk demo``: create a demo database (and open the app on it), or write demo CSV."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from churndesk.cli.context import CommandContext
from churndesk.cli.terminal import terminal_progress
from churndesk.config import DATABASE_URL_ENV, demo_database_path, sqlite_url
from churndesk.errors import ChurndeskError


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    demo = sub.add_parser(
        "demo",
        help="create a demo database with synthetic customers and open the app on it",
        parents=[parent],
    )
    demo.add_argument("--customers", type=_positive_int, default=5000, metavar="N")
    demo.add_argument("--seed", type=int, default=0, metavar="S")
    demo.add_argument("--no-gui", action="store_true", help="only create the database")
    demo.add_argument(
        "--no-model", action="store_true", help="skip training a model and scoring the demo"
    )
    demo.add_argument("--csv", type=Path, metavar="FILE", help="write the customers as CSV instead")
    demo.set_defaults(handler=demo_command)


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def demo_command(ctx: CommandContext) -> int:
    from churndesk.services import demo

    args = ctx.args
    if args.csv is not None:
        with terminal_progress(ctx) as progress:
            rows = demo.write_demo_csv(args.csv, args.customers, args.seed, progress=progress)
        ctx.emit(
            {"csv": str(args.csv), "customers": rows}, f"Wrote {rows:,} customers to {args.csv}"
        )
        return 0
    explicit = getattr(args, "database", None) or os.environ.get(DATABASE_URL_ENV)
    url = explicit or _fresh_demo_file()
    with terminal_progress(ctx) as progress:
        result = demo.create_demo_database(
            url, args.customers, args.seed, score=not args.no_model, progress=progress
        )
    ctx.emit(
        {"database": result.database, "customers": result.customers, "churned": result.churned},
        f"Demo database {result.database}: {result.customers:,} customers "
        f"({result.churned:,} churned).",
    )
    if args.no_gui:
        return 0
    from churndesk.ui.app import run_app

    return run_app(database_url=url)


def _fresh_demo_file() -> str:
    """The default demo database is recreated each time, so the demo always starts clean."""
    path = demo_database_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    except OSError as exc:
        raise ChurndeskError(f"Cannot create the demo database at {path}: {exc.strerror}.") from exc
    return sqlite_url(path)

"""Argument parsing, dispatch and the exit-code contract shared by every sub-command.

Exit codes: 0 success, 1 a user error (one line on stderr, never a traceback), 2 wrong usage
(argparse), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from churndesk import __version__
from churndesk.cli import (
    alert_commands,
    customers_commands,
    db_commands,
    demo_commands,
    import_commands,
    model_commands,
)
from churndesk.cli.context import CommandContext
from churndesk.config import DATABASE_URL_ENV
from churndesk.errors import ChurndeskError

log = logging.getLogger("churndesk.cli")

COMMAND_MODULES = (
    db_commands,
    demo_commands,
    import_commands,
    model_commands,
    customers_commands,
    alert_commands,
)


def common_options(*, suppress: bool) -> argparse.ArgumentParser:
    """Options accepted both before and after the sub-command.

    On sub-parsers the defaults are suppressed so that ``churndesk --json db current`` is not
    undone by the sub-parser's own default.
    """
    default = argparse.SUPPRESS if suppress else None
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--database",
        metavar="URL",
        default=default,
        help=f"database URL or SQLite file (default: ${DATABASE_URL_ENV}, then the local file)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print machine-readable JSON",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="log more (repeat for debug)",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="churndesk",
        description="Customer churn prediction and risk monitoring. "
        "With no command, opens the desktop app.",
        parents=[common_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"churndesk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parent = common_options(suppress=True)
    for module in COMMAND_MODULES:
        module.register(sub, parent)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if args.command is None:
        from churndesk.ui.app import run_app  # Qt is imported only for the desktop app

        return run_app(database_url=args.database)
    context = CommandContext(args)
    try:
        return int(args.handler(context) or 0)
    except ChurndeskError as exc:
        if exc.details:
            log.debug("details: %s", exc.details)
        print(f"churndesk: {exc.user_message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("churndesk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        context.close()


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    sys.exit(main())

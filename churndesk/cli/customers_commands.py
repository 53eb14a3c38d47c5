"""``churndesk customers list|show|export``: read the customer base from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import unicodedata
from pathlib import Path
from typing import Any

from churndesk.cli.context import CommandContext
from churndesk.plurals import counted

LIST_COLUMNS = (
    ("external_id", "Customer ID", 12),
    ("name", "Name", 28),
    ("segment", "Segment", 14),
    ("plan", "Plan", 14),
    ("status", "Status", 8),
    ("monthly_revenue", "Revenue", 9),
    ("risk_score", "Risk", 5),
    ("risk_band", "Band", 8),
    ("owner", "Owner", 8),
)


# Sort columns whose natural reading order is largest first.
_LARGEST_FIRST = ("risk_score", "risk_band", "revenue_at_risk", "monthly_revenue", "updated_at")


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    customers = sub.add_parser(
        "customers", help="list, show and export customers", parents=[parent]
    )
    actions = customers.add_subparsers(dest="customers_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list customers (filtered, sorted)", parents=[parent])
    _view_options(listing)
    listing.add_argument("--limit", type=_positive_int, default=50, metavar="N")
    listing.set_defaults(handler=list_command)

    show = actions.add_parser("show", help="show one customer", parents=[parent])
    show.add_argument("external_id", metavar="EXTERNAL_ID")
    show.set_defaults(handler=show_command)

    export = actions.add_parser(
        "export",
        help="export customers as CSV (the layout 'churndesk import customers' reads back)",
        parents=[parent],
    )
    export.add_argument("file", type=Path, metavar="FILE")
    _view_options(export, default_sort="id")
    export.add_argument(
        "--excel", action="store_true", help="start the file with a UTF-8 BOM for Excel"
    )
    export.set_defaults(handler=export_command)


def _view_options(parser: argparse.ArgumentParser, default_sort: str = "risk_score") -> None:
    parser.add_argument("--search", default="", help="text in name, e-mail or customer ID")
    parser.add_argument("--segment")
    parser.add_argument("--plan")
    parser.add_argument("--band", help="low, medium, high or critical")
    parser.add_argument("--status", help="active or churned")
    parser.add_argument("--owner")
    parser.add_argument("--risk-min", type=float, metavar="SCORE")
    parser.add_argument("--risk-max", type=float, metavar="SCORE")
    parser.add_argument("--sort", default=default_sort, metavar="COLUMN")
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--ascending", action="store_true", help="smallest first")
    order.add_argument(
        "--descending",
        action="store_true",
        help="largest first (the default for scores and amounts; text and ids sort A to Z)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _query(args: argparse.Namespace) -> Any:
    from churndesk.db.queries.customers import CustomerQuery

    if args.ascending or args.descending:
        descending = bool(args.descending)
    else:
        descending = args.sort in _LARGEST_FIRST
    return CustomerQuery(
        search=args.search,
        segment=args.segment,
        plan=args.plan,
        band=args.band,
        status=args.status,
        owner=args.owner,
        risk_min=args.risk_min,
        risk_max=args.risk_max,
        sort=args.sort,
        descending=descending,
    )


def _cell(value: Any, width: int) -> str:
    """A value fitted to a terminal column: control characters (newlines) become spaces."""
    if value is None:
        text = ""
    elif isinstance(value, float):
        text = f"{value:,.2f}" if width >= 9 else f"{value:.0f}"
    else:
        text = str(value)
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.ljust(width)


def list_command(ctx: CommandContext) -> int:
    from churndesk.db.queries.customers import count, customer_page

    query = _query(ctx.args)
    database = ctx.database()
    names = [c for c, _, _ in LIST_COLUMNS]
    with database.engine.connect() as connection:
        total = count(connection, query)
        page = customer_page(connection, query, limit=ctx.args.limit, columns=names)
    rows = [dict(zip(names, row, strict=True)) for row in page.rows]
    lines = ["  ".join(_cell(title, width) for _, title, width in LIST_COLUMNS).rstrip()]
    for row in rows:
        lines.append("  ".join(_cell(row[name], width) for name, _, width in LIST_COLUMNS).rstrip())
    lines.append(f"{len(rows):,} of {counted(total, 'customer')}")
    ctx.emit({"total": total, "customers": rows}, "\n".join(lines))
    return 0


def show_command(ctx: CommandContext) -> int:
    from churndesk.db.engine import session_factory
    from churndesk.services.customers import get_customer_by_external_id

    database = ctx.database()
    with session_factory(database.engine)() as session:
        record = get_customer_by_external_id(session, ctx.args.external_id)
    data = dict(record.__dict__)
    lines = []
    for key, value in data.items():
        if key == "attributes":
            continue
        shown = value.isoformat() if isinstance(value, dt.date) else value
        lines.append(f"{key:16} {'' if shown is None else shown}")
    for key, value in sorted(record.attributes.items()):
        lines.append(f"  {key:14} {'' if value is None else value}")
    ctx.emit(data, "\n".join(lines))
    return 0


def export_command(ctx: CommandContext) -> int:
    from churndesk.services.exporting import export_customers

    database = ctx.database()
    result = export_customers(
        database.engine, ctx.args.file, query=_query(ctx.args), excel_bom=ctx.args.excel
    )
    ctx.emit(
        {"file": str(result.path), "customers": result.rows, "columns": list(result.columns)},
        f"Exported {counted(result.rows, 'customer')} to {result.path}.",
    )
    return 0

"""``churndesk import customers FILE``: the CSV import with mapping and an error report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from churndesk.cli.context import CommandContext
from churndesk.cli.terminal import terminal_progress
from churndesk.plurals import counted

#: Row errors printed to the terminal when there is no --errors-out file.
SHOWN_ERRORS = 10


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    group = sub.add_parser("import", help="import data from files", parents=[parent])
    group_sub = group.add_subparsers(dest="import_command", metavar="WHAT", required=True)
    customers = group_sub.add_parser(
        "customers",
        help="import (insert or update by customer ID) customers from a CSV file",
        parents=[parent],
        description="Import customers from CSV. Known layouts (churndesk's own export, the "
        "IBM Telco sample) are mapped automatically; columns that are not mapped to a "
        "customer field are kept as attributes. Rows with errors are skipped and reported.",
    )
    customers.add_argument("file", type=Path, metavar="FILE")
    customers.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="take FIELD (external_id, name, email, segment, plan, country, signup_date, "
        "monthly_revenue, status, churned_at, owner) from COLUMN; FIELD= leaves it unmapped "
        "(repeatable)",
    )
    customers.add_argument(
        "--churn-value",
        action="append",
        default=None,
        metavar="VALUE",
        help="a status value meaning churned (repeatable; default: yes, true, 1, churned); "
        "any other value then means active",
    )
    customers.add_argument(
        "--all-or-nothing",
        action="store_true",
        help="import nothing if any row has an error (default: import the valid rows)",
    )
    customers.add_argument(
        "--errors-out", type=Path, metavar="FILE", help="write every row error to this CSV file"
    )
    customers.add_argument(
        "--delimiter", metavar="CHAR", help="field delimiter (default: detected)"
    )
    customers.set_defaults(handler=import_customers_command)


def import_customers_command(ctx: CommandContext) -> int:
    from churndesk.services import importing

    args = ctx.args
    mapping = importing.parse_mapping(args.map)
    delimiter = _delimiter(args.delimiter)
    database = ctx.database()
    try:
        with terminal_progress(ctx) as progress:
            result = importing.import_customers(
                database.engine,
                args.file,
                mapping=mapping,
                churn_values=args.churn_value,
                all_or_nothing=args.all_or_nothing,
                errors_out=args.errors_out,
                delimiter=delimiter,
                progress=progress,
            )
    except importing.ImportRejected as exc:
        if ctx.json:
            ctx.emit(_json(exc.result), "")
        else:
            _print_errors(ctx, exc.result, stream=ctx.stderr)
        raise
    r = result
    human = (
        f"Imported {args.file} ({r.format.description}) into {database.display_name}: "
        f"{counted(r.rows, 'row')}, {r.inserted:,} inserted, {r.updated:,} updated, "
        f"{r.unchanged:,} unchanged, {r.rejected:,} rejected."
    )
    for warning in r.warnings:  # saved, but something after the commit went wrong
        print(f"warning: {warning}", file=ctx.stderr)
    if ctx.json:
        ctx.emit(_json(r), human)
    else:
        ctx.emit(None, human)
        _print_errors(ctx, r, stream=ctx.stdout)
    return 0


def _json(result: Any) -> dict[str, Any]:
    data = result.as_dict()
    data["first_errors"] = [error.__dict__ for error in result.errors[:100]]
    return data


def _print_errors(ctx: CommandContext, result: Any, *, stream: Any) -> None:
    if not result.error_count:
        return
    shown = result.errors if result.errors_path else result.errors[:SHOWN_ERRORS]
    if not result.errors_path:
        for error in shown:
            where = f"row {error.row}" + (f", column {error.column}" if error.column else "")
            print(f"  {where}: {error.reason}", file=stream)
        more = result.error_count - len(shown)
        if more > 0:
            print(f"  … and {more:,} more; use --errors-out FILE for the full report.", file=stream)
    else:
        print(
            f"Error report ({counted(result.error_count, 'error')}): {result.errors_path}",
            file=stream,
        )


def _delimiter(text: str | None) -> str | None:
    if text is None:
        return None
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(text.lower(), text)
    if len(value) != 1:
        from churndesk.errors import ValidationError

        raise ValidationError(f"The delimiter must be one character, not '{text}'.")
    return value

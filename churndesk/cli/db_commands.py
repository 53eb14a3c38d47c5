"""``churndesk db``: upgrade and current of the database schema, and the indexes an
interrupted import left to build."""

from __future__ import annotations

import argparse

from churndesk.cli.context import CommandContext
from churndesk.cli.terminal import terminal_progress
from churndesk.db import migrate
from churndesk.db.connect import open_database
from churndesk.errors import ChurndeskError
from churndesk.services.indexes import finish_indexes, indexes_to_build


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    db = sub.add_parser("db", help="database schema", parents=[parent])
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_sub.add_parser(
        "upgrade", help="upgrade the schema to this version of churndesk", parents=[parent]
    )
    upgrade.add_argument("--no-backup", action="store_true", help="skip the SQLite backup")
    upgrade.set_defaults(handler=upgrade_command)
    current = db_sub.add_parser("current", help="show the schema revision", parents=[parent])
    current.set_defaults(handler=current_command)
    indexes = db_sub.add_parser(
        "indexes",
        help="build the customer indexes an interrupted import left (PostgreSQL)",
        parents=[parent],
    )
    indexes.set_defaults(handler=indexes_command)


def upgrade_command(ctx: CommandContext) -> int:
    database = open_database(ctx.database_url, backup=not ctx.args.no_backup)
    try:
        data = {
            "database": database.display_name,
            "revision": migrate.head_revision(),
            "upgraded_from": database.upgraded_from,
            "backup": str(database.backup_path) if database.backup_path else None,
        }
        if database.upgraded_from is None:
            human = f"{database.display_name} is already up to date ({data['revision']})."
        else:
            human = (
                f"Upgraded {database.display_name} from "
                f"{database.upgraded_from or 'empty'} to {data['revision']}."
            )
            if data["backup"]:
                human += f"\nBackup: {data['backup']}"
        ctx.emit(data, human)
    finally:
        database.engine.dispose()
    return 0


def current_command(ctx: CommandContext) -> int:
    database = open_database(ctx.database_url, upgrade=False)
    try:
        current = migrate.current_revision(database.engine)
        head = migrate.head_revision()
        waiting = indexes_to_build(database.engine) if current == head else 0
        data = {
            "database": database.display_name,
            "revision": current,
            "head": head,
            "up_to_date": current == head,
            "indexes_to_build": waiting,
        }
        state = "up to date" if current == head else f"needs upgrade to {head}"
        human = f"{database.display_name}: revision {current or 'none'} ({state})"
        if waiting:
            human += (
                f"\n{waiting} customer indexes wait to be built after an interrupted import: "
                "run churndesk db indexes (searches and sorting are slow until then)."
            )
        ctx.emit(data, human)
    finally:
        database.engine.dispose()
    return 0


def indexes_command(ctx: CommandContext) -> int:
    engine = ctx.database().engine
    waiting = indexes_to_build(engine)
    with terminal_progress(ctx) as progress:
        problems = finish_indexes(engine, progress)
    left = indexes_to_build(engine)
    if problems:
        raise ChurndeskError(" ".join(problems))
    built = waiting - left
    human = (
        f"Built {built} customer indexes an interrupted import had left."
        if built
        else "No customer indexes were waiting to be built."
    )
    ctx.emit({"database": ctx.database().display_name, "built": built, "left": left}, human)
    return 0

"""``churndesk db``: upgrade, current and downgrade of the database schema."""

from __future__ import annotations

import argparse

from churndesk.cli.context import CommandContext
from churndesk.db import migrate
from churndesk.db.connect import open_database


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
        data = {
            "database": database.display_name,
            "revision": current,
            "head": head,
            "up_to_date": current == head,
        }
        state = "up to date" if current == head else f"needs upgrade to {head}"
        ctx.emit(data, f"{database.display_name}: revision {current or 'none'} ({state})")
    finally:
        database.engine.dispose()
    return 0

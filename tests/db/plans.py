"""What SQLite's planner will do with a statement, for tests that pin an index choice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection


def sqlite_plan(connection: Connection, stmt: Any) -> str:
    """The EXPLAIN QUERY PLAN details of ``stmt`` on ``connection``, joined into one line."""
    compiled = stmt.compile(dialect=connection.dialect)
    params = compiled.construct_params()
    plan = connection.exec_driver_sql(
        f"EXPLAIN QUERY PLAN {compiled}",
        tuple(params[name] for name in compiled.positiontup or ()),
    ).all()
    return " ".join(str(row[-1]) for row in plan)

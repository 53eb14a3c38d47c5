"""A one-glance summary of a database for the status bar and the start screens.

It runs when every desktop opens, so it must stay cheap at a million customers: on PostgreSQL a
count(*) reads the whole 2 GB table (seconds, and it held up the first rows of the table), so a
large table's size comes from the planner's estimate and is shown as approximate.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, exists, func, select, text

from churndesk.db.models import Customer, ModelVersion, ScoringRun

#: Below this many (estimated) customers PostgreSQL counts them exactly.
EXACT_COUNT_UP_TO = 100_000


@dataclass(frozen=True)
class Overview:
    customers: int
    churned: int | None  # None where counting them would cost a scan of a large table
    models: int
    scoring_runs: int
    customers_estimated: bool = False

    def customers_text(self) -> str:
        noun = "customer" if self.customers == 1 else "customers"
        about = "about " if self.customers_estimated else ""
        return f"{about}{self.customers:,} {noun}"


def _estimated_rows(connection: Connection, table: str) -> int | None:
    """PostgreSQL's estimate of a table's rows (None before the table was ever analysed)."""
    value = connection.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:table)"), {"table": table}
    ).scalar()
    return None if value is None or value < 0 else int(value)


def database_overview(engine: Engine) -> Overview:
    """Counts that tell which first step a new user needs (import, train, score)."""
    with engine.connect() as connection:
        models = connection.scalar(select(func.count()).select_from(ModelVersion)) or 0
        runs = connection.scalar(select(func.count()).select_from(ScoringRun)) or 0
        estimate = (
            _estimated_rows(connection, "customers")
            if connection.dialect.name == "postgresql"
            else None
        )
        if estimate is not None and estimate >= EXACT_COUNT_UP_TO:
            any_customer = connection.scalar(select(exists().select_from(Customer))) or False
            return Overview(estimate if any_customer else 0, None, models, runs, any_customer)
        customers = connection.scalar(select(func.count()).select_from(Customer)) or 0
        churned = (
            connection.scalar(
                select(func.count()).select_from(Customer).where(Customer.status == "churned")
            )
            or 0
        )
    return Overview(customers, churned, models, runs)

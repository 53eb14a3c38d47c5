"""A one-glance summary of a database for the status bar and the start screens."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from churndesk.db.models import Customer, ModelVersion, ScoringRun


@dataclass(frozen=True)
class Overview:
    customers: int
    churned: int
    models: int
    scoring_runs: int


def database_overview(engine: Engine) -> Overview:
    """Counts that tell which first step a new user needs (import, train, score)."""
    with engine.connect() as connection:
        customers = connection.scalar(select(func.count()).select_from(Customer)) or 0
        churned = (
            connection.scalar(
                select(func.count()).select_from(Customer).where(Customer.status == "churned")
            )
            or 0
        )
        models = connection.scalar(select(func.count()).select_from(ModelVersion)) or 0
        runs = connection.scalar(select(func.count()).select_from(ScoringRun)) or 0
    return Overview(customers, churned, models, runs)

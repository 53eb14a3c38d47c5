"""Helpers for the alert and notification tests: customers, users and simulated scoring runs.

Scoring runs are simulated the way the scoring service leaves them: a completed scoring_runs
row, one risk_scores row per scored customer, and the customers' current score, previous
score, band and revenue at risk updated.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, insert, select, text

from churndesk.config import sqlite_url
from churndesk.db.engine import make_engine
from churndesk.db.models import (
    Base,
    Customer,
    CustomerScore,
    ModelVersion,
    RiskScore,
    ScoringRun,
    User,
)
from churndesk.ml.scoring_math import band
from tests import pg
from tests.db.conftest import BACKENDS

T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module", params=BACKENDS)
def shared_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One migrated database per test module and backend; ``engine`` empties it per test.

    Creating and dropping a PostgreSQL database per test costs seconds on a shared machine;
    emptying the tables costs milliseconds.
    """
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp("alerts") / "alerts.sqlite3"
        shutil.copyfile(template, path)
        yield sqlite_url(path)
    else:
        with pg.scratch_database(request.getfixturevalue("pg_template")) as name:
            yield pg.sqlalchemy_url(pg.database_dsn(name))


def wipe(engine: Engine) -> None:
    """Delete every row of every table (ids start again at 1)."""
    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(t.name for t in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(delete(table))


@pytest.fixture
def engine(shared_db: str) -> Iterator[Engine]:
    engine = make_engine(shared_db)
    wipe(engine)
    yield engine
    engine.dispose()


def band_of(score: float) -> str:
    return str(band([score])[0])


class Scenario:
    """A small world of customers, users and scoring runs in one test database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._model_id: int | None = None

    def users(self, *specs: tuple[str, str, str | None]) -> None:
        """Add users as (username, role, e-mail) triples."""
        with self.engine.begin() as connection:
            for username, role, email in specs:
                connection.execute(insert(User).values(username=username, role=role, email=email))

    def customers(
        self,
        n: int,
        *,
        segment: str = "SMB",
        plan: str = "basic",
        owner: str | None = None,
        revenue: float = 100.0,
        name: str | None = None,
        names: list[str] | None = None,
        start: int = 0,
    ) -> list[int]:
        rows = [
            {
                "external_id": f"C{start + i:06d}",
                "name": names[i]
                if names
                else name
                if name is not None
                else f"Customer {start + i}",
                "segment": segment,
                "plan": plan,
                "owner": owner,
                "monthly_revenue": revenue,
                "status": "active",
                "attributes": {},
            }
            for i in range(n)
        ]
        with self.engine.begin() as connection:
            connection.execute(insert(Customer), rows)
            ids = connection.scalars(
                select(Customer.id)
                .where(Customer.external_id.in_([r["external_id"] for r in rows]))
                .order_by(Customer.id)
            ).all()
        return list(ids)

    def _model(self) -> int:
        if self._model_id is None:
            with self.engine.begin() as connection:
                self._model_id = connection.execute(
                    insert(ModelVersion).values(
                        name="churn",
                        version=1,
                        algorithm="logistic",
                        params={},
                        feature_schema={},
                        metrics={},
                        artifact=b"x",
                        sha256="0" * 64,
                        status="active",
                    )
                ).inserted_primary_key[0]
        assert self._model_id is not None
        return self._model_id

    def run(
        self,
        scores: Mapping[int, float],
        *,
        at: dt.datetime,
        psi: float | None = None,
    ) -> int:
        """A completed scoring run at ``at`` giving each customer in ``scores`` that score."""
        model = self._model()
        with self.engine.begin() as connection:
            run_id = connection.execute(
                insert(ScoringRun).values(
                    model_version_id=model,
                    status="completed",
                    started_at=at,
                    finished_at=at,
                    customers_scored=len(scores),
                    psi=psi,
                )
            ).inserted_primary_key[0]
            revenue = dict(
                connection.execute(
                    select(Customer.id, Customer.monthly_revenue).where(
                        Customer.id.in_(list(scores))
                    )
                ).all()
            )
            history = [
                {
                    "customer_id": cid,
                    "run_id": run_id,
                    "model_version_id": model,
                    "score": float(score),
                    "band": band_of(score),
                    "revenue_at_risk": round((revenue.get(cid) or 0) * 12 * score / 100, 2),
                    "scored_at": at,
                }
                for cid, score in scores.items()
            ]
            if history:
                connection.execute(insert(RiskScore), history)
                table = CustomerScore.__table__
                previous = dict(
                    connection.execute(
                        select(table.c.customer_id, table.c.risk_score).where(
                            table.c.customer_id.in_(list(scores))
                        )
                    ).all()
                )
                connection.execute(delete(table).where(table.c.customer_id.in_(list(scores))))
                connection.execute(
                    insert(table),
                    [
                        {
                            "customer_id": h["customer_id"],
                            "risk_score": h["score"],
                            "risk_score_prev": previous.get(h["customer_id"]),
                            "risk_band": h["band"],
                            "revenue_at_risk": h["revenue_at_risk"],
                            "scored_at": at,
                        }
                        for h in history
                    ],
                )
        return int(run_id)

    def count(self, model: type, **where: object) -> int:
        table = model.__table__  # type: ignore[attr-defined]
        query = select(func.count()).select_from(table)
        for key, value in where.items():
            query = query.where(table.c[key] == value)
        with self.engine.connect() as connection:
            return int(connection.scalar(query) or 0)


def ids_scores(ids: Iterable[int], score: float) -> dict[int, float]:
    return dict.fromkeys(ids, score)

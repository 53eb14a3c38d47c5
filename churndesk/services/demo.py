"""Create a demo database filled with a realistic synthetic customer base."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from churndesk.db.bulk import insert_rows
from churndesk.db.connect import Database, open_database
from churndesk.db.engine import begin_write
from churndesk.db.maintenance import refresh_statistics
from churndesk.db.models import Customer, User
from churndesk.errors import ConflictError
from churndesk.progress import ProgressFn, Throttled, check_cancel, stage
from churndesk.services import synthetic

# The generator emits the customer fields in table-column order, then the attributes.
CUSTOMER_COLUMNS = (*synthetic.CUSTOMER_FIELDS, "attributes")

# Below this the model would be trained on too few churned customers to mean anything.
MIN_CUSTOMERS_TO_SCORE = 1000

DEMO_USERS = (
    ("admin", "Administrator", "admin"),
    ("alice", "Alice Moreau", "analyst"),
    ("bob", "Bob Okafor", "analyst"),
    ("carol", "Carol Nguyen", "analyst"),
    ("viewer", "Read-only Viewer", "viewer"),
)


@dataclass(frozen=True)
class DemoResult:
    database: str
    customers: int
    churned: int


def create_demo_database(
    url: str,
    customers: int = 5000,
    seed: int = 0,
    *,
    score: bool = False,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> DemoResult:
    """Fill the database at ``url`` (upgrading it first) with ``customers`` demo customers.

    With ``score``, also train a model and score everyone, so the demo shows risk from the
    start. The database must have no customers yet. The customers are written in one
    transaction, so a cancel or an error there leaves the database as it was. Raises
    ConflictError if it already has customers, Cancelled on cancel.
    """
    report = Throttled(progress)
    database = open_database(url, progress=stage(report, 0.0, 0.05))
    try:
        fill_end = 0.5 if score else 1.0
        result = _fill(database, customers, seed, stage(report, 0.0, fill_end), cancel)
        if score and customers >= MIN_CUSTOMERS_TO_SCORE:
            _train_and_score(database, seed, stage(report, fill_end, 1.0), cancel)
        report(1.0, "Demo database ready")
        return result
    finally:
        database.engine.dispose()


def _train_and_score(
    database: Database, seed: int, report: ProgressFn, cancel: threading.Event | None
) -> None:
    """Give the demo a trained model and a scoring run, so every screen has something."""
    from churndesk.services.models import train_model
    from churndesk.services.scoring import score_all

    engine = database.engine
    params = {"folds": 3, "random_state": seed, "importance_repeats": 1}
    train_model(engine, params, actor="admin", progress=stage(report, 0.0, 0.6), cancel=cancel)
    score_all(engine, actor="admin", progress=stage(report, 0.6, 1.0), cancel=cancel)


def _fill(
    database: Database,
    customers: int,
    seed: int,
    report: ProgressFn,
    cancel: threading.Event | None,
) -> DemoResult:
    with begin_write(database.engine) as connection:
        existing = connection.scalar(select(func.count()).select_from(Customer))
        if existing:
            raise ConflictError(
                f"{database.display_name} already holds {existing:,} customers; the demo needs "
                "an empty database."
            )
        _ensure_users(connection)
        counts = {"rows": 0, "churned": 0}

        def rows() -> Iterator[tuple[Any, ...]]:
            for chunk in synthetic.generate_customers(customers, seed, cancel=cancel):
                check_cancel(cancel)
                counts["churned"] += int((chunk["status"] == "churned").sum())
                yield from frame_to_rows(chunk)
                counts["rows"] += len(chunk)
                report(0.05 + 0.95 * counts["rows"] / max(customers, 1), "Creating customers")

        insert_rows(connection, Customer.__tablename__, CUSTOMER_COLUMNS, rows())
        check_cancel(cancel)
    refresh_statistics(database.engine, "customers")
    return DemoResult(database.display_name, counts["rows"], counts["churned"])


def _ensure_users(connection: Any) -> None:
    have = set(connection.scalars(select(User.username)))
    for username, display, role in DEMO_USERS:
        if username not in have:
            connection.execute(
                User.__table__.insert().values(
                    username=username,
                    display_name=display,
                    role=role,
                    email=f"{username}@example.com",
                )
            )


def frame_to_rows(frame: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    """Turn a generated chunk into customer row tuples in CUSTOMER_COLUMNS order."""
    fields = [c for c in CUSTOMER_COLUMNS if c != "attributes"]
    attribute_columns = [c for c in frame.columns if c not in fields]
    signup = pd.to_datetime(frame["signup_date"], errors="coerce")
    churned = pd.to_datetime(frame["churned_at"], errors="coerce", utc=True)
    signup_values = [None if pd.isna(v) else v.date() for v in signup]
    churned_values = [None if pd.isna(v) else v.to_pydatetime() for v in churned]
    plain = {c: _plain(frame[c].tolist()) for c in fields if c not in ("signup_date", "churned_at")}
    attributes = frame[attribute_columns].to_dict("records")
    for i, attrs in enumerate(attributes):
        yield (
            plain["external_id"][i],
            plain["name"][i] or "",
            plain["email"][i],
            plain["segment"][i],
            plain["plan"][i],
            plain["country"][i],
            signup_values[i],
            plain["monthly_revenue"][i],
            plain["status"][i],
            churned_values[i],
            plain["owner"][i],
            {k: _json_value(v) for k, v in attrs.items()},
        )


def _plain(values: list[Any]) -> list[Any]:
    return [_json_value(v) for v in values]


def _json_value(value: Any) -> Any:
    """NaN and empty strings become None; numpy scalars become Python numbers."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str) and value == "":
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def write_demo_csv(
    path: Path,
    customers: int,
    seed: int = 0,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Write the same synthetic base as CSV (for import tests and the 1M benchmarks)."""
    return synthetic.write_csv(path, customers, seed, progress=progress, cancel=cancel)

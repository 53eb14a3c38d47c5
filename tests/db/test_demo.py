"""The demo database: realistic customers in one transaction, refusing a non-empty database."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from sqlalchemy import func, select

from churndesk.config import demo_database_path
from churndesk.db.engine import make_engine, session_factory, unit_of_work
from churndesk.db.models import Customer, User
from churndesk.errors import Cancelled, ConflictError
from churndesk.services.demo import create_demo_database


def _counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            total = connection.scalar(select(func.count()).select_from(Customer))
            churned = connection.scalar(
                select(func.count()).select_from(Customer).where(Customer.status == "churned")
            )
        return int(total or 0), int(churned or 0)
    finally:
        engine.dispose()


def test_demo_fills_an_empty_database(db_url: str) -> None:
    result = create_demo_database(db_url, 800, seed=3)
    assert (result.customers, result.churned) == _counts(db_url)
    assert result.customers == 800
    # The synthetic base churns like the Telco sample (26.5 %), give or take sampling noise.
    assert 0.18 < result.churned / result.customers < 0.35
    engine = make_engine(db_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            customer = session.scalars(select(Customer).where(Customer.status == "churned")).first()
            roles = {name: role for name, role in session.execute(select(User.username, User.role))}
    finally:
        engine.dispose()
    assert customer is not None
    assert customer.churned_at is not None
    assert customer.signup_date is not None
    assert customer.monthly_revenue is not None
    assert customer.monthly_revenue > 0
    assert {"Contract", "tenure", "InternetService"} <= set(customer.attributes)
    assert roles["admin"] == "admin"
    assert roles["viewer"] == "viewer"


def test_demo_refuses_a_database_with_customers(db_url: str) -> None:
    create_demo_database(db_url, 50, seed=1)
    with pytest.raises(ConflictError, match="already holds 50 customers"):
        create_demo_database(db_url, 50, seed=2)
    assert _counts(db_url)[0] == 50


def test_cancelled_demo_leaves_nothing_behind(db_url: str) -> None:
    cancel = threading.Event()

    def progress(fraction: float, text: str) -> None:
        if text == "Creating customers":
            cancel.set()

    with pytest.raises(Cancelled):
        create_demo_database(db_url, 300, seed=1, progress=progress, cancel=cancel)
    assert _counts(db_url) == (0, 0)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_demo_command_creates_the_default_demo_file(backend: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "churndesk", "demo", "--no-gui", "--customers", "300", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["customers"] == 300
    assert report["database"] == str(demo_database_path())
    # Running it again starts from a clean demo rather than refusing.
    again = subprocess.run(
        [sys.executable, "-m", "churndesk", "demo", "--no-gui", "--customers", "200", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert json.loads(again.stdout)["customers"] == 200

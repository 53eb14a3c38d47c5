"""Engine factory and unit of work: connection settings, no connect at creation, commit/rollback."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from churndesk.db.engine import make_engine, parse_url, session_factory, unit_of_work
from churndesk.db.models import Customer
from churndesk.errors import DatabaseUnavailable


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgres_sessions_run_without_jit_unless_asked(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
            assert connection.exec_driver_sql("SHOW application_name").scalar() == "churndesk"
        on = make_engine(db_url, connect_args={"options": "-c jit=on"})
        with on.connect() as connection:
            assert connection.exec_driver_sql("SHOW jit").scalar() == "on"
        on.dispose()
        # Options in the URL are kept, not replaced.
        mine = make_engine(f"{db_url}?options=-c%20statement_timeout%3D12345")
        with mine.connect() as connection:
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "12345ms"
            assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
        mine.dispose()
    finally:
        engine.dispose()


def test_postgres_urls_use_psycopg3_and_pre_ping() -> None:
    assert parse_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    engine = make_engine("postgresql://nobody@127.0.0.1:1/nothing")
    try:
        assert engine.pool._pre_ping  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_creating_an_engine_does_not_connect() -> None:
    # Port 1 on loopback is closed: connecting would fail, creating must not.
    engine = make_engine("postgresql://nobody@127.0.0.1:1/nothing")
    engine.dispose()


@pytest.mark.parametrize("url", ["mysql://x@y/z", "://no-scheme", "oracle://a@b/c"])
def test_unsupported_or_malformed_urls_are_explained(url: str) -> None:
    with pytest.raises(DatabaseUnavailable) as info:
        parse_url(url)
    assert "SQLite" in info.value.user_message or "not a database URL" in info.value.user_message


def _count(factory: object) -> int:
    with unit_of_work(factory) as session:  # type: ignore[arg-type]
        return session.scalar(select(func.count()).select_from(Customer)) or 0


def test_unit_of_work_commits_on_success_and_rolls_back_on_error(db_url: str) -> None:
    engine = make_engine(db_url)
    factory = session_factory(engine)
    try:
        with unit_of_work(factory) as session:
            session.add(Customer(external_id="kept", attributes={}))

        def failing_unit() -> None:
            with unit_of_work(factory) as session:
                session.add(Customer(external_id="dropped", attributes={}))
                session.flush()
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            failing_unit()
        with unit_of_work(factory) as session:
            ids = session.scalars(select(Customer.external_id)).all()
        assert ids == ["kept"]
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(Exception, match=r"(?i)foreign key"), engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO customer_scores (customer_id, risk_score, risk_band, scored_at) "
                    "VALUES (999, 50, 'medium', CURRENT_TIMESTAMP)"
                )
            )
    finally:
        engine.dispose()


def test_optimistic_locking_version_increments(db_url: str) -> None:
    engine = make_engine(db_url)
    factory = session_factory(engine)
    try:
        with unit_of_work(factory) as session:
            customer = Customer(external_id="v", attributes={})
            session.add(customer)
        assert customer.version == 1
        with unit_of_work(factory) as session:
            loaded = session.scalars(select(Customer)).one()
            loaded.name = "renamed"
        assert loaded.version == 2
    finally:
        engine.dispose()

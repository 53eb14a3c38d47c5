"""Migrations: empty to head and back on both databases, no drift from the models, safe reopen."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from churndesk.db import migrate
from churndesk.db.connect import open_database
from churndesk.db.engine import make_engine
from churndesk.db.migrate import include_object
from churndesk.db.models import Base
from churndesk.errors import SchemaError


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_to_head_and_back_down(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        assert set(Base.metadata.tables) <= _tables(empty_db_url)

        migrate.downgrade(engine, "base")
        assert migrate.current_revision(engine) is None
        assert _tables(empty_db_url) <= {"alembic_version"}

        migrate.upgrade(engine)
        assert set(Base.metadata.tables) <= _tables(empty_db_url)
    finally:
        engine.dispose()


def test_models_and_migrations_do_not_drift(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": include_object}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgres_has_trigram_search_indexes(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'customers'")
            ).all()
    finally:
        engine.dispose()
    trigram = {name: definition for name, definition in rows if name.endswith("_trgm")}
    assert set(trigram) == {
        "ix_customers_name_trgm",
        "ix_customers_email_trgm",
        "ix_customers_external_id_trgm",
    }
    assert all("gin_trgm_ops" in definition for definition in trigram.values())


def test_every_sortable_customer_column_has_a_column_id_index(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        inspector = inspect(engine)
        # (SQLite's filter indexes carry the other filter columns after the id: 0010.)
        customers = {tuple(ix["column_names"][:2]) for ix in inspector.get_indexes("customers")}
        scores = {tuple(ix["column_names"]) for ix in inspector.get_indexes("customer_scores")}
    finally:
        engine.dispose()
    for column in ("name", "segment", "plan", "status", "owner", "signup_date", "updated_at"):
        assert (column, "id") in customers, column
    for column in ("risk_score", "risk_band", "revenue_at_risk"):
        assert (column, "customer_id") in scores, column


def test_current_scores_move_to_their_own_table_and_back(empty_db_url: str) -> None:
    """0003 -> 0004 moves the current scores out of customers without touching the history,
    the alerts or the search index that reference customers; the downgrade moves them back."""
    engine = make_engine(empty_db_url)
    try:
        migrate.upgrade(engine, "0003")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO customers (id, external_id, name, status, attributes, risk_score, "
                    "risk_score_prev, risk_band, revenue_at_risk, scored_at) VALUES "
                    "(1, 'A-1', 'Ada Lovelace', 'active', '{}', 81.5, 70, 'critical', 12.5, "
                    "'2026-11-20 08:00:00'), (2, 'B-2', 'Bob Unscored', 'active', '{}', NULL, "
                    "NULL, NULL, NULL, NULL)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO model_versions (id, name, version, algorithm, params, "
                    "feature_schema, metrics, artifact, artifact_format, sha256, status) VALUES "
                    "(1, 'churn', 1, 'logreg', '{}', '{}', '{}', :blob, 'skops', 'x', 'active')"
                ),
                {"blob": b"x"},
            )
            connection.execute(
                text(
                    "INSERT INTO risk_scores (customer_id, model_version_id, score, band, "
                    "drivers, revenue_at_risk, scored_at) VALUES "
                    "(1, 1, 70, 'high', '[{\"feature\": \"plan\"}]', 10, '2026-11-19 08:00:00'),"
                    "(1, 1, 81.5, 'critical', '[{\"feature\": \"tenure\"}]', 12.5, "
                    "'2026-11-20 08:00:00')"
                )
            )
        migrate.upgrade(engine)
        with engine.connect() as connection:
            scores = connection.execute(
                text(
                    "SELECT customer_id, risk_score, risk_score_prev, risk_band, "
                    "revenue_at_risk FROM customer_scores"
                )
            ).all()
            history = connection.execute(text("SELECT count(*) FROM risk_scores")).scalar()
            columns = {c["name"] for c in inspect(connection).get_columns("customers")}
        assert [tuple(r) for r in scores] == [(1, 81.5, 70.0, "critical", 12.5)]
        assert history == 2
        with engine.connect() as connection:
            drivers = connection.execute(text("SELECT drivers FROM customer_scores")).scalar()
            history_columns = {c["name"] for c in inspect(connection).get_columns("risk_scores")}
        # The latest score's drivers move to the current score; history rows stay narrow.
        assert (json.loads(drivers) if isinstance(drivers, str) else drivers) == [
            {"feature": "tenure"}
        ]
        assert "drivers" not in history_columns
        assert "risk_score" not in columns
        if engine.dialect.name == "sqlite":
            with engine.begin() as connection:
                connection.execute(text("UPDATE customers SET name = 'Ada King' WHERE id = 1"))
                found = connection.execute(
                    text("SELECT rowid FROM customer_search WHERE customer_search MATCH 'King'")
                ).all()
            assert [tuple(r) for r in found] == [(1,)], "search triggers were not restored"

        migrate.downgrade(engine, "0003")
        with engine.connect() as connection:
            back = connection.execute(
                text("SELECT id, risk_score, risk_band FROM customers ORDER BY id")
            ).all()
            history = connection.execute(text("SELECT count(*) FROM risk_scores")).scalar()
        assert [tuple(r) for r in back] == [(1, 81.5, "critical"), (2, None, None)]
        assert history == 2
    finally:
        engine.dispose()


def test_history_loses_its_customer_index_and_gets_it_back(empty_db_url: str) -> None:
    """0007 drops the history's index and reference by customer; the downgrade restores both,
    first removing rows of customers that no longer exist (which the reference would refuse)."""
    engine = make_engine(empty_db_url)
    try:
        migrate.upgrade(engine, "0006")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO customers (id, external_id, name, status, attributes) VALUES "
                    "(1, 'A-1', 'Ada', 'active', '{}'), (2, 'B-2', 'Bob', 'active', '{}')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO risk_scores (customer_id, model_version_id, score, band, "
                    "scored_at) VALUES (1, 1, 70, 'high', '2026-11-19 08:00:00'), "
                    "(2, 1, 20, 'low', '2026-11-19 08:00:00')"
                )
            )
        migrate.upgrade(engine)
        found = inspect(engine)
        assert found.get_foreign_keys("risk_scores") == []
        assert "ix_risk_scores_customer_id_scored_at" not in {
            i["name"] for i in found.get_indexes("risk_scores")
        }
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM customers WHERE id = 2"))
            left = connection.execute(text("SELECT count(*) FROM risk_scores")).scalar()
        assert left == 2, "nothing cascades at head"

        migrate.downgrade(engine, "0006")
        with engine.begin() as connection:
            kept = connection.execute(text("SELECT customer_id FROM risk_scores")).scalars().all()
            connection.execute(text("DELETE FROM customers WHERE id = 1"))
            cascaded = connection.execute(text("SELECT count(*) FROM risk_scores")).scalar()
        assert kept == [1]
        assert cascaded == 0, "the restored reference cascades again"
        assert "ix_risk_scores_customer_id_scored_at" in {
            i["name"] for i in inspect(engine).get_indexes("risk_scores")
        }
    finally:
        engine.dispose()


def test_drivers_become_json_text_and_back(empty_db_url: str) -> None:
    """0008 (PostgreSQL): the current score's drivers go from jsonb to json and back, intact."""
    engine = make_engine(empty_db_url)
    drivers = [{"feature": "Contract", "direction": "+", "magnitude": 0.5}]
    try:
        migrate.upgrade(engine, "0007")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO customers (id, external_id, name, status, attributes) VALUES "
                    "(1, 'A-1', 'Ada', 'active', '{}')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO customer_scores (customer_id, risk_score, risk_band, drivers, "
                    "scored_at) VALUES (1, 81.5, 'critical', :d, '2026-11-20 08:00:00')"
                ),
                {"d": json.dumps(drivers)},
            )

        def stored() -> tuple[object, object]:
            with engine.connect() as connection:
                value = connection.execute(text("SELECT drivers FROM customer_scores")).scalar()
                kind = None
                if engine.dialect.name == "postgresql":
                    kind = connection.execute(
                        text(
                            "SELECT data_type FROM information_schema.columns WHERE "
                            "table_name = 'customer_scores' AND column_name = 'drivers'"
                        )
                    ).scalar()
            return (json.loads(value) if isinstance(value, str) else value), kind

        migrate.upgrade(engine)
        postgres = engine.dialect.name == "postgresql"
        assert stored() == (drivers, "json" if postgres else None)
        migrate.downgrade(engine, "0007")
        assert stored() == (drivers, "jsonb" if postgres else None)
    finally:
        engine.dispose()


def test_filter_indexes_carry_the_other_filters_and_back(empty_db_url: str) -> None:
    """0009 (PostgreSQL): a count over any mix of segment, plan, status and owner reads one
    index alone; the downgrade restores the plain (column, id) indexes."""
    engine = make_engine(empty_db_url)

    def definitions() -> dict[str, str]:
        with engine.connect() as connection:
            if engine.dialect.name != "postgresql":
                rows = connection.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'customers' "
                    "AND name LIKE 'ix_customers_%_id'"
                ).all()
            else:
                rows = connection.execute(
                    text(
                        "SELECT indexname, indexdef FROM pg_indexes "
                        "WHERE tablename = 'customers' AND indexname LIKE 'ix_customers_%_id'"
                    )
                ).all()
        return {name: sql for name, sql in rows}

    try:
        migrate.upgrade(engine, "0008")
        before = definitions()
        migrate.upgrade(engine, "0009")
        after = definitions()
        if engine.dialect.name == "postgresql":
            assert after["ix_customers_segment_id"].endswith(
                "(segment, id) INCLUDE (plan, status, owner)"
            )
            assert after["ix_customers_status_id"].endswith(
                "(status, id) INCLUDE (segment, plan, owner)"
            )
            assert after["ix_customers_country_id"] == before["ix_customers_country_id"]
            with engine.begin() as connection:
                connection.exec_driver_sql(
                    "INSERT INTO customers (external_id, name, status, segment, plan, owner, "
                    "attributes) SELECT 'c' || i, 'N', CASE WHEN mod(i, 3) = 0 THEN 'churned' "
                    "ELSE 'active' END, 'S' || mod(i, 4), 'P' || mod(i, 5), 'o' || mod(i, 6), "
                    "'{}' "
                    "FROM generate_series(1, 2000) AS i"
                )
            with engine.connect() as connection:
                autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
                autocommit.exec_driver_sql("VACUUM (ANALYZE) customers")
                # Forbid the other ways, to see that this one exists for the combination.
                connection.exec_driver_sql("SET enable_seqscan = off")
                connection.exec_driver_sql("SET enable_bitmapscan = off")
                plan = "\n".join(
                    connection.execute(
                        text(
                            "EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM customers "
                            "WHERE plan = 'P2' AND status = 'active' AND owner = 'o1'"
                        )
                    ).scalars()
                )
            assert "Index Only Scan using ix_customers_" in plan
            assert "Heap Fetches: 0" in plan
        else:
            assert after == before
        migrate.downgrade(engine, "0008")
        assert definitions() == before
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_filter_indexes_cover_the_other_filters_and_back(empty_db_url: str) -> None:
    """0010: SQLite counts any mix of segment, plan, status and owner from one covering index
    (trailing key columns after the id, as it has no INCLUDE); keyset order by (column, id) is
    unchanged; the downgrade restores the definitions 0001 wrote."""
    engine = make_engine(empty_db_url)

    def definitions() -> dict[str, str]:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'customers' "
                "AND name LIKE 'ix_customers_%_id'"
            ).all()
        return {name: sql for name, sql in rows}

    def plan(sql: str) -> str:
        with engine.connect() as connection:
            return " ".join(
                row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
            )

    count = (
        "SELECT count(*) FROM customers WHERE plan = 'P2' AND status = 'active' AND owner = 'o1'"
    )
    try:
        migrate.upgrade(engine, "0009")
        before = definitions()
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
                "INSERT INTO customers (external_id, name, status, segment, plan, owner, "
                "attributes) SELECT 'c' || i, 'N', CASE WHEN i % 3 = 0 THEN 'churned' "
                "ELSE 'active' END, 'S' || (i % 4), 'P' || (i % 5), 'o' || (i % 6), '{}' FROM n"
            )
            connection.exec_driver_sql("ANALYZE")
        assert "COVERING INDEX" not in plan(count)
        page = "SELECT id FROM customers WHERE plan = 'P2' ORDER BY plan, id LIMIT 50"
        with engine.connect() as connection:
            expected = connection.exec_driver_sql(page).scalars().all()
        migrate.upgrade(engine)
        after = definitions()
        assert after["ix_customers_segment_id"].endswith(
            'ON customers (segment, id, "plan", status, owner)'
        )
        assert after["ix_customers_country_id"] == before["ix_customers_country_id"]
        assert "COVERING INDEX ix_customers_" in plan(count)
        with engine.connect() as connection:
            assert connection.exec_driver_sql(count).scalar() == len(
                [i for i in range(1, 2001) if i % 5 == 2 and i % 3 and i % 6 == 1]
            )
            assert connection.exec_driver_sql(page).scalars().all() == expected
        assert "ix_customers_plan_id" in plan(page)
        migrate.downgrade(engine, "0009")
        assert definitions() == before
    finally:
        engine.dispose()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_opening_a_database_at_head_changes_nothing(db_url: str) -> None:
    path = Path(db_url.removeprefix("sqlite:///"))
    before = _sha256(path)
    database = open_database(db_url)
    database.engine.dispose()
    assert database.upgraded_from is None
    assert database.backup_path is None
    assert _sha256(path) == before
    assert not list(path.parent.glob("*.backup-*"))


def test_open_upgrades_an_empty_database(empty_db_url: str) -> None:
    database = open_database(empty_db_url)
    try:
        assert database.upgraded_from == ""
        assert migrate.current_revision(database.engine) == migrate.head_revision()
    finally:
        database.engine.dispose()


def test_database_from_a_newer_churndesk_is_refused_untouched(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff9999'"))
    engine.dispose()
    with pytest.raises(SchemaError, match="newer version of churndesk"):
        open_database(db_url)
    engine = make_engine(db_url)
    try:
        assert migrate.current_revision(engine) == "ffff9999"
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_backup_is_a_consistent_copy(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO customers (external_id, attributes) VALUES ('c-1', '{}')")
        )
    backup = migrate.backup_sqlite(engine, migrate.head_revision())
    engine.dispose()
    assert backup is not None
    assert backup.exists()
    copy = make_engine(f"sqlite:///{backup}")
    try:
        with copy.connect() as connection:
            assert connection.scalar(text("SELECT external_id FROM customers")) == "c-1"
    finally:
        copy.dispose()


def test_schema_version_constant_names_the_newest_migration() -> None:
    from churndesk.db.schema_version import HEAD_REVISION

    assert migrate.head_revision() == HEAD_REVISION

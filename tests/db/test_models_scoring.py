"""Training from the database, the model registry, and atomic scoring runs on both databases."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from churndesk.config import sqlite_url
from churndesk.db.engine import make_engine
from churndesk.db.queries.customers import CustomerQuery, view_statements
from churndesk.errors import Cancelled, ChurndeskError, ConflictError, ValidationError
from churndesk.services import models, scoring
from churndesk.services.importing import import_customers
from churndesk.services.settings import ScoringSettings, save_scoring_settings
from tests import pg
from tests.conftest import TELCO_CSV
from tests.db.plans import sqlite_plan

FAST = {"folds": 3, "hgb_max_iter": 60, "importance_repeats": 1}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def telco_template(request, tmp_path_factory) -> Iterator[str]:
    """A database holding the imported Telco customers and one trained, active model."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("telco")
        url = sqlite_url(folder / "telco.sqlite3")
        shutil.copyfile(request.getfixturevalue("sqlite_template"), folder / "telco.sqlite3")
        _prepare(url)
        yield url
    else:
        template = request.getfixturevalue("pg_template")
        with pg.scratch_database(template) as name:
            url = pg.sqlalchemy_url(pg.database_dsn(name))
            _prepare(url)
            yield url


def _prepare(url: str) -> None:
    engine = make_engine(url)
    import_customers(engine, TELCO_CSV)
    models.train_model(engine, {**FAST, "algorithm": "logreg"}, actor="alice")
    engine.dispose()


@pytest.fixture
def engine(telco_template: str, tmp_path: Path) -> Iterator[Engine]:
    """A private copy of the trained Telco database for one test."""
    if telco_template.startswith("sqlite"):
        source = Path(telco_template.removeprefix("sqlite:///"))
        engine = make_engine(telco_template)  # checkpoint the WAL into the file first
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        copy = tmp_path / "copy.sqlite3"
        shutil.copyfile(source, copy)
        engine = make_engine(sqlite_url(copy))
        yield engine
        engine.dispose()
    else:
        name = telco_template.rsplit("/", 1)[1]
        with pg.scratch_database(name) as copy:
            engine = make_engine(pg.sqlalchemy_url(pg.database_dsn(copy)))
            yield engine
            engine.dispose()


def _scalar(engine: Engine, sql: str) -> object:
    with engine.connect() as connection:
        return connection.execute(text(sql)).scalar()


# --------------------------------------------------------------------------- models


def test_model_quality_on_the_telco_data_through_the_import(telco_template: str) -> None:
    engine = make_engine(telco_template)
    try:
        summary = models.train_model(engine, {"folds": 5}, actor="bob")
    finally:
        engine.dispose()
    assert 0.84 <= summary.roc_auc < 0.90  # above 0.90 on this data means a leak
    assert summary.brier <= 0.14
    assert summary.status == "candidate"  # an active model exists already
    assert summary.training_rows == 7043


def test_same_data_and_seed_give_the_same_artifact(engine: Engine) -> None:
    first = models.train_model(engine, FAST)
    second = models.train_model(engine, FAST)
    assert first.sha256 == second.sha256
    assert first.roc_auc == second.roc_auc


def test_promote_rollback_and_compare(engine: Engine) -> None:
    assert models.active_model(engine).version == 1
    candidate = models.train_model(engine, {**FAST, "algorithm": "hgb"}, actor="bob")
    assert candidate.status == "candidate"
    models.promote_model(engine, candidate.version, actor="carol")
    assert models.active_model(engine).version == candidate.version
    assert {m.version: m.status for m in models.list_models(engine)}[1] == "retired"
    back = models.rollback_model(engine, actor="carol")
    assert back.version == 1
    assert models.active_model(engine).version == 1
    comparison = models.compare_models(engine, 1, candidate.version)
    metrics = {row[0]: row for row in comparison.rows}
    assert metrics["roc_auc"][1] == pytest.approx(models.get_model(engine, 1).summary.roc_auc)
    assert metrics["brier"][3] == pytest.approx(metrics["brier"][2] - metrics["brier"][1])


def test_a_tampered_artifact_is_refused(engine: Engine) -> None:
    with engine.begin() as connection:
        blob = connection.execute(text("SELECT artifact FROM model_versions")).scalar()
        tampered = bytes(blob[:-10]) + bytes(b ^ 0xFF for b in blob[-10:])
        connection.execute(text("UPDATE model_versions SET artifact = :b"), {"b": tampered})
    with pytest.raises(ChurndeskError, match="does not match its recorded checksum"):
        models.load_active_model(engine)


def test_too_little_labelled_data_is_explained(db_url: str, tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    lines = TELCO_CSV.read_text(encoding="utf-8").splitlines()[:300]
    small.write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine = make_engine(db_url)
    try:
        import_customers(engine, small)
        with pytest.raises(ValidationError, match="400"):
            models.train_model(engine, FAST)
        assert models.list_models(engine) == []
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- scoring

# Every customer with their current scores (NULL when not scored yet).
CURRENT = "customers LEFT JOIN customer_scores ON customer_scores.customer_id = customers.id"


def test_a_run_scores_every_customer_once(engine: Engine) -> None:
    save_scoring_settings(engine, ScoringSettings(band_cutoffs=(30, 50, 70), horizon_months=6))
    run = scoring.score_all(engine, actor="alice", chunk_size=2000, after_run=lambda e, r: None)
    assert run.customers_scored == 7043
    assert sum(run.band_counts.values()) == 7043
    assert _scalar(engine, f"SELECT COUNT(*) FROM risk_scores WHERE run_id = {run.id}") == 7043
    assert _scalar(engine, "SELECT COUNT(DISTINCT customer_id) FROM risk_scores") == 7043
    assert _scalar(engine, f"SELECT COUNT(*) FROM {CURRENT} WHERE risk_score IS NULL") == 0
    wrong_band = _scalar(
        engine,
        f"SELECT COUNT(*) FROM {CURRENT} WHERE NOT ("
        "(risk_score < 30 AND risk_band = 'low') OR "
        "(risk_score >= 30 AND risk_score < 50 AND risk_band = 'medium') OR "
        "(risk_score >= 50 AND risk_score < 70 AND risk_band = 'high') OR "
        "(risk_score >= 70 AND risk_band = 'critical'))",
    )
    assert wrong_band == 0
    horizon_check = _scalar(
        engine,
        # The score is the probability rounded to 0.1 points, so allow 0.05 points of it.
        "SELECT MAX(ABS(revenue_at_risk - risk_score / 100.0 * monthly_revenue * 6) "
        f"- 0.0005 * monthly_revenue * 6) FROM {CURRENT}",
    )
    assert horizon_check <= 0.01
    with engine.connect() as connection:
        drivers = connection.execute(text("SELECT drivers FROM customer_scores LIMIT 50")).scalars()
        import json

        named = {
            d["feature"]
            for row in drivers
            for d in (json.loads(row) if isinstance(row, str) else row)
        }
    telco_columns = set(TELCO_CSV.read_text(encoding="utf-8").splitlines()[0].split(","))
    derived = {"tenure_months", "revenue_per_tenure_month", "tenure_bucket", "monthly_revenue"}
    assert named
    assert named <= telco_columns | derived
    runs = scoring.list_runs(engine)
    assert runs[0].status == "completed"
    assert runs[0].psi is not None


def test_second_run_keeps_the_previous_score(engine: Engine) -> None:
    scoring.score_all(engine, after_run=lambda e, r: None)
    models.train_model(engine, {**FAST, "algorithm": "hgb"}, promote=True)
    scoring.score_all(engine, after_run=lambda e, r: None)
    assert _scalar(engine, "SELECT COUNT(*) FROM risk_scores") == 2 * 7043
    assert _scalar(engine, f"SELECT COUNT(*) FROM {CURRENT} WHERE risk_score_prev IS NULL") == 0


@pytest.fixture(params=["in place", "replaced"])
def rewrite(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How runs write the current scores: as at this size, or as at a million (PostgreSQL writes
    a new table, SQLite rebuilds the score indexes) whatever the number of rewrites."""
    if request.param == "replaced":
        monkeypatch.setattr(scoring, "REBUILD_INDEXES_FROM", 1)
        monkeypatch.setattr(scoring, "REPLACE_SHARE", 0.0)
    return str(request.param)


def test_runs_rewrite_only_customers_whose_score_moved(engine: Engine, rewrite: str) -> None:
    """Same model, same data: the scores repeat, so a run appends history for everyone but
    rewrites only the customers whose current values (or trend) change."""

    def rewritten_by(run_id: int) -> set[int]:
        with engine.connect() as connection:
            finished = connection.execute(
                text("SELECT scored_at FROM risk_scores WHERE run_id = :r LIMIT 1"), {"r": run_id}
            ).scalar_one()
            ids = connection.execute(
                text("SELECT customer_id FROM customer_scores WHERE scored_at = :t"),
                {"t": finished},
            ).scalars()
            return set(ids)

    no_hook = {"after_run": lambda e, r: None}
    scoring.score_all(engine, **no_hook)
    second = scoring.score_all(engine, **no_hook)  # every trend goes from "none" to "flat"
    assert len(rewritten_by(second.id)) == 7043
    customer = int(_scalar(engine, "SELECT MIN(id) FROM customers"))
    before = _scalar(engine, f"SELECT revenue_at_risk FROM {CURRENT} WHERE id = {customer}")
    with engine.begin() as connection:  # changed behind the services' back: no rescore
        connection.execute(
            text("UPDATE customers SET monthly_revenue = monthly_revenue * 3 WHERE id = :i"),
            {"i": customer},
        )
    third = scoring.score_all(engine, **no_hook)
    assert rewritten_by(third.id) == {customer}
    assert _scalar(engine, f"SELECT revenue_at_risk FROM {CURRENT} WHERE id = {customer}") > before
    fourth = scoring.score_all(engine, **no_hook)
    assert rewritten_by(fourth.id) == {customer}  # its trend since the last run is flat again
    differs = "IS NOT" if engine.dialect.name == "sqlite" else "IS DISTINCT FROM"
    moved = f"SELECT COUNT(*) FROM {CURRENT} WHERE risk_score_prev {differs} risk_score"
    assert _scalar(engine, moved) == 0
    assert _scalar(engine, "SELECT COUNT(*) FROM risk_scores") == 4 * 7043
    assert scoring.list_runs(engine)[0].customers_scored == 7043


def test_a_run_refreshes_planner_statistics_for_the_risk_ordered_table(engine: Engine) -> None:
    """Without statistics SQLite served "active customers by risk" from the status index and
    sorted every active customer for the first screenful (0.4 s at a million)."""
    first_screen = CustomerQuery(status="active")  # the table's default view
    with engine.connect() as connection:
        stmt = view_statements(first_screen, connection.dialect.name)[0].limit(400)
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:  # forget what the import measured
            connection.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = 'customer_scores'")
    scoring.score_all(engine, chunk_size=2000, after_run=lambda e, r: None)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            details = sqlite_plan(connection, stmt)
            analysed = connection.exec_driver_sql(
                "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'customer_scores'"
            ).scalar()
            assert analysed
            assert "ix_customer_scores_risk_score_customer_id" in details
            assert "TEMP B-TREE" not in details
        else:
            scored = connection.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = 'customer_scores'")
            ).scalar()
            assert scored == 7043  # the statistics know every customer has a score
            visible, pages = connection.execute(
                text("SELECT relallvisible, relpages FROM pg_class WHERE relname = 'risk_scores'")
            ).one()
            # VACUUMed: the run's pages are all-visible, so the covering run index is read
            # without visiting the history rows.
            assert pages > 0 and visible == pages


def test_cancelled_run_leaves_nothing_visible(engine: Engine) -> None:
    cancel = threading.Event()

    def progress(fraction: float, message: str) -> None:
        if fraction > 0.2:
            cancel.set()

    with pytest.raises(Cancelled):
        scoring.score_all(engine, chunk_size=1000, progress=progress, cancel=cancel)
    assert _scalar(engine, "SELECT COUNT(*) FROM risk_scores") == 0
    assert _scalar(engine, "SELECT COUNT(*) FROM customer_scores") == 0
    assert scoring.list_runs(engine)[0].status == "cancelled"


def test_a_second_concurrent_run_is_refused(engine: Engine) -> None:
    # Hold the run lock the way a running desktop would, with a run row that names it.
    with scoring._run_lock(engine) as locked:
        assert locked
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO scoring_runs (model_version_id, status, started_by, started_at,"
                    " customers_scored, band_counts, score_distribution) VALUES "
                    "(1, 'running', 'carol', :t, 0, '{}', '{}')"
                ),
                {"t": "2026-11-26 08:30:00"},
            )
        expected = "started by carol at 2026-11-26 08:30 is in progress"
        with pytest.raises(ConflictError, match=expected):
            scoring.score_all(engine)
    # Once the holder is gone its run is marked failed and a new run goes ahead.
    run = scoring.score_all(engine, after_run=lambda e, r: None)
    statuses = [r.status for r in scoring.list_runs(engine)]
    assert statuses == ["completed", "failed"]
    assert run.customers_scored == 7043


KILLED_RUN = textwrap.dedent(
    """
    import sys
    from churndesk.db.engine import make_engine
    from churndesk.services.scoring import score_all

    def progress(fraction, message):
        if fraction > 0.3:
            print("HALFWAY", flush=True)
            sys.stdin.readline()  # wait here until the parent kills us

    score_all(make_engine(sys.argv[1]), chunk_size=500, progress=progress)
    """
)


def test_a_killed_run_leaves_the_previous_scores(engine: Engine) -> None:
    first = scoring.score_all(engine, after_run=lambda e, r: None)
    before = _scalar(engine, "SELECT SUM(risk_score) FROM customer_scores")
    url = engine.url.render_as_string(hide_password=False)
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "HALFWAY"
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
    assert _scalar(engine, "SELECT COUNT(*) FROM risk_scores") == 7043
    assert _scalar(engine, f"SELECT COUNT(*) FROM risk_scores WHERE run_id <> {first.id}") == 0
    assert _scalar(engine, "SELECT SUM(risk_score) FROM customer_scores") == before
    # The next run notices the dead one and goes ahead.
    scoring.score_all(engine, after_run=lambda e, r: None)
    statuses = [r.status for r in scoring.list_runs(engine)]
    assert statuses == ["completed", "failed", "completed"]


def test_an_edited_customer_is_rescored_at_once(engine: Engine) -> None:
    from churndesk.db.engine import session_factory
    from churndesk.services.customers import get_customer_by_external_id, update_customer

    with session_factory(engine)() as session:
        customer = get_customer_by_external_id(session, "7590-VHVEG")
    assert customer.risk_score is None
    updated = update_customer(
        engine,
        customer.id,
        {"monthly_revenue": 99.5},
        expected_version=customer.version,
    )
    assert updated.monthly_revenue == 99.5
    with session_factory(engine)() as session:
        rescored = get_customer_by_external_id(session, "7590-VHVEG")
    assert rescored.risk_score is not None
    assert rescored.risk_band is not None
    history = f"SELECT COUNT(*) FROM risk_scores WHERE customer_id = {customer.id}"
    assert _scalar(engine, history) == 1


def test_a_run_after_an_edit_leaves_the_rescored_customer_alone(engine: Engine) -> None:
    """A rescore writes the current score as a run would, drivers included, so the next run
    with the same model and data finds nothing to rewrite for that customer."""
    from churndesk.services.customers import update_customer

    scoring.score_all(engine, after_run=lambda e, r: None)
    scoring.score_all(engine, after_run=lambda e, r: None)  # trends flat
    customer = int(_scalar(engine, "SELECT MIN(id) FROM customers"))
    update_customer(engine, customer, {"name": "Renamed"}, expected_version=1)
    stamp = f"SELECT scored_at FROM customer_scores WHERE customer_id = {customer}"
    rescored_at = _scalar(engine, stamp)
    scoring.score_all(engine, after_run=lambda e, r: None)
    assert _scalar(engine, stamp) == rescored_at


def _score_table_schema(engine: Engine) -> dict[str, object]:
    from sqlalchemy import inspect

    found = inspect(engine)
    with engine.connect() as connection:
        grants = connection.execute(
            text(
                "SELECT pg_get_userbyid(c.relowner), a.grantee, a.privilege_type "
                "FROM pg_class c, aclexplode(c.relacl) a WHERE c.relname = 'customer_scores' "
                "ORDER BY 2, 3"
            )
        ).all()
    return {
        "columns": [
            (c["name"], str(c["type"]), c["nullable"], c["default"])
            for c in found.get_columns("customer_scores")
        ],
        "indexes": found.get_indexes("customer_scores"),
        "primary key": found.get_pk_constraint("customer_scores"),
        "foreign keys": found.get_foreign_keys("customer_scores"),
        "checks": found.get_check_constraints("customer_scores"),
        "grants": [tuple(g) for g in grants],
    }


@pytest.mark.parametrize("telco_template", ["postgresql"], indirect=True)
def test_a_new_current_scores_table_keeps_the_schema(engine: Engine, monkeypatch) -> None:
    """The table a large run writes on PostgreSQL has the old one's indexes, keys, checks,
    owner and grants under the same names; the migrations see no drift; deletes cascade."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from churndesk.db.migrate import include_object
    from churndesk.db.models import Base
    from churndesk.services.customers import delete_customer

    with engine.begin() as connection:
        connection.execute(text("GRANT SELECT ON customer_scores TO PUBLIC"))
    scoring.score_all(engine, after_run=lambda e, r: None)
    before = _score_table_schema(engine)
    oid = _scalar(engine, "SELECT CAST('customer_scores' AS regclass) :: oid")
    monkeypatch.setattr(scoring, "REBUILD_INDEXES_FROM", 1)
    monkeypatch.setattr(scoring, "REPLACE_SHARE", 0.0)
    scoring.score_all(engine, after_run=lambda e, r: None)  # every trend changes

    assert _scalar(engine, "SELECT CAST('customer_scores' AS regclass) :: oid") != oid
    assert _score_table_schema(engine) == before
    assert (0, "SELECT") in {(g[1], g[2]) for g in before["grants"]}  # PUBLIC
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_object}
        )
        assert compare_metadata(context, Base.metadata) == []
    assert _scalar(engine, "SELECT COUNT(*) FROM customer_scores") == 7043
    customer = int(_scalar(engine, "SELECT MIN(id) FROM customers"))
    delete_customer(engine, customer, expected_version=1)
    assert (
        _scalar(engine, f"SELECT COUNT(*) FROM customer_scores WHERE customer_id = {customer}") == 0
    )


@pytest.mark.parametrize("telco_template", ["postgresql"], indirect=True)
def test_another_desktops_prepared_queries_survive_the_new_table(engine: Engine, monkeypatch):
    """A desktop's connection keeps server-side prepared statements (psycopg prepares a query
    it repeats); after the swap they must read the new table, not fail on the dropped one."""
    import psycopg

    scoring.score_all(engine, after_run=lambda e, r: None)
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    query = "SELECT count(*), count(risk_score_prev) FROM customer_scores WHERE risk_score >= %s"
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as desktop:
        assert desktop.execute(query, (0,), prepare=True).fetchone() == (7043, 0)
        monkeypatch.setattr(scoring, "REBUILD_INDEXES_FROM", 1)
        monkeypatch.setattr(scoring, "REPLACE_SHARE", 0.0)
        scoring.score_all(engine, after_run=lambda e, r: None)  # every trend changes
        assert desktop.execute(query, (0,), prepare=True).fetchone() == (7043, 7043)


@pytest.mark.parametrize("telco_template", ["postgresql"], indirect=True)
def test_a_reader_in_the_old_table_makes_the_run_write_in_place(engine: Engine, monkeypatch):
    """An export reads the scores in one snapshot for minutes. Dropping the table would wait
    for it while every other desktop's reads queue behind: the run writes in place instead."""
    from churndesk.services import current_scores

    scoring.score_all(engine, after_run=lambda e, r: None)
    oid = _scalar(engine, "SELECT CAST('customer_scores' AS regclass) :: oid")
    monkeypatch.setattr(scoring, "REBUILD_INDEXES_FROM", 1)
    monkeypatch.setattr(scoring, "REPLACE_SHARE", 0.0)
    monkeypatch.setattr(current_scores, "SWAP_WAIT_MS", 200)
    outcome: list[object] = []
    with engine.connect() as export:
        export = export.execution_options(isolation_level="REPEATABLE READ")
        with export.begin():
            seen = export.execute(text("SELECT count(risk_score_prev) FROM customer_scores"))
            assert seen.scalar() == 0
            run = threading.Thread(
                target=lambda: outcome.append(
                    scoring.score_all(engine, after_run=lambda e, r: None)
                )
            )
            run.start()
            run.join(timeout=120)  # a swap waiting for this snapshot would never finish
            finished = not run.is_alive()
            again = export.execute(text("SELECT count(risk_score_prev) FROM customer_scores"))
            assert again.scalar() == 0  # the export's snapshot is untouched
    run.join()
    assert finished, "the run waited for the reader instead of writing in place"
    assert _scalar(engine, "SELECT CAST('customer_scores' AS regclass) :: oid") == oid
    assert _scalar(engine, "SELECT count(risk_score_prev) FROM customer_scores") == 7043
    assert _scalar(engine, "SELECT to_regclass('customer_scores_next') IS NULL") is True


@pytest.mark.parametrize("telco_template", ["postgresql"], indirect=True)
def test_a_failed_replacement_leaves_the_old_table(engine: Engine, monkeypatch) -> None:
    scoring.score_all(engine, after_run=lambda e, r: None)
    before = _scalar(engine, "SELECT SUM(risk_score_prev IS NULL :: int) FROM customer_scores")
    monkeypatch.setattr(scoring, "REBUILD_INDEXES_FROM", 1)
    monkeypatch.setattr(scoring, "REPLACE_SHARE", 0.0)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk filled up")

    monkeypatch.setattr(scoring.audit, "record", broken)  # after the swap, before COMMIT
    with pytest.raises(RuntimeError, match="disk filled"):
        scoring.score_all(engine, after_run=lambda e, r: None)
    assert before == 7043  # the first run left every trend empty...
    assert (
        _scalar(engine, "SELECT SUM(risk_score_prev IS NULL :: int) FROM customer_scores") == 7043
    )
    assert _scalar(engine, "SELECT to_regclass('customer_scores_next') IS NULL") is True
    assert [r.status for r in scoring.list_runs(engine)] == ["failed", "completed"]


def test_large_runs_on_sqlite_rebuild_the_score_indexes(engine: Engine, monkeypatch) -> None:
    from sqlalchemy import inspect

    monkeypatch.setattr(scoring, "REBUILD_INDEXES_FROM", 1000)
    scoring.score_all(engine, after_run=lambda e, r: None)
    names = {ix["name"] for ix in inspect(engine).get_indexes("customer_scores")}
    assert {
        "ix_customer_scores_risk_score_customer_id",
        "ix_customer_scores_risk_band_customer_id",
        "ix_customer_scores_revenue_at_risk_customer_id",
    } <= names
    assert _scalar(engine, f"SELECT COUNT(*) FROM {CURRENT} WHERE risk_score IS NULL") == 0

"""A customer's score history: read run by run from the run index, deleted with the customer."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import Engine, inspect, text

from churndesk.services import history
from churndesk.services.customer_views import customer_detail
from churndesk.services.customers import CustomerRecord, create_customer, delete_customer

TODAY = dt.date(2026, 11, 1)


def customer(engine: Engine, external_id: str) -> CustomerRecord:
    return create_customer(engine, {"external_id": external_id, "name": external_id}, today=TODAY)


def add_model_and_runs(engine: Engine, runs: int) -> list[int]:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO model_versions (id, name, version, algorithm, params, "
                "feature_schema, metrics, artifact, artifact_format, sha256, status) VALUES "
                "(1, 'churn', 3, 'logreg', '{}', '{}', '{}', :blob, 'skops', 'x', 'active')"
            ),
            {"blob": b"x"},
        )
        for run in range(1, runs + 1):
            connection.execute(
                text(
                    "INSERT INTO scoring_runs (id, model_version_id, status, customers_scored, "
                    "band_counts, score_distribution) VALUES (:id, 1, 'completed', 0, '{}', '{}')"
                ),
                {"id": run},
            )
    return list(range(1, runs + 1))


def add_history(engine: Engine, rows: list[tuple[int, int | None, float, str]]) -> None:
    """(customer id, run id or None for a rescore, score, scored_at) rows."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO risk_scores (customer_id, run_id, model_version_id, score, band, "
                "revenue_at_risk, scored_at) VALUES (:c, :r, 1, :s, 'low', NULL, :at)"
            ),
            [{"c": c, "r": r, "s": s, "at": at} for c, r, s, at in rows],
        )


def history_of(engine: Engine, customer_id: int) -> list[tuple[int, int | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT customer_id, run_id FROM risk_scores WHERE customer_id = :c"),
            {"c": customer_id},
        ).all()
    return sorted((tuple(r) for r in rows), key=repr)


def test_the_history_has_no_index_or_reference_by_customer(engine: Engine) -> None:
    """What makes appending a run cheap (migration 0007); a model or migration adding either back
    fails here before the scoring benchmark shows it."""
    found = inspect(engine)
    indexes = [tuple(i["column_names"]) for i in found.get_indexes("risk_scores")]
    assert indexes == [("run_id", "customer_id", "score", "band", "revenue_at_risk")]
    assert found.get_foreign_keys("risk_scores") == []


def test_detail_reads_runs_and_rescores_newest_last(engine: Engine) -> None:
    ada, bob = customer(engine, "ada"), customer(engine, "bob")
    add_model_and_runs(engine, 3)
    add_history(
        engine,
        [
            (ada.id, 1, 10.0, "2026-11-01 06:00:00"),
            (bob.id, 1, 99.0, "2026-11-01 06:00:00"),
            (ada.id, None, 20.0, "2026-11-01 12:00:00"),  # rescored after an edit
            (ada.id, 2, 30.0, "2026-11-02 06:00:00"),
            (bob.id, 2, 98.0, "2026-11-02 06:00:00"),
            (bob.id, None, 97.0, "2026-11-02 09:00:00"),
            (ada.id, 3, 40.0, "2026-11-03 06:00:00"),
        ],
    )

    detail = customer_detail(engine, ada.id)
    assert [p.score for p in detail.history] == [10.0, 20.0, 30.0, 40.0]
    assert {p.model_label for p in detail.history} == {"churn v3"}
    assert [p.score for p in customer_detail(engine, ada.id, history_limit=2).history] == [
        30.0,
        40.0,
    ]
    assert [p.score for p in customer_detail(engine, bob.id).history] == [99.0, 98.0, 97.0]


def test_deleting_a_customer_deletes_its_history_and_no_one_elses(engine: Engine) -> None:
    ada, bob = customer(engine, "ada"), customer(engine, "bob")
    add_model_and_runs(engine, 2)
    add_history(
        engine,
        [
            (ada.id, 1, 10.0, "2026-11-01 06:00:00"),
            (bob.id, 1, 50.0, "2026-11-01 06:00:00"),
            (ada.id, None, 20.0, "2026-11-01 12:00:00"),
            (bob.id, None, 51.0, "2026-11-01 12:00:00"),
            (ada.id, 2, 30.0, "2026-11-02 06:00:00"),
        ],
    )

    delete_customer(engine, ada.id, expected_version=1)

    assert history_of(engine, ada.id) == []
    assert history_of(engine, bob.id) == [(bob.id, 1), (bob.id, None)]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_deletion_waits_for_a_run_appending_history(engine: Engine) -> None:
    """A run appends rows for the customers its snapshot saw. A deletion committing between that
    snapshot and the run's commit would leave the deleted customer's rows behind for good."""
    ada = customer(engine, "ada")
    add_model_and_runs(engine, 2)
    errors: list[BaseException] = []

    def delete() -> None:
        try:
            delete_customer(engine, ada.id, expected_version=1)
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    with engine.connect() as run:
        history.lock_for_append(run)
        deleting = threading.Thread(target=delete)
        deleting.start()
        with engine.connect() as watcher:
            # Wait (bounded) until the deletion is queued behind the run's lock.
            for _ in range(2000):
                waiting = watcher.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND NOT granted AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
                if waiting:
                    break
                deleting.join(timeout=0.01)
            assert waiting == 1, "the deletion did not wait for the run"
        # The run's history INSERT joins customers: the customer is still there.
        run.execute(
            text(
                "INSERT INTO risk_scores (customer_id, run_id, model_version_id, score, band, "
                "scored_at) SELECT c.id, 2, 1, 42, 'low', now() FROM customers c WHERE c.id = :c"
            ),
            {"c": ada.id},
        )
        run.commit()
    deleting.join()

    assert errors == []
    assert history_of(engine, ada.id) == []

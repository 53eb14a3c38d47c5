"""Customer editing: validation, optimistic locking, audit, change events, the after-save hook."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from churndesk.db.engine import session_factory
from churndesk.db.models import AuditEntry, CustomerScore
from churndesk.errors import NotFoundError, StaleEditError, ValidationError
from churndesk.services import changes
from churndesk.services.customers import (
    CustomerRecord,
    create_customer,
    delete_customer,
    get_customer,
    get_customer_by_external_id,
    update_customer,
)

TODAY = dt.date(2026, 11, 1)


def new(engine: Engine, **values: object) -> CustomerRecord:
    base: dict[str, object] = {"external_id": "c-1", "name": "Ada Lovelace"}
    return create_customer(engine, {**base, **values}, actor="alice", today=TODAY)


def audit_entries(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_create_get_update_delete(engine: Engine) -> None:
    heard: list[changes.Changes] = []
    changes.add_listener(heard.append)
    try:
        record = new(
            engine,
            email=" ada@example.com ",
            signup_date="2024-02-29",
            monthly_revenue="49.999",
            status="churned",
            churned_at="2026-10-01T08:30:00+02:00",
            attributes={"tier": "gold", "seats": 3},
        )
        assert isinstance(record, CustomerRecord)
        assert record.email == "ada@example.com"
        assert record.monthly_revenue == 50.0
        assert record.signup_date == dt.date(2024, 2, 29)
        assert record.churned_at == dt.datetime(2026, 10, 1, 6, 30, tzinfo=dt.UTC)
        assert record.version == 1
        with session_factory(engine)() as session:
            assert get_customer(session, record.id) == record
            assert get_customer_by_external_id(session, " c-1 ").id == record.id

        updated = update_customer(
            engine,
            record.id,
            {"plan": "Fiber", "status": "active", "attributes": {"tier": "silver"}},
            expected_version=1,
            actor="bob",
            today=TODAY,
        )
        assert updated.version == 2
        assert (updated.plan, updated.status, updated.churned_at) == ("Fiber", "active", None)
        assert update_customer(engine, record.id, {"plan": "Fiber"}, expected_version=2) == updated

        delete_customer(engine, record.id, expected_version=2, actor="carol")
        with session_factory(engine)() as session, pytest.raises(NotFoundError):
            get_customer(session, record.id)
    finally:
        changes.remove_listener(heard.append)
    assert [c.customer_ids for c in heard] == [(record.id,)] * 3
    create, update, delete = audit_entries(engine)
    postgres = engine.dialect.name == "postgresql"
    assert (create.action, update.action, delete.action) == ("create", "update", "delete")
    if not postgres:  # on PostgreSQL the actor is always the database login
        assert (create.actor, update.actor, delete.actor) == ("alice", "bob", "carol")
    assert update.entity_id == str(record.id)
    assert update.changes["plan"] == [None, "Fiber"]
    assert update.changes["status"] == ["churned", "active"]
    assert update.changes["churned_at"][1] is None
    assert update.changes["attributes"] == [{"tier": "gold", "seats": 3}, {"tier": "silver"}]
    assert delete.changes["name"] == ["Ada Lovelace", None]


@pytest.mark.parametrize(
    ("values", "field", "reason"),
    [
        ({"external_id": "  "}, "external_id", "required"),
        ({"external_id": "x" * 65}, "external_id", "at most 64"),
        ({"email": "ada@"}, "email", "not an e-mail"),
        ({"monthly_revenue": -1}, "monthly_revenue", "negative"),
        ({"monthly_revenue": "abc"}, "monthly_revenue", "not a number"),
        ({"signup_date": "2026-11-03"}, "signup_date", "future"),
        ({"signup_date": dt.date(1850, 1, 1)}, "signup_date", "before 1900"),
        ({"name": "n" * 201}, "name", "201 characters long; at most 200"),
        ({"status": "gone"}, "status", "must be one of"),
        ({"churned_at": "2026-01-01"}, "churned_at", "Only a churned customer"),
        ({"attributes": {"x": float("nan")}}, "attributes", "only text, numbers"),
        ({"colour": "red"}, "colour", "not a customer field"),
    ],
)
def test_validation_messages(
    engine: Engine, values: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as info:
        new(engine, **values)
    assert field in info.value.field_errors
    assert reason in info.value.field_errors[field]
    assert reason in info.value.user_message or "fields need attention" in str(info.value)
    assert audit_entries(engine) == []


def test_duplicate_customer_id(engine: Engine) -> None:
    new(engine)
    with pytest.raises(ValidationError, match="already has the customer ID 'c-1'") as info:
        new(engine, name="Other")
    assert "external_id" in info.value.field_errors
    other = new(engine, external_id="c-2")
    with pytest.raises(ValidationError, match="already has"):
        update_customer(engine, other.id, {"external_id": "c-1"}, expected_version=1)


def test_two_sessions_editing_one_customer(engine: Engine) -> None:
    """Both open version 1; the first save wins, the second gets the conflict, nothing is lost."""
    record = new(engine)
    opened_by_a = opened_by_b = record
    barrier = threading.Barrier(2)
    outcome: dict[str, object] = {}

    def save(who: str, opened: CustomerRecord, change: dict[str, object]) -> None:
        barrier.wait()
        try:
            outcome[who] = update_customer(
                engine, opened.id, change, expected_version=opened.version
            )
        except StaleEditError as exc:
            outcome[who] = exc

    a = threading.Thread(target=save, args=("a", opened_by_a, {"plan": "A-plan"}))
    b = threading.Thread(target=save, args=("b", opened_by_b, {"segment": "B-segment"}))
    a.start()
    b.start()
    a.join()
    b.join()
    results = sorted(outcome.values(), key=lambda v: isinstance(v, StaleEditError))
    winner, loser = results
    assert isinstance(winner, CustomerRecord) and winner.version == 2
    assert isinstance(loser, StaleEditError)
    assert loser.current == winner  # the conflict carries the record as it is now
    with session_factory(engine)() as session:
        stored = get_customer(session, record.id)
    assert stored == winner
    assert (stored.plan is None) != (stored.segment is None)  # exactly one edit landed

    # Sequentially, too: an edit from an old version never overwrites a newer one.
    with pytest.raises(StaleEditError) as info:
        update_customer(engine, record.id, {"name": "Stale"}, expected_version=1)
    assert info.value.current == stored
    with pytest.raises(StaleEditError):
        delete_customer(engine, record.id, expected_version=1)
    with session_factory(engine)() as session:
        assert get_customer(session, record.id) == stored


def test_after_save_hook_runs_in_the_transaction(engine: Engine) -> None:
    calls: list[int] = []

    def rescore(session: Session, customer_id: int) -> None:
        calls.append(customer_id)
        session.add(
            CustomerScore(
                customer_id=customer_id,
                risk_score=42.0,
                risk_band="medium",
                scored_at=dt.datetime(2026, 11, 26, tzinfo=dt.UTC),
            )
        )
        session.flush()

    record = create_customer(
        engine, {"external_id": "h1"}, after_save=rescore, actor="x", today=TODAY
    )
    assert calls == [record.id]
    assert record.risk_score == 42.0

    def broken(session: Session, customer_id: int) -> None:
        raise RuntimeError("scoring failed")

    with pytest.raises(RuntimeError):
        update_customer(
            engine, record.id, {"name": "New"}, expected_version=record.version, after_save=broken
        )
    with session_factory(engine)() as session:
        assert get_customer(session, record.id).name == ""  # the edit rolled back with it


def test_awkward_values_round_trip(engine: Engine) -> None:
    name = '=HYPERLINK("http://x","y") <b>&amp;</b> "q" 😀 עברית\nline'
    record = new(engine, name=name, segment="<i>seg</i>", attributes={"note": name})
    with session_factory(engine)() as session:
        stored = get_customer(session, record.id)
    assert stored.name == name
    assert stored.segment == "<i>seg</i>"
    assert stored.attributes == {"note": name}

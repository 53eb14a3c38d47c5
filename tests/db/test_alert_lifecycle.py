"""Alert lifecycle, history and statistics on SQLite and PostgreSQL; rule edits with audit."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select

from churndesk.db.models import AuditEntry
from churndesk.errors import ConflictError, StaleEditError, ValidationError
from churndesk.services import alerts, notify
from churndesk.services.alerts import RuleSpec
from tests.db import test_alert_support as support
from tests.db.test_alert_support import T0, Scenario

# Fixtures shared by the alert and notification tests (one database per module, emptied per test).
engine = support.engine
shared_db = support.shared_db

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def raised(engine: Engine) -> list[int]:
    """Three open alerts of one rule, raised at T0."""
    world = Scenario(engine)
    world.users(("alice", "analyst", "alice@example.com"), ("bob", "analyst", None))
    alerts.create_rule(
        engine,
        RuleSpec(name="High", kind="score_threshold", params={"threshold": 80}, channels=()),
        actor="alice",
    )
    ids = world.customers(3)
    run = world.run(dict.fromkeys(ids, 90.0), at=T0)
    alerts.evaluate_rules(engine, run, now=T0)
    return sorted(a.id for a in alerts.alert_history(engine))


def test_lifecycle_records_who_when_and_notes(engine: Engine, raised: list[int]) -> None:
    first = raised[0]
    acked = alerts.acknowledge_alert(engine, first, actor="alice", note="on it", now=T0 + HOUR)
    assert (acked.status, acked.acknowledged_by, acked.note) == ("acknowledged", "alice", "on it")
    assigned = alerts.assign_alert(engine, first, "bob", actor="alice", now=T0 + 2 * HOUR)
    assert (assigned.status, assigned.assigned_to) == ("assigned", "bob")
    assert assigned.acknowledged_at == T0 + HOUR  # the first acknowledgement is kept
    assert [n.title for n in notify.unread_notifications(engine, "bob")] == [
        f"Assigned to you by alice: {assigned.title}"
    ]
    snoozed = alerts.snooze_alert(engine, first, T0 + 5 * HOUR, actor="bob", now=T0 + 3 * HOUR)
    assert (snoozed.status, snoozed.snoozed_until) == ("snoozed", T0 + 5 * HOUR)
    resolved = alerts.resolve_alert(engine, first, actor="bob", note="called", now=T0 + 4 * HOUR)
    assert (resolved.status, resolved.resolved_by, resolved.note) == ("resolved", "bob", "called")

    detail = alerts.get_alert(engine, first)
    steps = [(e.action, e.actor, e.at, e.note) for e in detail.events]
    assert steps == [
        ("acknowledged", "alice", T0 + HOUR, "on it"),
        ("assigned", "alice", T0 + 2 * HOUR, ""),
        ("snoozed", "bob", T0 + 3 * HOUR, ""),
        ("resolved", "bob", T0 + 4 * HOUR, "called"),
    ]
    with pytest.raises(ConflictError, match="already resolved"):
        alerts.acknowledge_alert(engine, first, actor="alice")
    with engine.connect() as connection:
        audited = connection.scalars(
            select(AuditEntry.action).where(AuditEntry.entity == "alert").order_by(AuditEntry.id)
        ).all()
    assert audited == ["acknowledged", "assigned", "snoozed", "resolved"]


def test_snooze_ends_and_validation(engine: Engine, raised: list[int]) -> None:
    alert_id = raised[1]
    with pytest.raises(ValidationError, match="future"):
        alerts.snooze_alert(engine, alert_id, T0, actor="alice", now=T0 + HOUR)
    with pytest.raises(ValidationError, match="no active user"):
        alerts.assign_alert(engine, alert_id, "mallory", actor="alice")
    alerts.snooze_alert(engine, alert_id, T0 + 2 * HOUR, actor="alice", now=T0 + HOUR)
    with engine.begin() as connection:
        assert alerts.wake_snoozed_alerts(connection, T0 + 2 * HOUR) == 1
    detail = alerts.get_alert(engine, alert_id)
    assert detail.alert.status == "open" and detail.alert.snoozed_until is None
    assert [e.action for e in detail.events] == ["snoozed", "unsnoozed"]


def test_history_filters_and_statistics(engine: Engine, raised: list[int]) -> None:
    a, b, c = raised
    alerts.acknowledge_alert(engine, a, actor="alice", now=T0 + HOUR)
    alerts.acknowledge_alert(engine, b, actor="alice", now=T0 + 3 * HOUR)
    alerts.resolve_alert(engine, b, actor="alice", now=T0 + 5 * HOUR)
    assert [x.id for x in alerts.alert_history(engine, statuses=["open"])] == [c]
    page = alerts.alert_history(engine, limit=2)
    assert [x.id for x in page] == [c, b]
    assert [x.id for x in alerts.alert_history(engine, before_id=b)] == [a]
    customer = alerts.get_alert(engine, a).alert.customer_id
    assert [x.id for x in alerts.alert_history(engine, customer_id=customer)] == [a]
    with pytest.raises(ValidationError):
        alerts.alert_history(engine, statuses=["closed"])

    stats = alerts.alert_statistics(engine, since=T0 - HOUR, until=T0 + 24 * HOUR)
    assert stats.total == 3
    assert stats.per_day == (("2025-03-03", 3),)
    assert [(name, n) for _, name, n in stats.per_rule] == [("High", 3)]
    assert stats.per_severity == {"info": 0, "warning": 3, "critical": 0}
    assert stats.per_status["open"] == 1 and stats.per_status["resolved"] == 1
    assert stats.mean_time_to_acknowledge_s == pytest.approx(2 * 3600)
    assert stats.mean_time_to_resolve_s == pytest.approx(5 * 3600)
    assert stats.unresolved_now == 2


def test_rule_edits_validate_audit_and_detect_stale_edits(engine: Engine) -> None:
    Scenario(engine).users(("alice", "analyst", "alice@example.com"))
    with pytest.raises(ValidationError) as info:
        alerts.create_rule(
            engine,
            RuleSpec(name="", kind="score_threshold", params={"threshold": 120}, channels=("sms",)),
            actor="alice",
        )
    assert set(info.value.field_errors) >= {"name", "threshold", "channels"}
    rule = alerts.create_rule(
        engine,
        RuleSpec(name="High", kind="score_threshold", params={"threshold": 80}),
        actor="alice",
    )
    with pytest.raises(ValidationError, match="already a rule"):
        alerts.create_rule(engine, rule.to_spec(), actor="alice")
    changed = alerts.update_rule(
        engine,
        rule.id,
        RuleSpec(name="Higher", kind="score_threshold", params={"threshold": 90}),
        actor="alice",
        expected_version=rule.version,
    )
    assert (changed.name, changed.params, changed.version) == ("Higher", {"threshold": 90}, 2)
    with pytest.raises(StaleEditError):
        alerts.update_rule(engine, rule.id, rule.to_spec(), actor="bob", expected_version=1)
    off = alerts.set_rule_enabled(engine, "Higher", False, actor="alice")
    assert off.enabled is False and off.version == 3
    with engine.connect() as connection:
        entries = connection.execute(
            select(AuditEntry.action, AuditEntry.changes).where(AuditEntry.entity == "alert_rule")
        ).all()
    assert [e.action for e in entries] == ["create", "update", "disable"]
    assert entries[1].changes["params"] == [{"threshold": 80}, {"threshold": 90}]


def test_deleting_a_rule_with_alerts_needs_force(engine: Engine, raised: list[int]) -> None:
    rule = alerts.get_rule(engine, "High")
    with pytest.raises(ConflictError, match="Disable it instead"):
        alerts.delete_rule(engine, rule.id, actor="alice")
    assert alerts.delete_rule(engine, rule.id, actor="alice", force=True) == 3
    assert alerts.alert_history(engine) == []

"""Rule evaluation on SQLite and PostgreSQL: each kind, scope, de-duplication, cool-down,
hysteresis, default rules, and alerts + outbox committed (or rolled back) together."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from churndesk.db.models import Alert, AlertRuleState, OutboxMessage
from churndesk.errors import ConflictError, NotFoundError
from churndesk.services import alert_evaluation, alerts
from churndesk.services.alerts import RuleSpec
from tests.db import test_alert_support as support
from tests.db.test_alert_support import T0, Scenario

# Fixtures shared by the alert and notification tests (one database per module, emptied per test).
engine = support.engine
shared_db = support.shared_db

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@pytest.fixture
def world(engine: Engine) -> Scenario:
    scenario = Scenario(engine)
    scenario.users(("alice", "analyst", "alice@example.com"), ("bob", "admin", None))
    return scenario


def rule(engine: Engine, kind: str, params: dict, **options: object) -> alerts.RuleView:
    spec = RuleSpec(name=options.pop("name", f"{kind} rule"), kind=kind, params=params, **options)  # type: ignore[arg-type]
    return alerts.create_rule(engine, spec, actor="alice")


def alert_customers(engine: Engine, rule_id: int) -> list[int]:
    found = alerts.alert_history(engine, rule_id=rule_id, limit=10_000)
    return sorted(a.customer_id for a in found if a.customer_id is not None)


def test_threshold_rule_alerts_each_customer_once(engine: Engine, world: Scenario) -> None:
    r = rule(engine, "score_threshold", {"threshold": 80})
    ids = world.customers(10)
    run = world.run({i: (85 if n < 4 else 50) for n, i in enumerate(ids)}, at=T0)
    result = alerts.evaluate_rules(engine, run, now=T0)
    assert result.per_rule == {r.id: 4}
    assert alert_customers(engine, r.id) == ids[:4]
    first = alerts.alert_history(engine, rule_id=r.id)[-1]
    assert first.details == {"value": 85, "threshold": 80}
    assert first.title == f"{r.name}: Customer 0"

    # Same scores next day: the alerts are still open, so nothing new (de-duplication).
    run2 = world.run({i: (86 if n < 4 else 50) for n, i in enumerate(ids)}, at=T0 + DAY)
    assert alerts.evaluate_rules(engine, run2, now=T0 + DAY).alerts_created == 0
    # Evaluating the same run again changes nothing either.
    assert alerts.evaluate_rules(engine, run2, now=T0 + DAY + HOUR).alerts_created == 0
    assert world.count(Alert) == 4


def test_scope_status_and_disabled_rules(engine: Engine, world: Scenario) -> None:
    scoped = rule(engine, "score_threshold", {"threshold": 70}, scope={"segment": "Enterprise"})
    owned = rule(engine, "score_threshold", {"threshold": 70}, name="Carol's",
                 scope={"owner": ["carol"], "plan": "gold"})  # fmt: skip
    off = rule(engine, "score_threshold", {"threshold": 10}, name="off", enabled=False)
    smb = world.customers(3, segment="SMB")
    ent = world.customers(3, segment="Enterprise", start=100)
    carol = world.customers(2, owner="carol", plan="gold", start=200)
    churned = world.customers(1, segment="Enterprise", start=300)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"UPDATE customers SET status = 'churned' WHERE id = {churned[0]}"
        )
    run = world.run(dict.fromkeys(smb + ent + carol + churned, 90.0), at=T0)
    result = alerts.evaluate_rules(engine, run, now=T0)
    assert alert_customers(engine, scoped.id) == ent
    assert alert_customers(engine, owned.id) == carol
    assert off.id not in result.per_rule


def test_hysteresis_and_cooldown(engine: Engine, world: Scenario) -> None:
    r = rule(engine, "score_threshold", {"threshold": 80}, hysteresis_margin=5, cooldown_hours=48)
    (cid,) = world.customers(1)
    at = T0

    def step(score: float, hours: float = 1) -> int:
        nonlocal at
        at += dt.timedelta(hours=hours)
        run = world.run({cid: score}, at=at)
        created = alerts.evaluate_rules(engine, run, now=at).alerts_created
        for alert in alerts.alert_history(engine, statuses=["open"]):
            alerts.resolve_alert(engine, alert.id, actor="alice", now=at)
        return created

    assert step(82) == 1
    assert step(77) == 0  # not below 80 - 5: stays disarmed
    assert step(83) == 0
    assert step(74) == 0  # re-arms
    assert step(84) == 0  # armed, but still within the 48 h cool-down
    assert step(85, hours=48) == 1  # cool-down over
    with engine.connect() as connection:
        armed = connection.execute(
            AlertRuleState.__table__.select().where(AlertRuleState.rule_id == r.id)
        ).one()
    assert armed.armed is False


def test_band_change_fires_on_entry_not_on_staying(engine: Engine, world: Scenario) -> None:
    r = rule(engine, "band_change", {"band": "high"}, hysteresis_margin=5)
    a, b, c = world.customers(3)
    run1 = world.run({a: 65, b: 45, c: 30}, at=T0)  # a already high on the first run
    assert alerts.evaluate_rules(engine, run1, now=T0).per_rule == {r.id: 1}
    run2 = world.run({a: 85, b: 62, c: 35}, at=T0 + DAY)  # a stays (now critical), b enters
    assert alerts.evaluate_rules(engine, run2, now=T0 + DAY).per_rule == {r.id: 1}
    assert alert_customers(engine, r.id) == sorted([a, b])
    details = alerts.alert_history(engine, rule_id=r.id)[0].details
    assert details["band"] == "high" and details["watched"] == "high"


def test_score_rise_within_days(engine: Engine, world: Scenario) -> None:
    r = rule(engine, "score_rise", {"points": 20, "days": 30})
    a, b, c = world.customers(3)
    world.run({a: 70, b: 30, c: 30}, at=T0 - 40 * DAY)  # outside the window
    world.run({a: 20, b: 30, c: 30}, at=T0 - 20 * DAY)  # the window's baseline
    world.run({a: 40, b: 45, c: 35}, at=T0 - 10 * DAY)
    run = world.run({a: 45, b: 51, c: 49}, at=T0)
    result = alerts.evaluate_rules(engine, run, now=T0)
    # a: 45 - 20 = 25; b: 51 - 30 = 21; c: 49 - 30 = 19.
    assert result.per_rule == {r.id: 2}
    assert alert_customers(engine, r.id) == sorted([a, b])
    detail = next(x for x in alerts.alert_history(engine, rule_id=r.id) if x.customer_id == a)
    assert detail.details["value"] == pytest.approx(25)
    assert detail.details["baseline"] == pytest.approx(20)


def test_rise_and_band_change_when_the_previous_run_is_also_the_baseline(
    engine: Engine, world: Scenario
) -> None:
    # Two runs only: yesterday's run is both the previous run (band changes) and the window's
    # baseline (rises); evaluation reads it once for both.
    rise = rule(engine, "score_rise", {"points": 20, "days": 30})
    band = rule(engine, "band_change", {"band": "critical"})
    a, b, c = world.customers(3)
    world.run({a: 20, b: 70, c: 85}, at=T0 - DAY)
    run = world.run({a: 45, b: 85, c: 90}, at=T0)
    result = alerts.evaluate_rules(engine, run, now=T0)
    assert alert_customers(engine, rise.id) == [a]  # 45 - 20; b rose 15, c 5
    assert alert_customers(engine, band.id) == [b]  # c was critical already
    assert result.per_rule == {rise.id: 1, band.id: 1}
    detail = alerts.alert_history(engine, rule_id=rise.id)[0]
    assert detail.details["baseline"] == pytest.approx(20)


def test_revenue_at_risk(engine: Engine, world: Scenario) -> None:
    r = rule(engine, "revenue_at_risk", {"amount": 1000})
    rich = world.customers(2, revenue=500)  # 500 × 12 × score/100
    poor = world.customers(2, revenue=10, start=50)
    run = world.run(dict.fromkeys(rich + poor, 50.0), at=T0)
    assert alerts.evaluate_rules(engine, run, now=T0).per_rule == {r.id: 2}
    assert alert_customers(engine, r.id) == rich
    assert r.hysteresis_margin == 100  # 10% of the amount by default


def test_model_drift_alerts_once_until_rearmed(engine: Engine, world: Scenario) -> None:
    r = rule(engine, "model_drift", {"psi": 0.2}, hysteresis_margin=0.05, cooldown_hours=1)
    (cid,) = world.customers(1)

    def run_with(psi: float, day: int) -> int:
        at = T0 + day * DAY
        run = world.run({cid: 50}, at=at, psi=psi)
        return alerts.evaluate_rules(engine, run, now=at).per_rule[r.id]

    assert run_with(0.1, 0) == 0
    assert run_with(0.3, 1) == 1
    drift = alerts.alert_history(engine, rule_id=r.id)[0]
    assert drift.customer_id is None and drift.details["psi"] == pytest.approx(0.3)
    alerts.resolve_alert(engine, drift.id, actor="alice", now=T0 + 1 * DAY + HOUR)
    assert run_with(0.25, 2) == 0  # resolved, but not re-armed (no run below 0.15)
    assert run_with(0.16, 3) == 0
    assert run_with(0.12, 4) == 0  # re-arms
    assert run_with(0.22, 5) == 1


def test_alerts_and_outbox_roll_back_together(
    engine: Engine, world: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule(engine, "score_threshold", {"threshold": 80}, channels=["inapp"], recipients=["*"])
    ids = world.customers(5)
    run = world.run(dict.fromkeys(ids, 90.0), at=T0)
    real = alert_evaluation.queue_alert_notifications

    def queue_then_fail(*args: object, **kwargs: object) -> int:
        assert real(*args, **kwargs) == 2  # type: ignore[arg-type]
        raise RuntimeError("the database connection dropped")

    monkeypatch.setattr(alert_evaluation, "queue_alert_notifications", queue_then_fail)
    with pytest.raises(RuntimeError):
        alerts.evaluate_rules(engine, run, now=T0)
    assert world.count(Alert) == world.count(OutboxMessage) == world.count(AlertRuleState) == 0
    monkeypatch.setattr(alert_evaluation, "queue_alert_notifications", real)
    result = alerts.evaluate_rules(engine, run, now=T0)
    assert (result.alerts_created, result.messages_queued) == (5, 2)
    assert world.count(OutboxMessage) == 2


def test_unknown_and_unfinished_runs_are_refused(engine: Engine, world: Scenario) -> None:
    with pytest.raises(NotFoundError):
        alerts.evaluate_rules(engine, 999, now=T0)
    run = world.run({}, at=T0)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE scoring_runs SET status = 'running' WHERE id = {run}")
    with pytest.raises(ConflictError, match="running"):
        alerts.evaluate_rules(engine, run, now=T0)


def test_default_rules_are_created_once(engine: Engine, world: Scenario) -> None:
    assert alerts.ensure_default_rules(engine) == 3
    assert alerts.ensure_default_rules(engine) == 0
    kinds = sorted(r.kind for r in alerts.list_rules(engine))
    assert kinds == ["band_change", "model_drift", "score_rise"]
    for r in alerts.list_rules(engine):
        alerts.delete_rule(engine, r.id, actor="alice")
    assert alerts.ensure_default_rules(engine) == 0  # deleted on purpose: they stay deleted
    assert alerts.list_rules(engine) == []


def test_default_rules_alert_out_of_the_box(engine: Engine, world: Scenario) -> None:
    alerts.ensure_default_rules(engine)
    ids = world.customers(4)
    world.run(dict.fromkeys(ids, 30.0), at=T0 - DAY, psi=0.01)
    run = world.run({ids[0]: 85, ids[1]: 55, ids[2]: 31, ids[3]: 30}, at=T0, psi=0.35)
    result = alerts.evaluate_rules(engine, run, now=T0)
    by_kind = {o.kind: o.alerts_created for o in result.rules}
    assert by_kind == {"band_change": 1, "score_rise": 2, "model_drift": 1}
    # In-app to every admin and analyst: alice and bob, one message per rule each.
    assert result.messages_queued == 6
    assert alerts.last_evaluated_run(engine) == run

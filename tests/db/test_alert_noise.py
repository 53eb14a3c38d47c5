"""Noise control: an oscillating score raises at most one alert per cool-down, and a burst of
alerts becomes one message per recipient and channel (also across runs in the grouping wait)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

from sqlalchemy import Engine

from churndesk.services import alerts, notify
from churndesk.services.alerts import RuleSpec
from churndesk.services.channels import OutboundMessage
from churndesk.services.channels.config import set_webhook_endpoint
from tests.db import test_alert_support as support
from tests.db.test_alert_support import T0, Scenario

# Fixtures shared by the alert and notification tests (one database per module, emptied per test).
engine = support.engine
shared_db = support.shared_db

HOUR = dt.timedelta(hours=1)


class Recorder:
    """A sender that accepts everything and remembers it."""

    recipients = None

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> None:
        self.sent.append(message)

    def close(self) -> None:
        pass


def _oscillate(engine: Engine, *, margin: float, resolve: bool) -> list[dt.datetime]:
    """100 hourly runs with the score alternating 79/81 around a threshold of 80."""
    world = Scenario(engine)
    alerts.create_rule(
        engine,
        RuleSpec(
            name="Over 80", kind="score_threshold", params={"threshold": 80}, channels=(),
            cooldown_hours=24, hysteresis_margin=margin,
        ),
        actor="alice",
    )  # fmt: skip
    (cid,) = world.customers(1)
    raised: list[dt.datetime] = []
    for n in range(100):
        at = T0 + n * HOUR
        run = world.run({cid: 81.0 if n % 2 == 0 else 79.0}, at=at)
        if alerts.evaluate_rules(engine, run, now=at).alerts_created:
            raised.append(at)
        if resolve:  # an analyst who closes every alert at once: only the cool-down holds back
            for alert in alerts.alert_history(engine, statuses=["open"]):
                alerts.resolve_alert(engine, alert.id, actor="alice", now=at)
    return raised


def test_oscillating_score_with_hysteresis_alerts_once(engine: Engine) -> None:
    assert _oscillate(engine, margin=5, resolve=True) == [T0]


def test_oscillating_score_alerts_at_most_once_per_cooldown(engine: Engine) -> None:
    raised = _oscillate(engine, margin=0, resolve=True)
    gaps = [b - a for a, b in itertools.pairwise(raised)]
    assert raised[0] == T0
    assert all(gap >= dt.timedelta(hours=24) for gap in gaps)
    assert len(raised) == 5  # hours 0, 24, 48, 72, 96 of 100


def test_burst_of_500_is_one_message_per_recipient_and_channel(engine: Engine) -> None:
    world = Scenario(engine)
    world.users(
        ("alice", "analyst", "alice@example.com"),
        ("bob", "admin", "bob@example.com"),
        ("vera", "viewer", "vera@example.com"),  # "*" means admins and analysts only
    )
    set_webhook_endpoint(engine, "crm", "http://127.0.0.1:9/hook", actor="alice")
    rule = alerts.create_rule(
        engine,
        RuleSpec(
            name="Critical", kind="score_threshold", params={"threshold": 80},
            channels=("inapp", "email", "webhook"), recipients=("*", "ops@example.com", "crm"),
        ),
        actor="alice",
    )  # fmt: skip
    ids = world.customers(600)
    world.run(dict.fromkeys(ids, 40.0), at=T0 - HOUR)
    run = world.run(dict.fromkeys(ids[:500], 95.0), at=T0)
    result = alerts.evaluate_rules(engine, run, now=T0)
    assert result.alerts_created == 500
    # inapp: alice, bob; email: alice, bob, ops; webhook: crm.
    assert result.messages_queued == 6

    # 100 more cross in a run 10 s later, inside the 30 s grouping wait: e-mail and webhook
    # messages still waiting absorb them; in-app (immediate) gets a message of its own.
    run2 = world.run(dict.fromkeys(ids[500:], 95.0), at=T0 + dt.timedelta(seconds=10))
    alerts.evaluate_rules(engine, run2, now=T0 + dt.timedelta(seconds=10))

    recorder = Recorder()
    senders = {"email": recorder, "webhook": recorder}
    done = notify.dispatch_pending(
        engine, worker_id="w", senders=senders, now=T0 + dt.timedelta(seconds=45)
    )
    assert (done.sent, done.failed) == (8, 0)
    per_target = Counter((m.channel, m.recipient) for m in recorder.sent)
    assert per_target == {
        ("email", "alice@example.com"): 1,
        ("email", "bob@example.com"): 1,
        ("email", "ops@example.com"): 1,
        ("webhook", "crm"): 1,
    }
    for message in recorder.sent:
        assert message.payload["total"] == 600
        assert message.payload["rule"]["id"] == rule.id
        assert len(message.payload["alerts"]) == 600
    inbox = notify.unread_notifications(engine, "alice")
    assert [n.title for n in inbox] == ["Critical: 100 customers", "Critical: 500 customers"]
    assert notify.unread_notifications(engine, "vera") == []

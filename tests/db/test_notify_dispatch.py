"""Dispatcher mechanics on SQLite and PostgreSQL: disjoint claims, lease take-over with fencing,
cancel hands claims back, dead letter after N attempts, in-app written exactly once."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from churndesk.db.models import Notification
from churndesk.services import notify
from churndesk.services.channels import DeliveryError, OutboundMessage
from tests.db import test_alert_support as support
from tests.db.test_alert_support import T0, Scenario

# Fixtures shared by the alert and notification tests (one database per module, emptied per test).
engine = support.engine
shared_db = support.shared_db

LEASE = dt.timedelta(seconds=60)


class Scripted:
    """A sender whose behaviour per call is scripted; remembers what it was given."""

    recipients = None

    def __init__(self, action: Callable[[OutboundMessage], None] | None = None) -> None:
        self.action = action
        self.sent: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> None:
        self.sent.append(message)
        if self.action is not None:
            self.action(message)

    def close(self) -> None:
        pass


def queue(engine: Engine, n: int, channel: str = "webhook", recipient: str = "crm") -> None:
    with engine.begin() as connection:
        for i in range(n):
            notify.enqueue(
                connection, channel=channel, recipient=recipient,
                payload={"type": "alerts", "rule": {"name": "R"}, "total": 1, "alerts": []},
                idempotency_key=f"m{i}-{channel}", now=T0,
            )  # fmt: skip


def test_claims_of_two_dispatchers_never_overlap(engine: Engine) -> None:
    queue(engine, 5)
    senders = {"webhook": Scripted()}
    first = notify._claim(engine, worker_id="a", senders=senders, now=T0, batch=2, lease_s=60)
    second = notify._claim(engine, worker_id="b", senders=senders, now=T0, batch=10, lease_s=60)
    assert len(first) == 2 and len(second) == 3
    assert not {m.id for m in first} & {m.id for m in second}
    assert notify._claim(engine, worker_id="c", senders=senders, now=T0, batch=10, lease_s=60) == []


def test_expired_lease_is_taken_over_and_the_late_result_is_fenced_off(engine: Engine) -> None:
    queue(engine, 1)
    taker = Scripted()
    outcome: dict[str, notify.DispatchResult] = {}

    def stall_past_the_lease(message: OutboundMessage) -> None:
        # While "a" is stuck in its delivery, its lease runs out and "b" takes the message.
        outcome["b"] = notify.dispatch_pending(
            engine, worker_id="b", senders={"webhook": taker}, now=T0 + LEASE
        )

    stuck = Scripted(stall_past_the_lease)
    outcome["a"] = notify.dispatch_pending(
        engine, worker_id="a", senders={"webhook": stuck}, now=T0
    )
    assert outcome["b"].sent == 1
    assert (outcome["a"].sent, outcome["a"].lost_claims) == (0, 1)
    (message,) = notify.list_outbox(engine)
    assert (message.status, message.attempts, message.claimed_by) == ("sent", 2, None)
    # Both attempts carried the same idempotency key, so the receiver can drop the repeat.
    assert stuck.sent[0].idempotency_key == taker.sent[0].idempotency_key


def test_cancel_hands_unsent_claims_back(engine: Engine) -> None:
    queue(engine, 3)
    cancel = threading.Event()
    sender = Scripted(lambda message: cancel.set())
    result = notify.dispatch_pending(
        engine, worker_id="a", senders={"webhook": sender}, now=T0, cancel=cancel
    )
    assert (result.claimed, result.sent, result.released) == (3, 1, 2)
    states = sorted((m.status, m.attempts, m.claimed_by) for m in notify.list_outbox(engine))
    assert states == [("pending", 0, None), ("pending", 0, None), ("sent", 1, None)]


def test_dead_letter_after_the_last_attempt(engine: Engine) -> None:
    queue(engine, 1)
    policy = notify.RetryPolicy(max_attempts=3)

    def refuse(message: OutboundMessage) -> None:
        raise DeliveryError(f"refused on attempt {message.attempt}")

    sender = Scripted(refuse)
    now = T0
    for attempt in (1, 2, 3):
        result = notify.dispatch_pending(
            engine, worker_id="a", senders={"webhook": sender}, now=now, policy=policy,
            rng=random.Random(attempt),
        )  # fmt: skip
        (message,) = notify.list_outbox(engine)
        assert message.attempts == attempt
        assert message.last_error == f"refused on attempt {attempt}"
        if attempt < 3:
            assert (result.failed, message.status) == (1, "failed")
            assert message.next_attempt_at is not None
            low, high = policy.delay_bounds_s(attempt)
            assert low <= (message.next_attempt_at - now).total_seconds() <= high
            now = message.next_attempt_at
        else:
            assert (result.dead, message.status) == (1, "dead")
    assert notify.dispatch_pending(engine, worker_id="a", senders={"webhook": sender},
                                   now=now + dt.timedelta(days=1)).claimed == 0  # fmt: skip
    assert notify.outbox_counts(engine)["dead"] == 1


def test_in_app_notification_is_written_exactly_once(engine: Engine) -> None:
    Scenario(engine).users(("alice", "analyst", None))
    queue(engine, 1, channel="inapp", recipient="alice")
    (claimed,) = notify._claim(engine, worker_id="a", senders={}, now=T0, batch=10, lease_s=60)
    # "a" stalls; after its lease "b" takes over and delivers.
    assert notify.dispatch_pending(engine, worker_id="b", senders={}, now=T0 + LEASE).sent == 1
    assert notify._record_sent(engine, claimed, "a", T0 + 2 * LEASE) is False
    scenario = Scenario(engine)
    assert scenario.count(Notification, username="alice") == 1
    (note,) = notify.unread_notifications(engine, "alice")
    assert notify.unread_count(engine, "alice") == 1
    assert notify.mark_read(engine, "alice", [note.id], now=T0) == 1
    assert notify.mark_read(engine, "bob") == 0  # nobody else's notifications are touched
    assert notify.unread_notifications(engine, "alice") == []


def test_unknown_channel_sender_missing_is_not_claimed(engine: Engine) -> None:
    queue(engine, 1, channel="email", recipient="x@example.com")
    assert notify.dispatch_pending(engine, worker_id="a", senders={}, now=T0).claimed == 0
    assert notify.list_outbox(engine)[0].status == "pending"

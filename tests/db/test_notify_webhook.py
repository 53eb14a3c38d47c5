"""Webhooks to a real HTTP server on loopback that verifies every signature like a receiver."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine
from werkzeug import Request, Response

from churndesk import secrets
from churndesk.services import alerts, notify
from churndesk.services.alerts import RuleSpec
from churndesk.services.channels.config import (
    WEBHOOK_SECRET,
    remove_webhook_endpoint,
    set_webhook_endpoint,
)
from churndesk.services.channels.webhook import WebhookVerificationError, verify_webhook
from tests.db import test_alert_support as support
from tests.db.test_alert_support import T0, Scenario

# Fixtures shared by the alert and notification tests (one database per module, emptied per test).
engine = support.engine
shared_db = support.shared_db

pytestmark = pytest.mark.parametrize("shared_db", ["sqlite"], indirect=True)
HOUR = dt.timedelta(hours=1)


@dataclass
class Receiver:
    """A webhook receiver: verifies, de-duplicates by webhook-id, can be told to fail."""

    secret: str
    clock: dt.datetime
    answers: list[int] = field(default_factory=list)  # statuses to give, then 200
    accepted: dict[str, dict] = field(default_factory=dict)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def handle(self, request: Request) -> Response:
        headers, body = dict(request.headers), request.get_data()
        self.requests.append((headers, body))
        if self.answers:
            return Response("temporarily broken", status=self.answers.pop(0))
        try:
            payload = verify_webhook(self.secret, headers, body, now=self.clock)
        except WebhookVerificationError as exc:
            self.rejected.append(str(exc))
            return Response(str(exc), status=400)
        message_id = headers["Webhook-Id"]
        if message_id in self.accepted:
            self.rejected.append(f"duplicate {message_id}")
        self.accepted[message_id] = payload
        return Response("", status=204)


def setup_hook(engine: Engine, httpserver: HTTPServer) -> tuple[Scenario, Receiver]:
    world = Scenario(engine)
    world.users(("alice", "analyst", None))
    secret = set_webhook_endpoint(engine, "crm", httpserver.url_for("/hook"), actor="alice")
    receiver = Receiver(secret, T0 + HOUR)
    httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver.handle)
    alerts.create_rule(
        engine,
        RuleSpec(name="High", kind="score_threshold", params={"threshold": 90},
                 channels=("webhook",), recipients=("crm",)),
        actor="alice",
    )  # fmt: skip
    ids = world.customers(3, names=["A <b>", "B", "C"])
    alerts.evaluate_rules(engine, world.run(dict.fromkeys(ids, 95.0), at=T0), now=T0)
    return world, receiver


def test_signed_delivery_is_verified_and_forgeries_are_detected(
    engine: Engine, httpserver: HTTPServer
) -> None:
    _, receiver = setup_hook(engine, httpserver)
    done = notify.dispatch_pending(engine, worker_id="w", now=receiver.clock)
    assert (done.sent, receiver.rejected) == (1, [])
    (message,) = notify.list_outbox(engine)
    payload = receiver.accepted[message.idempotency_key]
    assert payload["type"] == "churndesk.alerts"
    assert payload["data"]["total"] == 3
    assert sorted(a["customer"] for a in payload["data"]["alerts"]) == ["A <b>", "B", "C"]

    headers, body = receiver.requests[-1]
    assert headers["Webhook-Timestamp"] == str(int(receiver.clock.timestamp()))
    assert headers["Idempotency-Key"] == message.idempotency_key
    # What a receiver must be able to reject:
    with pytest.raises(WebhookVerificationError, match="signature"):  # a tampered body
        verify_webhook(receiver.secret, headers, body.replace(b'"total":3', b'"total":4'),
                       now=receiver.clock)  # fmt: skip
    with pytest.raises(WebhookVerificationError, match="tolerance"):  # a replay next day
        verify_webhook(receiver.secret, headers, body, now=receiver.clock + 24 * HOUR)
    assert headers["Webhook-Id"] in receiver.accepted  # a repeat within tolerance: seen id


def test_receiver_error_is_retried_with_the_same_id(engine: Engine, httpserver: HTTPServer) -> None:
    _, receiver = setup_hook(engine, httpserver)
    receiver.answers = [503]
    first = notify.dispatch_pending(engine, worker_id="w", now=receiver.clock)
    assert (first.sent, first.failed) == (0, 1)
    (message,) = notify.list_outbox(engine)
    assert message.last_error == "Webhook 'crm' answered HTTP 503: temporarily broken"
    assert message.next_attempt_at is not None
    receiver.clock = message.next_attempt_at
    second = notify.dispatch_pending(engine, worker_id="w", now=receiver.clock)
    assert second.sent == 1
    ids = [headers["Webhook-Id"] for headers, _ in receiver.requests]
    stamps = [int(headers["Webhook-Timestamp"]) for headers, _ in receiver.requests]
    assert ids[0] == ids[1] and stamps[1] > stamps[0]
    (message,) = notify.list_outbox(engine)
    assert (message.status, message.attempts, message.last_error) == ("sent", 2, None)


def test_gone_receiver_is_dead_lettered_at_once(engine: Engine, httpserver: HTTPServer) -> None:
    _, receiver = setup_hook(engine, httpserver)
    receiver.answers = [410]
    done = notify.dispatch_pending(engine, worker_id="w", now=receiver.clock)
    assert done.dead == 1
    (message,) = notify.list_outbox(engine)
    assert (message.status, message.attempts) == ("dead", 1)
    retried = notify.retry_message(engine, message.id, actor="alice", now=receiver.clock)
    assert (retried.status, retried.attempts) == ("pending", 0)
    assert notify.dispatch_pending(engine, worker_id="w", now=receiver.clock).sent == 1


def test_without_the_secret_here_the_webhook_is_left_to_others(
    engine: Engine, httpserver: HTTPServer
) -> None:
    _, receiver = setup_hook(engine, httpserver)
    secrets.delete_secret(WEBHOOK_SECRET, httpserver.url_for("/hook"))
    assert notify.dispatch_pending(engine, worker_id="w", now=receiver.clock).claimed == 0
    assert notify.list_outbox(engine)[0].status == "pending"
    # An endpoint removed from the settings can never be delivered: dead-lettered, visibly.
    remove_webhook_endpoint(engine, "crm", actor="alice")
    done = notify.dispatch_pending(engine, worker_id="w", now=receiver.clock)
    assert done.dead == 1
    assert "no webhook endpoint named 'crm'" in (notify.list_outbox(engine)[0].last_error or "")
    assert receiver.requests == []

"""E-mail through a real SMTP server on loopback (aiosmtpd): immediate, digest, escaping, outage."""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import Engine

from churndesk.services import alerts, notify
from churndesk.services.alerts import RuleSpec
from churndesk.services.channels.config import (
    NotifyOptions,
    SmtpSettings,
    save_notify_options,
    save_smtp_settings,
)
from tests.db import test_alert_support as support
from tests.db.test_alert_support import T0, Scenario

# Fixtures shared by the alert and notification tests (one database per module, emptied per test).
engine = support.engine
shared_db = support.shared_db

HOUR = dt.timedelta(hours=1)
EVIL = '<img src=x onerror="alert(1)"> Müller & Söhne'


@dataclass
class Mailbox:
    """What the SMTP server received, and who logged in."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(mailbox: Mailbox, port: int) -> Controller:
    # aiosmtpd logs a deprecation of its own on every login (Session.login_data); not ours.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, authenticator=mailbox.authenticate,
        auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    return controller


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = start_server(box, port)
    yield box, port
    controller.stop()


def setup_email(engine: Engine, port: int) -> Scenario:
    world = Scenario(engine)
    world.users(("alice", "analyst", "alice@example.com"), ("bob", "analyst", "bob@example.com"))
    save_smtp_settings(
        engine,
        SmtpSettings(host="127.0.0.1", port=port, security="plain", username="churndesk",
                     from_address="alerts@churndesk.example"),
        password="s3cret",
        actor="alice",
    )  # fmt: skip
    return world


def raise_alerts(engine: Engine, world: Scenario, names: list[str], *, at: dt.datetime) -> None:
    ids = world.customers(len(names), names=names, start=int(at.timestamp()) % 100_000)
    run = world.run(dict.fromkeys(ids, 92.0), at=at)
    alerts.evaluate_rules(engine, run, now=at)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


@pytest.mark.parametrize("shared_db", ["sqlite"], indirect=True)
def test_immediate_email_reaches_recipients_with_escaped_html(
    engine: Engine, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = setup_email(engine, port)
    alerts.create_rule(
        engine,
        RuleSpec(name="Critical risk", kind="score_threshold", params={"threshold": 90},
                 severity="critical", channels=("email",), recipients=("*", "ops@example.com")),
        actor="alice",
    )  # fmt: skip
    raise_alerts(engine, world, [EVIL], at=T0)
    done = notify.Dispatcher(engine).run_once(now=T0 + HOUR)
    assert (done.sent, done.failed) == (3, 0)
    assert box.logins == ["churndesk"] * 1  # one SMTP session for the whole round
    assert sorted(rcpt for _, rcpts, _ in box.messages for rcpt in rcpts) == [
        "alice@example.com", "bob@example.com", "ops@example.com",
    ]  # fmt: skip
    sender, _, message = box.messages[0]
    assert sender == "alerts@churndesk.example"
    assert message["Subject"] == f"[churndesk] CRITICAL · Critical risk: {EVIL}"
    text, html = parts(message)
    assert EVIL in text
    assert "<img" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; Müller &amp; Söhne" in html
    assert message["X-Churndesk-Idempotency-Key"].startswith("alerts-")
    assert [m.status for m in notify.list_outbox(engine)] == ["sent"] * 3


@pytest.mark.parametrize("shared_db", ["sqlite"], indirect=True)
def test_smtp_down_then_up_delivers_after_a_retry(engine: Engine) -> None:
    port = free_port()  # nobody listens yet
    world = setup_email(engine, port)
    alerts.create_rule(
        engine,
        RuleSpec(name="High", kind="score_threshold", params={"threshold": 90},
                 channels=("email",), recipients=("ops@example.com",)),
        actor="alice",
    )  # fmt: skip
    raise_alerts(engine, world, ["Acme"], at=T0)
    first = notify.dispatch_pending(engine, worker_id="w", now=T0 + HOUR)
    assert (first.sent, first.failed) == (0, 1)
    (message,) = notify.list_outbox(engine)
    assert (message.status, message.attempts) == ("failed", 1)
    assert "Cannot reach the mail server 127.0.0.1" in (message.last_error or "")
    retry_at = message.next_attempt_at
    assert retry_at is not None
    low, high = notify.RetryPolicy().delay_bounds_s(1)
    assert low <= (retry_at - (T0 + HOUR)).total_seconds() <= high
    # Not yet due: nothing is attempted.
    assert notify.dispatch_pending(engine, worker_id="w", now=retry_at - HOUR / 60).claimed == 0

    box = Mailbox()
    controller = start_server(box, port)
    try:
        second = notify.dispatch_pending(engine, worker_id="w", now=retry_at)
    finally:
        controller.stop()
    assert second.sent == 1
    (message,) = notify.list_outbox(engine)
    assert (message.status, message.attempts, message.sent_at) == ("sent", 2, retry_at)
    assert [rcpts for _, rcpts, _ in box.messages] == [["ops@example.com"]]


def test_daily_digest_gathers_a_days_alerts(engine: Engine, mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    world = setup_email(engine, port)
    save_notify_options(engine, NotifyOptions(digest_hour=7, digest_timezone="UTC"), actor="a")
    alerts.create_rule(
        engine,
        RuleSpec(name="Watch list", kind="score_threshold", params={"threshold": 90},
                 channels=("email", "inapp"), recipients=("alice",), email_mode="digest"),
        actor="alice",
    )  # fmt: skip
    raise_alerts(engine, world, ["First <Co>", "Second"], at=T0)  # 09:00
    raise_alerts(engine, world, ["Third"], at=T0 + 5 * HOUR)  # 14:00
    dispatcher = notify.Dispatcher(engine)
    same_day = dispatcher.run_once(now=T0 + 6 * HOUR)
    assert same_day.digests_queued == 0 and same_day.sent == 2  # only the in-app messages
    assert box.messages == []

    next_morning = T0 + dt.timedelta(hours=22, minutes=5)  # 07:05 the next day
    done = dispatcher.run_once(now=next_morning)
    assert (done.digests_queued, done.sent) == (1, 1)
    assert dispatcher.run_once(now=next_morning + HOUR).digests_queued == 0  # once a day
    (_, rcpts, message) = box.messages[0]
    assert rcpts == ["alice@example.com"]
    assert message["Subject"] == (
        "[churndesk] Daily digest: 3 alerts (2025-03-03 07:00 – 2025-03-04 07:00 UTC)"
    )
    text, html = parts(message)
    assert "Watch list: 3" in text
    for name in ("First <Co>", "Second", "Third"):
        assert name in text
    assert "First &lt;Co&gt;" in html and "<Co>" not in html

    # The next digest starts where this one ended, even after a day with no worker running.
    raise_alerts(engine, world, ["Fourth"], at=next_morning + HOUR)
    later = dispatcher.run_once(now=next_morning + dt.timedelta(days=2))
    assert (later.digests_queued, later.sent) == (1, 2)
    _, _, message = box.messages[-1]
    assert "1 alert (2025-03-04 07:00 – 2025-03-06 07:00 UTC)" in message["Subject"]

"""The notification outbox and its dispatcher: queued with the alerts, delivered exactly once.

Evaluation writes outbox rows in the same transaction as the alerts they announce, one per
rule, channel and recipient (a burst of alerts becomes one message). Dispatchers on any number
of desktops and workers claim due rows with ``FOR UPDATE SKIP LOCKED`` and a lease, deliver
them, and record the outcome only while they still hold the claim; a claim whose holder died
is taken over when its lease expires. In-app notifications are written in the very transaction
that marks their row sent, so they exist exactly once; e-mails and webhooks carry the row's
idempotency key (Message-ID, ``webhook-id``) so a receiver can drop the rare repeat after a
crash between delivery and record. Failures retry with exponential backoff and jitter and end
in the dead-letter state after ``RetryPolicy.max_attempts`` attempts.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import threading
import uuid
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from churndesk.db.engine import begin_write
from churndesk.db.models import Alert, Customer, CustomerScore, Notification, OutboxMessage, User
from churndesk.errors import ConflictError, NotFoundError
from churndesk.services import audit
from churndesk.services.alert_common import as_utc, const, short_hash, upsert, utcnow
from churndesk.services.alert_rules import EVERYONE, RuleView, load_rules
from churndesk.services.changes import Changes, publish
from churndesk.services.channels import DeliveryError, OutboundMessage, Sender
from churndesk.services.channels.config import (
    is_email,
    notify_options,
    smtp_password,
    smtp_settings,
    webhook_endpoints,
    webhook_secret,
)
from churndesk.services.channels.email import SmtpSender
from churndesk.services.channels.inapp import render_inapp
from churndesk.services.channels.webhook import Endpoint, WebhookSender

log = logging.getLogger(__name__)

OUTBOX = OutboxMessage.__table__
ALERTS = Alert.__table__
CUSTOMERS = Customer.__table__
#: Alerts listed in one message; the total is always given ("and 4,500 more").
LISTED_IN_MESSAGE = 1000
LISTED_IN_DIGEST = 500
#: How far back a digest reaches when no digest was sent before (or the worker was down).
MAX_DIGEST_DAYS = 7
DEFAULT_SEND_ALLOWANCE_S = 30.0
ERROR_CHARS = 1000


# --- Payloads -----------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat() if value else None


def alert_items(
    connection: Connection, condition: ColumnElement[bool], *, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The alerts matching ``condition`` (on the alerts table) as message items, highest score
    first, and how many match in all."""
    a, c, cs = ALERTS, CUSTOMERS, CustomerScore.__table__
    rows = connection.execute(
        select(
            a.c.id,
            a.c.rule_id,
            a.c.customer_id,
            c.c.external_id,
            c.c.name,
            c.c.segment,
            c.c.plan,
            c.c.owner,
            a.c.score,
            cs.c.risk_band,
            cs.c.revenue_at_risk,
            a.c.severity,
            a.c.title,
            a.c.details,
            a.c.created_at,
        )
        .select_from(
            a.outerjoin(c, c.c.id == a.c.customer_id).outerjoin(
                cs, cs.c.customer_id == a.c.customer_id
            )
        )
        .where(condition)
        .order_by(func.coalesce(a.c.score, -1.0).desc(), a.c.id)
        .limit(limit)
    ).all()
    items = [
        {
            "id": row.id,
            "rule_id": row.rule_id,
            "customer_id": row.customer_id,
            "external_id": row.external_id,
            "customer": row.name,
            "segment": row.segment,
            "plan": row.plan,
            "owner": row.owner,
            "score": row.score,
            "band": row.risk_band,
            "revenue_at_risk": row.revenue_at_risk,
            "severity": row.severity,
            "title": row.title,
            "details": row.details or {},
            "created_at": _iso(row.created_at),
        }
        for row in rows
    ]
    total = len(items)
    if total >= limit:
        total = int(connection.scalar(select(func.count()).select_from(a).where(condition)) or 0)
    return items, total


def rule_summary(rule: RuleView) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "kind": rule.kind,
        "severity": rule.severity,
        "condition": rule.condition,
    }


# --- Recipients ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Directory:
    """Who can be notified: active users (with role and e-mail) and webhook endpoint names."""

    users: Mapping[str, tuple[str, str | None]]
    endpoints: frozenset[str]

    @classmethod
    def load(cls, connection: Connection) -> Directory:
        rows = connection.execute(
            select(User.username, User.role, User.email).where(User.is_active.is_(True))
        )
        users = {username: (role, email) for username, role, email in rows}
        return cls(users, frozenset(webhook_endpoints(connection)))

    def everyone(self) -> list[str]:
        """Active admins and analysts: who ``*`` means."""
        return [name for name, (role, _) in self.users.items() if role in ("admin", "analyst")]

    def resolve(self, recipients: Iterable[str], channel: str) -> list[str]:
        """The outbox recipients of ``channel`` for a rule's recipient list, without repeats."""
        out: dict[str, str] = {}

        def add(value: str | None) -> None:
            if value:
                out.setdefault(value.lower() if channel == "email" else value, value)

        for recipient in recipients:
            if channel == "inapp":
                if recipient == EVERYONE:
                    for name in self.everyone():
                        add(name)
                elif recipient in self.users:
                    add(recipient)
            elif channel == "email":
                if recipient == EVERYONE:
                    for name in self.everyone():
                        add(self.users[name][1])
                elif is_email(recipient):
                    add(recipient)
                elif recipient in self.users:
                    add(self.users[recipient][1])
            # A name that is no user or address is an endpoint, even one removed since the
            # rule was saved: its message is then dead-lettered visibly, not dropped.
            elif channel == "webhook" and (
                recipient in self.endpoints
                or (
                    recipient != EVERYONE
                    and not is_email(recipient)
                    and recipient not in self.users
                )
            ):
                add(recipient)
        return list(out.values())


# --- Queueing -----------------------------------------------------------------------------


def enqueue(
    connection: Connection,
    *,
    channel: str,
    recipient: str,
    payload: dict[str, Any],
    idempotency_key: str,
    now: dt.datetime,
    deliver_at: dt.datetime | None = None,
    alert_id: int | None = None,
) -> bool:
    """Add one outbox row unless its idempotency key exists; returns whether it was added.

    Does not commit: it belongs to the transaction of whatever it announces.
    """
    statement = upsert(connection, OUTBOX).values(
        alert_id=alert_id,
        channel=channel,
        recipient=recipient,
        payload=payload,
        idempotency_key=idempotency_key,
        status="pending",
        attempts=0,
        next_attempt_at=deliver_at or now,
        created_at=now,
    )
    result = connection.execute(
        statement.on_conflict_do_nothing(index_elements=[OUTBOX.c.idempotency_key]),
        execution_options={"preserve_rowcount": True},
    )
    return bool(result.rowcount)


def _merge_into_waiting(
    connection: Connection,
    *,
    rule: RuleView,
    run_id: int | None,
    channel: str,
    recipient: str,
    items: list[dict[str, Any]],
    total: int,
    now: dt.datetime,
) -> bool:
    """Add alerts to this rule's message for the recipient that is still in its group wait."""
    query = (
        select(OUTBOX.c.id, OUTBOX.c.payload)
        .where(
            OUTBOX.c.status == const("pending"),
            OUTBOX.c.attempts == 0,
            OUTBOX.c.channel == channel,
            OUTBOX.c.recipient == recipient,
            OUTBOX.c.next_attempt_at > now,
            OUTBOX.c.idempotency_key.like(f"alerts-{rule.id}-%"),
        )
        .order_by(OUTBOX.c.id.desc())
        .limit(1)
    )
    if connection.dialect.name == "postgresql":
        # Lock it against a dispatcher's claim; if a claim got it first the row no longer
        # matches (status 'sending') once that claim commits, and a new message is queued.
        query = query.with_for_update()
    row = connection.execute(query).first()
    if row is None:
        return False
    payload = dict(row.payload)
    merged = list(payload.get("alerts") or []) + items
    merged.sort(key=lambda a: (-(a.get("score") or -1.0), a.get("id") or 0))
    payload["alerts"] = merged[:LISTED_IN_MESSAGE]
    payload["total"] = int(payload.get("total") or 0) + total
    payload["truncated"] = payload["total"] > len(payload["alerts"])
    runs = list(payload.get("run_ids") or [])
    if run_id is not None and run_id not in runs:
        runs.append(run_id)
    payload["run_ids"] = runs
    connection.execute(
        update(OUTBOX).where(OUTBOX.c.id == row.id).values(payload=payload, alert_id=None)
    )
    return True


def queue_alert_notifications(
    connection: Connection,
    rule: RuleView,
    *,
    run_id: int | None,
    created_at: dt.datetime,
    now: dt.datetime,
    directory: Directory | None = None,
) -> int:
    """Queue the messages announcing the alerts ``rule`` raised at ``created_at`` in ``run_id``.

    One message per channel and recipient, however many alerts (burst grouping); e-mails and
    webhooks wait ``group_wait_s`` and absorb further alerts of the rule meanwhile. E-mail of a
    digest rule waits for the daily digest instead. Returns how many rows were queued or
    extended. Does not commit.
    """
    if not rule.channels or not rule.recipients:
        return 0
    condition = and_(ALERTS.c.rule_id == rule.id, ALERTS.c.created_at == created_at)
    if run_id is not None:
        condition = and_(condition, ALERTS.c.run_id == run_id)
    items, total = alert_items(connection, condition, limit=LISTED_IN_MESSAGE)
    if total == 0:
        return 0
    directory = directory or Directory.load(connection)
    wait_s = notify_options(connection).group_wait_s
    first_id = min(item["id"] for item in items)
    payload = {
        "type": "alerts",
        "rule": rule_summary(rule),
        "run_ids": [run_id] if run_id is not None else [],
        "total": total,
        "truncated": total > len(items),
        "alerts": items,
    }
    queued = 0
    for channel in rule.channels:
        if channel == "email" and rule.email_mode == "digest":
            continue
        grouped = channel != "inapp" and wait_s > 0
        for recipient in directory.resolve(rule.recipients, channel):
            if grouped and _merge_into_waiting(
                connection,
                rule=rule,
                run_id=run_id,
                channel=channel,
                recipient=recipient,
                items=items,
                total=total,
                now=now,
            ):
                queued += 1
                continue
            key = f"alerts-{rule.id}-{first_id}-{channel}-{short_hash(recipient)}"
            deliver_at = now + dt.timedelta(seconds=wait_s) if grouped else now
            queued += enqueue(
                connection,
                channel=channel,
                recipient=recipient,
                payload=payload,
                idempotency_key=key,
                now=now,
                deliver_at=deliver_at,
                alert_id=items[0]["id"] if total == 1 else None,
            )
    return queued


# --- Daily digest -------------------------------------------------------------------------


def digest_boundary(now: dt.datetime, hour: int, timezone: str) -> dt.datetime:
    """The latest digest time (``hour`` o'clock in ``timezone``) at or before ``now``, in UTC."""
    zone = zoneinfo.ZoneInfo(timezone)
    local = now.astimezone(zone)
    boundary = dt.datetime.combine(local.date(), dt.time(hour), tzinfo=zone)
    if boundary > local:
        boundary = dt.datetime.combine(
            local.date() - dt.timedelta(days=1), dt.time(hour), tzinfo=zone
        )
    return boundary.astimezone(dt.UTC)


def enqueue_digests(engine: Engine, *, now: dt.datetime | None = None) -> int:
    """Queue each digest recipient's e-mail for the period that ended at the last digest time.

    A period starts where the recipient's previous digest ended (at most seven days back), so
    a worker that was down catches up. Idempotent and safe from many dispatchers at once (the
    idempotency key names the period). Returns how many digests were queued. Commits.
    """
    now = now or utcnow()
    with begin_write(engine) as connection:
        rules = [
            r for r in load_rules(connection) if "email" in r.channels and r.email_mode == "digest"
        ]
        if not rules:
            return 0
        options = notify_options(connection)
        end = digest_boundary(now, options.digest_hour, options.digest_timezone)
        directory = Directory.load(connection)
        by_address: dict[str, list[RuleView]] = {}
        for rule in rules:
            for address in directory.resolve(rule.recipients, "email"):
                by_address.setdefault(address, []).append(rule)
        queued = 0
        for address, its_rules in sorted(by_address.items()):
            key = f"digest-{end:%Y%m%d%H%M}-{short_hash(address.lower())}"
            exists = connection.scalar(select(OUTBOX.c.id).where(OUTBOX.c.idempotency_key == key))
            if exists:
                continue
            start = _previous_digest_end(connection, address) or end - dt.timedelta(days=1)
            start = max(start, end - dt.timedelta(days=MAX_DIGEST_DAYS))
            if start >= end:
                continue
            rule_ids = [r.id for r in its_rules]
            condition = and_(
                ALERTS.c.rule_id.in_(rule_ids),
                ALERTS.c.created_at >= start,
                ALERTS.c.created_at < end,
            )
            items, total = alert_items(connection, condition, limit=LISTED_IN_DIGEST)
            if total == 0:
                continue
            counts = dict(
                connection.execute(
                    select(ALERTS.c.rule_id, func.count())
                    .where(condition)
                    .group_by(ALERTS.c.rule_id)
                ).all()
            )
            payload = {
                "type": "digest",
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
                "total": total,
                "truncated": total > len(items),
                "rules": [
                    {"id": r.id, "name": r.name, "severity": r.severity, "count": counts[r.id]}
                    for r in its_rules
                    if counts.get(r.id)
                ],
                "alerts": items,
            }
            queued += enqueue(
                connection,
                channel="email",
                recipient=address,
                payload=payload,
                idempotency_key=key,
                now=now,
            )
        return queued


def _previous_digest_end(connection: Connection, address: str) -> dt.datetime | None:
    payload = connection.scalar(
        select(OUTBOX.c.payload)
        .where(
            OUTBOX.c.channel == const("email"),
            OUTBOX.c.recipient == address,
            OUTBOX.c.idempotency_key.like("digest-%"),
        )
        .order_by(OUTBOX.c.id.desc())
        .limit(1)
    )
    if not payload or not payload.get("period_end"):
        return None
    return as_utc(dt.datetime.fromisoformat(payload["period_end"]))


# --- Dispatch -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits ``min(cap, base·factor^(n-1))`` ± jitter.

    With the defaults: 30 s, 1, 2, 4, 8, 16, 32 min, 1 h, 1 h, then dead after 10 attempts
    (about 3 hours of trying), each wait varied by up to ±20% so that receivers recovering
    from an outage are not hit by every dispatcher at the same instant.
    """

    base_s: float = 30.0
    factor: float = 2.0
    cap_s: float = 3600.0
    jitter: float = 0.2
    max_attempts: int = 10

    def nominal_delay_s(self, attempt: int) -> float:
        return min(self.cap_s, self.base_s * self.factor ** max(attempt - 1, 0))

    def delay_bounds_s(self, attempt: int) -> tuple[float, float]:
        nominal = self.nominal_delay_s(attempt)
        return nominal * (1 - self.jitter), nominal * (1 + self.jitter)

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        return self.nominal_delay_s(attempt) * (1 + self.jitter * (2 * rng.random() - 1))


@dataclass(frozen=True)
class DispatchResult:
    """What one dispatch call did; ``lost_claims`` counts results not recorded because the
    message's lease had expired and another dispatcher had taken it over."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    released: int = 0
    lost_claims: int = 0
    digests_queued: int = 0

    def __add__(self, other: DispatchResult) -> DispatchResult:
        return DispatchResult(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def to_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def build_senders(engine: Engine) -> dict[str, Sender]:
    """Senders for the channels this computer can deliver, from shared settings and keyring."""
    with engine.connect() as connection:
        smtp = smtp_settings(connection)
        endpoints = webhook_endpoints(connection)
    senders: dict[str, Sender] = {}
    if smtp is not None:
        password = smtp_password(smtp)
        if smtp.username and password is None:
            log.info(
                "e-mail is left to other dispatchers: no password for %s in this keyring",
                smtp.secret_name,
            )
        else:
            senders["email"] = SmtpSender(smtp, password)
    senders["webhook"] = WebhookSender(
        {name: Endpoint(name, url, webhook_secret(url)) for name, url in endpoints.items()}
    )
    return senders


def _deliverable(senders: Mapping[str, Sender]) -> ColumnElement[bool]:
    """Which outbox rows this dispatcher may claim: in-app always, others if it can send them."""
    clauses: list[ColumnElement[bool]] = [OUTBOX.c.channel == const("inapp")]
    for channel, sender in senders.items():
        recipients = getattr(sender, "recipients", None)
        if recipients is None:
            clauses.append(OUTBOX.c.channel == channel)
            continue
        allowed: ColumnElement[bool] = OUTBOX.c.recipient.in_(sorted(recipients))
        configured = getattr(sender, "configured", None)
        if configured is not None:
            allowed = or_(allowed, OUTBOX.c.recipient.not_in(sorted(configured)))
        clauses.append(and_(OUTBOX.c.channel == channel, allowed))
    return or_(*clauses)


@dataclass(frozen=True)
class _Claimed:
    id: int
    channel: str
    recipient: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    alert_id: int | None
    created_at: dt.datetime


def _claim(
    engine: Engine,
    *,
    worker_id: str,
    senders: Mapping[str, Sender],
    now: dt.datetime,
    batch: int,
    lease_s: float,
) -> list[_Claimed]:
    due = or_(
        and_(
            OUTBOX.c.status.in_([const("pending"), const("failed")]),
            OUTBOX.c.next_attempt_at <= now,
        ),
        and_(OUTBOX.c.status == const("sending"), OUTBOX.c.claim_expires_at <= now),
    )
    candidates = (
        select(OUTBOX.c.id)
        .where(due, _deliverable(senders))
        .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
        .limit(batch)
    )
    if engine.dialect.name == "postgresql":
        # Rows another dispatcher is claiming right now are skipped, not waited for.
        candidates = candidates.with_for_update(skip_locked=True)
    statement = (
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(candidates.scalar_subquery()))
        .values(
            status="sending",
            claimed_by=worker_id,
            claim_expires_at=now + dt.timedelta(seconds=lease_s),
            attempts=OUTBOX.c.attempts + 1,
        )
        .returning(
            OUTBOX.c.id,
            OUTBOX.c.channel,
            OUTBOX.c.recipient,
            OUTBOX.c.payload,
            OUTBOX.c.idempotency_key,
            OUTBOX.c.attempts,
            OUTBOX.c.alert_id,
            OUTBOX.c.created_at,
            OUTBOX.c.next_attempt_at,
        )
    )
    with begin_write(engine) as connection:
        rows = connection.execute(statement).all()
    rows.sort(key=lambda r: (as_utc(r.next_attempt_at), r.id))
    return [
        _Claimed(
            r.id,
            r.channel,
            r.recipient,
            dict(r.payload or {}),
            r.idempotency_key,
            r.attempts,
            r.alert_id,
            as_utc(r.created_at) or now,
        )
        for r in rows
    ]


def _mine(message_id: int, worker_id: str) -> ColumnElement[bool]:
    """Fencing: a result is recorded only while this dispatcher still holds the claim."""
    return and_(
        OUTBOX.c.id == message_id,
        OUTBOX.c.claimed_by == worker_id,
        OUTBOX.c.status == const("sending"),
    )


_CLEAR_CLAIM = {"claimed_by": None, "claim_expires_at": None}


def _record_sent(engine: Engine, message: _Claimed, worker_id: str, now: dt.datetime) -> bool:
    with begin_write(engine) as connection:
        result = connection.execute(
            update(OUTBOX)
            .where(_mine(message.id, worker_id))
            .values(status="sent", sent_at=now, last_error=None, **_CLEAR_CLAIM)
        )
        if result.rowcount != 1:
            return False
        if message.channel == "inapp":
            # Same transaction as the status change: the notification exists exactly once.
            title, body = render_inapp(message.payload)
            connection.execute(
                Notification.__table__.insert().values(
                    username=message.recipient,
                    alert_id=message.alert_id,
                    title=title,
                    body=body,
                    created_at=now,
                )
            )
            publish(connection, Changes(notifications=True))
    return True


def _record_failure(
    engine: Engine,
    message: _Claimed,
    worker_id: str,
    now: dt.datetime,
    error: str,
    *,
    dead: bool,
    retry_at: dt.datetime | None,
) -> bool:
    values: dict[str, Any] = {"last_error": error[:ERROR_CHARS], **_CLEAR_CLAIM}
    if dead:
        values["status"] = "dead"
    else:
        values.update(status="failed", next_attempt_at=retry_at)
    with begin_write(engine) as connection:
        result = connection.execute(
            update(OUTBOX).where(_mine(message.id, worker_id)).values(values)
        )
        if result.rowcount == 1 and dead:
            publish(connection, Changes(notifications=True))
    return result.rowcount == 1


def _release(engine: Engine, messages: Sequence[_Claimed], worker_id: str) -> int:
    """Give back claimed messages not attempted (cancel, or the lease is running out)."""
    released = 0
    with begin_write(engine) as connection:
        for message in messages:
            result = connection.execute(
                update(OUTBOX)
                .where(_mine(message.id, worker_id))
                .values(
                    status="pending" if message.attempts <= 1 else "failed",
                    attempts=OUTBOX.c.attempts - 1,
                    **_CLEAR_CLAIM,
                )
            )
            released += result.rowcount
    return released


def dispatch_pending(
    engine: Engine,
    *,
    worker_id: str,
    senders: Mapping[str, Sender] | None = None,
    now: dt.datetime | None = None,
    batch: int = 100,
    lease_s: float = 60.0,
    policy: RetryPolicy | None = None,
    rng: random.Random | None = None,
    cancel: threading.Event | None = None,
    max_batches: int | None = None,
) -> DispatchResult:
    """Deliver every outbox message that is due, in claimed batches, until none is left.

    ``now`` fixes the clock for the whole call (tests); by default the real time is read at
    each step. ``senders`` maps a channel to its Sender (default: from the database's settings
    and this computer's keyring); in-app messages need none. Each outcome is committed on its
    own, so a dispatcher killed mid-batch loses at most the claim on what it had not recorded,
    which another dispatcher takes over after ``lease_s``. Never raises for a failed delivery
    (that is recorded on the message); raises DatabaseUnavailable-like SQLAlchemy errors only
    if the database itself fails. Commits.
    """
    policy = policy or RetryPolicy()
    rng = rng or random.Random()
    fixed = now

    def clock() -> dt.datetime:
        return fixed if fixed is not None else utcnow()

    active = dict(senders) if senders is not None else build_senders(engine)
    total = DispatchResult()
    rounds = 0
    try:
        while not (cancel is not None and cancel.is_set()):
            if max_batches is not None and rounds >= max_batches:
                break
            claimed_at = clock()
            claimed = _claim(
                engine,
                worker_id=worker_id,
                senders=active,
                now=claimed_at,
                batch=batch,
                lease_s=lease_s,
            )
            if not claimed:
                break
            rounds += 1
            deadline = claimed_at + dt.timedelta(seconds=lease_s)
            total += _deliver(
                engine, claimed, active, worker_id, clock, deadline, policy, rng, cancel
            )
    finally:
        for sender in active.values():
            try:
                sender.close()
            except Exception:  # closing is best effort; the messages are already recorded
                log.exception("closing the %s sender failed", type(sender).__name__)
    return total


def _deliver(
    engine: Engine,
    claimed: list[_Claimed],
    senders: Mapping[str, Sender],
    worker_id: str,
    clock: Callable[[], dt.datetime],
    deadline: dt.datetime,
    policy: RetryPolicy,
    rng: random.Random,
    cancel: threading.Event | None,
) -> DispatchResult:
    counts = {"claimed": len(claimed), "sent": 0, "failed": 0, "dead": 0, "lost": 0, "released": 0}
    for index, message in enumerate(claimed):
        sender = senders.get(message.channel)
        allowance = float(getattr(sender, "timeout_s", DEFAULT_SEND_ALLOWANCE_S))
        now = clock()
        # Never start a delivery that could outlive the lease: another dispatcher would take
        # the message over and deliver it a second time.
        late = now + dt.timedelta(seconds=allowance) > deadline and index > 0
        if (cancel is not None and cancel.is_set()) or late:
            counts["released"] += _release(engine, claimed[index:], worker_id)
            break
        if message.attempts > policy.max_attempts:
            error = (
                f"Gave up after {message.attempts - 1} attempts; the last dispatcher stopped "
                "before recording its attempt."
            )
            recorded = _record_failure(
                engine, message, worker_id, now, error, dead=True, retry_at=None
            )
            counts["dead" if recorded else "lost"] += 1
            continue
        if message.channel == "inapp":
            counts["sent" if _record_sent(engine, message, worker_id, now) else "lost"] += 1
            continue
        try:
            if sender is None:
                raise DeliveryError(f"No sender for the {message.channel} channel here.")
            sender.send(
                OutboundMessage(
                    id=message.id,
                    channel=message.channel,
                    recipient=message.recipient,
                    payload=message.payload,
                    idempotency_key=message.idempotency_key,
                    attempt=message.attempts,
                    created_at=message.created_at,
                    now=now,
                )
            )
        except Exception as exc:
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            if not isinstance(exc, DeliveryError):
                log.exception("delivering outbox message %s failed unexpectedly", message.id)
            error = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
            dead = permanent or message.attempts >= policy.max_attempts
            done = clock()
            retry_at = (
                None if dead else done + dt.timedelta(seconds=policy.delay_s(message.attempts, rng))
            )
            recorded = _record_failure(
                engine, message, worker_id, done, error, dead=dead, retry_at=retry_at
            )
            if not recorded:
                counts["lost"] += 1
            else:
                counts["dead" if dead else "failed"] += 1
            continue
        if _record_sent(engine, message, worker_id, clock()):
            counts["sent"] += 1
        else:
            counts["lost"] += 1
            log.warning(
                "outbox message %s was delivered after its lease had been taken over; the "
                "receiver may see its idempotency key %s twice",
                message.id,
                message.idempotency_key,
            )
    return DispatchResult(
        claimed=counts["claimed"],
        sent=counts["sent"],
        failed=counts["failed"],
        dead=counts["dead"],
        released=counts["released"],
        lost_claims=counts["lost"],
    )


@dataclass
class Dispatcher:
    """Dispatches due messages for a worker loop or the desktop's timer job.

    Senders are rebuilt from the settings on every round unless given, so a newly configured
    SMTP server or webhook is used without a restart.
    """

    engine: Engine
    worker_id: str = field(default_factory=default_worker_id)
    senders: Mapping[str, Sender] | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    batch: int = 100
    lease_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    digests: bool = True

    def run_once(
        self, *, now: dt.datetime | None = None, cancel: threading.Event | None = None
    ) -> DispatchResult:
        """Queue due digests, then deliver everything due. Commits."""
        digests = enqueue_digests(self.engine, now=now) if self.digests else 0
        result = dispatch_pending(
            self.engine,
            worker_id=self.worker_id,
            senders=self.senders,
            now=now,
            batch=self.batch,
            lease_s=self.lease_s,
            policy=self.policy,
            rng=self.rng,
            cancel=cancel,
        )
        return result + DispatchResult(digests_queued=digests)


# --- In-app inbox -------------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationView:
    id: int
    username: str
    alert_id: int | None
    title: str
    body: str
    created_at: dt.datetime | None
    read_at: dt.datetime | None


def _notification(row: Any) -> NotificationView:
    return NotificationView(
        row.id,
        row.username,
        row.alert_id,
        row.title,
        row.body,
        as_utc(row.created_at),
        as_utc(row.read_at),
    )


def notifications(
    engine: Engine,
    username: str,
    *,
    unread_only: bool = False,
    limit: int = 100,
    before_id: int | None = None,
) -> list[NotificationView]:
    """A user's in-app notifications, newest first (keyset paging with ``before_id``)."""
    table = Notification.__table__
    query = select(table).where(table.c.username == username)
    if unread_only:
        query = query.where(table.c.read_at.is_(None))
    if before_id is not None:
        query = query.where(table.c.id < before_id)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(table.c.id.desc()).limit(limit))
        return [_notification(row) for row in rows]


def unread_notifications(
    engine: Engine, username: str, *, limit: int = 100
) -> list[NotificationView]:
    """The user's unread in-app notifications, newest first (for the alert pane and tray)."""
    return notifications(engine, username, unread_only=True, limit=limit)


def unread_count(engine: Engine, username: str) -> int:
    table = Notification.__table__
    with engine.connect() as connection:
        return int(
            connection.scalar(
                select(func.count())
                .select_from(table)
                .where(table.c.username == username, table.c.read_at.is_(None))
            )
            or 0
        )


def mark_read(
    engine: Engine,
    username: str,
    ids: Sequence[int] | None = None,
    *,
    now: dt.datetime | None = None,
) -> int:
    """Mark the user's notifications ``ids`` (all unread ones if None) read; returns how many.

    Only the user's own notifications are touched. Commits.
    """
    table = Notification.__table__
    condition = and_(table.c.username == username, table.c.read_at.is_(None))
    if ids is not None:
        if not ids:
            return 0
        condition = and_(condition, table.c.id.in_(list(ids)))
    with begin_write(engine) as connection:
        result = connection.execute(update(table).where(condition).values(read_at=now or utcnow()))
        if result.rowcount:
            publish(connection, Changes(notifications=True))
        return int(result.rowcount)


# --- Outbox status ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxView:
    """A notification's delivery status, for the GUI and ``churndesk notify list``."""

    id: int
    alert_id: int | None
    channel: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime | None
    claimed_by: str | None
    claim_expires_at: dt.datetime | None
    last_error: str | None
    created_at: dt.datetime | None
    sent_at: dt.datetime | None
    idempotency_key: str
    summary: str


def _summary(payload: dict[str, Any]) -> str:
    if payload.get("type") == "digest":
        return f"Daily digest: {payload.get('total', 0):,} alerts"
    title, _ = render_inapp(payload)
    return title


def _outbox_view(row: Any) -> OutboxView:
    return OutboxView(
        id=row.id,
        alert_id=row.alert_id,
        channel=row.channel,
        recipient=row.recipient,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=as_utc(row.next_attempt_at),
        claimed_by=row.claimed_by,
        claim_expires_at=as_utc(row.claim_expires_at),
        last_error=row.last_error,
        created_at=as_utc(row.created_at),
        sent_at=as_utc(row.sent_at),
        idempotency_key=row.idempotency_key,
        summary=_summary(dict(row.payload or {})),
    )


def list_outbox(
    engine: Engine, *, status: str | None = None, limit: int = 100, before_id: int | None = None
) -> list[OutboxView]:
    """Outbox messages, newest first, optionally of one status."""
    query = select(OUTBOX)
    if status is not None:
        query = query.where(OUTBOX.c.status == status)
    if before_id is not None:
        query = query.where(OUTBOX.c.id < before_id)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(OUTBOX.c.id.desc()).limit(limit))
        return [_outbox_view(row) for row in rows]


def get_message(engine: Engine, message_id: int) -> OutboxView:
    """One outbox message; raises NotFoundError."""
    with engine.connect() as connection:
        row = connection.execute(select(OUTBOX).where(OUTBOX.c.id == message_id)).first()
    if row is None:
        raise NotFoundError(f"There is no notification {message_id}.")
    return _outbox_view(row)


def outbox_counts(engine: Engine) -> dict[str, int]:
    """How many messages are in each delivery state."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status)
        ).all()
    counts = {status: 0 for status in ("pending", "sending", "sent", "failed", "dead")}
    counts.update({status: int(n) for status, n in rows})
    return counts


def retry_message(
    engine: Engine, message_id: int, *, actor: str | None, now: dt.datetime | None = None
) -> OutboxView:
    """Put a dead or failed message back in the queue with fresh attempts.

    Raises NotFoundError, or ConflictError for a message that was sent or is being sent. Commits.
    """
    with begin_write(engine) as connection:
        status = connection.scalar(select(OUTBOX.c.status).where(OUTBOX.c.id == message_id))
        if status is None:
            raise NotFoundError(f"There is no notification {message_id}.")
        if status not in ("dead", "failed"):
            raise ConflictError(
                f"Notification {message_id} is {status}; only failed or dead ones can be retried."
            )
        connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == message_id, OUTBOX.c.status.in_(["dead", "failed"]))
            .values(status="pending", attempts=0, next_attempt_at=now or utcnow(), **_CLEAR_CLAIM)
        )
        audit.record(
            connection,
            actor=actor,
            action="retry",
            entity="notification",
            entity_id=message_id,
            changes={"status": [status, "pending"]},
        )
        publish(connection, Changes(notifications=True))
    return get_message(engine, message_id)

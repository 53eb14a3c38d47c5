"""Alerts: lifecycle (acknowledge, assign, snooze, resolve), history and statistics.

Rules live in :mod:`alert_rules` and evaluation in :mod:`alert_evaluation`; both are
re-exported here so callers need one import: ``from churndesk.services import alerts``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Float, and_, cast, func, literal_column, select, update

from churndesk.db.engine import begin_write
from churndesk.db.models import (
    ALERT_STATUSES,
    SEVERITIES,
    Alert,
    AlertEvent,
    AlertRule,
    Customer,
    Notification,
)
from churndesk.errors import ConflictError, NotFoundError, ValidationError
from churndesk.services import audit
from churndesk.services.alert_common import as_utc, const, utcnow
from churndesk.services.alert_evaluation import (
    EvaluationResult,
    RuleOutcome,
    evaluate_rules,
    last_evaluated_run,
    latest_completed_run,
    wake_snoozed_alerts,
)
from churndesk.services.alert_rules import (
    DEFAULT_RULES,
    EVERYONE,
    RuleSpec,
    RuleView,
    active_users,
    create_rule,
    delete_rule,
    ensure_default_rules,
    get_rule,
    list_rules,
    set_rule_enabled,
    update_rule,
    validate_rule,
)
from churndesk.services.changes import Changes, publish
from churndesk.services.notify import mark_read, unread_notifications

__all__ = [
    "ALERT_STATUSES",
    "DEFAULT_RULES",
    "EVERYONE",
    "AlertDetail",
    "AlertEventView",
    "AlertStatistics",
    "AlertView",
    "EvaluationResult",
    "RuleOutcome",
    "RuleSpec",
    "RuleView",
    "acknowledge_alert",
    "alert_history",
    "alert_statistics",
    "assign_alert",
    "create_rule",
    "delete_rule",
    "ensure_default_rules",
    "evaluate_rules",
    "get_alert",
    "get_rule",
    "last_evaluated_run",
    "latest_completed_run",
    "list_rules",
    "mark_read",
    "resolve_alert",
    "set_rule_enabled",
    "snooze_alert",
    "unread_notifications",
    "update_rule",
    "validate_rule",
    "wake_snoozed_alerts",
]

ALERTS = Alert.__table__
EVENTS = AlertEvent.__table__
RULES = AlertRule.__table__
CUSTOMERS = Customer.__table__
NOTE_CHARS = 2000
MAX_SNOOZE = dt.timedelta(days=365)


@dataclass(frozen=True)
class AlertView:
    id: int
    rule_id: int
    rule_name: str
    customer_id: int | None
    customer_name: str | None
    external_id: str | None
    run_id: int | None
    status: str
    severity: str
    title: str
    details: dict[str, Any]
    score: float | None
    created_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    assigned_to: str | None
    assigned_at: dt.datetime | None
    snoozed_until: dt.datetime | None
    resolved_at: dt.datetime | None
    resolved_by: str | None
    note: str


@dataclass(frozen=True)
class AlertEventView:
    id: int
    alert_id: int
    action: str
    actor: str | None
    at: dt.datetime | None
    note: str


@dataclass(frozen=True)
class AlertDetail:
    alert: AlertView
    events: tuple[AlertEventView, ...]


def _alert_query() -> Any:
    return select(
        ALERTS,
        RULES.c.name.label("rule_name"),
        CUSTOMERS.c.name.label("customer_name"),
        CUSTOMERS.c.external_id,
    ).select_from(
        ALERTS.join(RULES, RULES.c.id == ALERTS.c.rule_id).outerjoin(
            CUSTOMERS, CUSTOMERS.c.id == ALERTS.c.customer_id
        )
    )


def _alert(row: Any) -> AlertView:
    return AlertView(
        id=row.id,
        rule_id=row.rule_id,
        rule_name=row.rule_name,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        external_id=row.external_id,
        run_id=row.run_id,
        status=row.status,
        severity=row.severity,
        title=row.title,
        details=dict(row.details or {}),
        score=row.score,
        created_at=as_utc(row.created_at),
        acknowledged_at=as_utc(row.acknowledged_at),
        acknowledged_by=row.acknowledged_by,
        assigned_to=row.assigned_to,
        assigned_at=as_utc(row.assigned_at),
        snoozed_until=as_utc(row.snoozed_until),
        resolved_at=as_utc(row.resolved_at),
        resolved_by=row.resolved_by,
        note=row.note or "",
    )


def _load(connection: Connection, alert_id: int) -> AlertView:
    row = connection.execute(_alert_query().where(ALERTS.c.id == alert_id)).first()
    if row is None:
        raise NotFoundError(f"There is no alert {alert_id}.")
    return _alert(row)


def get_alert(engine: Engine, alert_id: int) -> AlertDetail:
    """An alert with every step of its lifecycle; raises NotFoundError."""
    with engine.connect() as connection:
        alert = _load(connection, alert_id)
        rows = connection.execute(
            select(EVENTS).where(EVENTS.c.alert_id == alert_id).order_by(EVENTS.c.at, EVENTS.c.id)
        )
        events = tuple(
            AlertEventView(r.id, r.alert_id, r.action, r.actor, as_utc(r.at), r.note or "")
            for r in rows
        )
    return AlertDetail(alert, events)


# --- Lifecycle ----------------------------------------------------------------------------


def _step(
    engine: Engine,
    alert_id: int,
    *,
    action: str,
    actor: str,
    note: str,
    now: dt.datetime | None,
    values: dict[str, Any] | None = None,
    values_for: Any = None,
    also: Callable[[Connection, AlertView], None] | None = None,
) -> AlertView:
    """Apply one lifecycle step to an unresolved alert, with its event and audit entry."""
    note = (note or "").strip()
    if len(note) > NOTE_CHARS:
        raise ValidationError(f"A note can have at most {NOTE_CHARS:,} characters.")
    if not actor:
        raise ValidationError("Say who is doing this (a user name).")
    now = now or utcnow()
    with begin_write(engine) as connection:
        before = _load(connection, alert_id)
        if before.status == "resolved":
            raise ConflictError(f"Alert {alert_id} is already resolved.")
        changes = dict(values_for(before, now) if values_for else values or {})
        if note:
            changes["note"] = note
        result = connection.execute(
            update(ALERTS)
            .where(ALERTS.c.id == alert_id, ALERTS.c.status != const("resolved"))
            .values(changes)
        )
        if result.rowcount != 1:
            raise ConflictError(f"Alert {alert_id} was resolved meanwhile.")
        connection.execute(
            EVENTS.insert().values(alert_id=alert_id, action=action, actor=actor, at=now, note=note)
        )
        after = _load(connection, alert_id)
        audit.record(
            connection,
            actor=actor,
            action=action,
            entity="alert",
            entity_id=alert_id,
            changes={
                k: [getattr(before, k, None), getattr(after, k, None)]
                for k in changes
                if k != "note"
            }
            | ({"note": note} if note else {}),
        )
        if also is not None:
            also(connection, after)
        publish(connection, Changes(alerts=True, notifications=also is not None))
        return after


def acknowledge_alert(
    engine: Engine, alert_id: int, *, actor: str, note: str = "", now: dt.datetime | None = None
) -> AlertView:
    """Mark an alert seen by ``actor`` (a snoozed alert wakes up acknowledged).

    Raises NotFoundError, ConflictError for a resolved alert, ValidationError. Commits.
    """

    def values(before: AlertView, at: dt.datetime) -> dict[str, Any]:
        out: dict[str, Any] = {"snoozed_until": None}
        if before.acknowledged_at is None:
            out.update(acknowledged_at=at, acknowledged_by=actor)
        out["status"] = "assigned" if before.assigned_to else "acknowledged"
        return out

    return _step(
        engine, alert_id, action="acknowledged", actor=actor, note=note, now=now, values_for=values
    )


def assign_alert(
    engine: Engine,
    alert_id: int,
    assignee: str,
    *,
    actor: str,
    note: str = "",
    now: dt.datetime | None = None,
) -> AlertView:
    """Give an alert to ``assignee`` (an active user), who gets an in-app notification.

    Assigning also acknowledges. Raises NotFoundError, ConflictError, ValidationError for an
    unknown user. Commits.
    """
    assignee = (assignee or "").strip()
    with engine.connect() as connection:
        users = active_users(connection)
    if assignee not in users:
        raise ValidationError(
            f"There is no active user named '{assignee}'.", {"assignee": "Unknown user."}
        )

    def values(before: AlertView, at: dt.datetime) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": "assigned",
            "assigned_to": assignee,
            "assigned_at": at,
            "snoozed_until": None,
        }
        if before.acknowledged_at is None:
            out.update(acknowledged_at=at, acknowledged_by=actor)
        return out

    def tell_assignee(connection: Connection, alert: AlertView) -> None:
        connection.execute(
            Notification.__table__.insert().values(
                username=assignee,
                alert_id=alert_id,
                title=f"Assigned to you by {actor}: {alert.title}"[:300],
                body=note,
                created_at=now or utcnow(),
            )
        )

    return _step(
        engine,
        alert_id,
        action="assigned",
        actor=actor,
        note=note,
        now=now,
        values_for=values,
        also=tell_assignee if assignee != actor else None,
    )


def snooze_alert(
    engine: Engine,
    alert_id: int,
    until: dt.datetime,
    *,
    actor: str,
    note: str = "",
    now: dt.datetime | None = None,
) -> AlertView:
    """Hide an alert until ``until``; it then returns to its earlier state.

    While snoozed the rule raises no new alert for the same customer. Raises ValidationError
    for a time not in the future (or over a year ahead), NotFoundError, ConflictError. Commits.
    """
    now = now or utcnow()
    until = as_utc(until) or now
    if until <= now:
        raise ValidationError("Snooze until a time in the future.", {"until": "In the past."})
    if until - now > MAX_SNOOZE:
        raise ValidationError("An alert can be snoozed for at most a year.", {"until": "Too far."})
    return _step(
        engine,
        alert_id,
        action="snoozed",
        actor=actor,
        note=note,
        now=now,
        values={"status": "snoozed", "snoozed_until": until},
    )


def resolve_alert(
    engine: Engine, alert_id: int, *, actor: str, note: str = "", now: dt.datetime | None = None
) -> AlertView:
    """Close an alert; the rule may raise a new one for the customer after its cool-down.

    Raises NotFoundError, ConflictError for an alert already resolved. Commits.
    """

    def values(before: AlertView, at: dt.datetime) -> dict[str, Any]:
        return {
            "status": "resolved",
            "resolved_at": at,
            "resolved_by": actor,
            "snoozed_until": None,
        }

    return _step(
        engine, alert_id, action="resolved", actor=actor, note=note, now=now, values_for=values
    )


# --- History ------------------------------------------------------------------------------


def alert_history(
    engine: Engine,
    *,
    customer_id: int | None = None,
    rule_id: int | None = None,
    statuses: Sequence[str] | None = None,
    severity: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[AlertView]:
    """Alerts newest first, filtered by customer, rule, status, severity and time.

    Pages by keyset: pass the last id of a page as ``before_id`` for the next. Raises
    ValidationError for an unknown status or severity.
    """
    query = _alert_query()
    if customer_id is not None:
        query = query.where(ALERTS.c.customer_id == customer_id)
    if rule_id is not None:
        query = query.where(ALERTS.c.rule_id == rule_id)
    if statuses:
        unknown = sorted(set(statuses) - set(ALERT_STATUSES))
        if unknown:
            raise ValidationError(
                f"Unknown alert status {unknown[0]}: use {', '.join(ALERT_STATUSES)}."
            )
        query = query.where(ALERTS.c.status.in_(list(statuses)))
    if severity is not None:
        if severity not in SEVERITIES:
            raise ValidationError(f"Unknown severity {severity}: use {', '.join(SEVERITIES)}.")
        query = query.where(ALERTS.c.severity == severity)
    if since is not None:
        query = query.where(ALERTS.c.created_at >= since)
    if until is not None:
        query = query.where(ALERTS.c.created_at < until)
    if before_id is not None:
        query = query.where(ALERTS.c.id < before_id)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(ALERTS.c.id.desc()).limit(limit))
        return [_alert(row) for row in rows]


# --- Statistics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertStatistics:
    """Alert counts and response times over ``[since, until)``; times in seconds."""

    since: dt.datetime
    until: dt.datetime
    total: int
    per_day: tuple[tuple[str, int], ...]
    per_rule: tuple[tuple[int, str, int], ...]
    per_severity: dict[str, int]
    per_status: dict[str, int]
    mean_time_to_acknowledge_s: float | None
    mean_time_to_resolve_s: float | None
    unresolved_now: int

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "total": self.total,
            "per_day": [{"day": d, "alerts": n} for d, n in self.per_day],
            "per_rule": [{"rule_id": i, "rule": name, "alerts": n} for i, name, n in self.per_rule],
            "per_severity": self.per_severity,
            "per_status": self.per_status,
            "mean_time_to_acknowledge_s": self.mean_time_to_acknowledge_s,
            "mean_time_to_resolve_s": self.mean_time_to_resolve_s,
            "unresolved_now": self.unresolved_now,
        }


def _seconds_between(connection: Connection, start: Any, end: Any) -> Any:
    if connection.dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _day(connection: Connection, column: Any) -> Any:
    if connection.dialect.name == "postgresql":
        return func.to_char(func.timezone(literal_column("'UTC'"), column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def alert_statistics(
    engine: Engine,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    days: int = 30,
) -> AlertStatistics:
    """Alerts per day (UTC), per rule, per severity and status, and mean times to acknowledge
    and to resolve, for alerts created in ``[since, until)`` (default: the last ``days``)."""
    until = as_utc(until) or utcnow()
    since = as_utc(since) or until - dt.timedelta(days=days)
    window = and_(ALERTS.c.created_at >= since, ALERTS.c.created_at < until)
    with engine.connect() as connection:
        day = _day(connection, ALERTS.c.created_at).label("day")
        per_day = connection.execute(
            select(day, func.count()).where(window).group_by(day).order_by(day)
        ).all()
        per_rule = connection.execute(
            select(RULES.c.id, RULES.c.name, func.count())
            .select_from(ALERTS.join(RULES, RULES.c.id == ALERTS.c.rule_id))
            .where(window)
            .group_by(RULES.c.id, RULES.c.name)
            .order_by(func.count().desc(), RULES.c.id)
        ).all()
        per_severity = dict(
            connection.execute(
                select(ALERTS.c.severity, func.count()).where(window).group_by(ALERTS.c.severity)
            ).all()
        )
        per_status = dict(
            connection.execute(
                select(ALERTS.c.status, func.count()).where(window).group_by(ALERTS.c.status)
            ).all()
        )
        to_ack = cast(
            _seconds_between(connection, ALERTS.c.created_at, ALERTS.c.acknowledged_at), Float
        )
        to_resolve = cast(
            _seconds_between(connection, ALERTS.c.created_at, ALERTS.c.resolved_at), Float
        )
        mtta, mttr = connection.execute(
            select(func.avg(to_ack), func.avg(to_resolve)).where(window)
        ).one()
        unresolved = connection.scalar(
            select(func.count()).select_from(ALERTS).where(ALERTS.c.status != const("resolved"))
        )
    return AlertStatistics(
        since=since,
        until=until,
        total=sum(int(n) for _, n in per_day),
        per_day=tuple((str(d), int(n)) for d, n in per_day),
        per_rule=tuple((int(i), str(name), int(n)) for i, name, n in per_rule),
        per_severity={s: int(per_severity.get(s, 0)) for s in SEVERITIES},
        per_status={s: int(per_status.get(s, 0)) for s in ALERT_STATUSES},
        mean_time_to_acknowledge_s=None if mtta is None else round(float(mtta), 3),
        mean_time_to_resolve_s=None if mttr is None else round(float(mttr), 3),
        unresolved_now=int(unresolved or 0),
    )

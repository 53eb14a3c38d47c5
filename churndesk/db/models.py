"""SQLAlchemy 2 table models for the whole product; the Alembic migrations mirror these exactly.

Every column the customer table sorts or filters by has an ``(column, id)`` index so keyset
paging and ordered-id queries are served by an index. The trigram (pg_trgm) indexes for text
search are PostgreSQL-only and live in the migrations, not here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("admin", "analyst", "viewer")
CUSTOMER_STATUSES = ("active", "churned")
BANDS = ("low", "medium", "high", "critical")
MODEL_STATUSES = ("candidate", "active", "retired")
RUN_STATUSES = ("running", "completed", "cancelled", "failed")
RULE_KINDS = ("score_threshold", "score_rise", "band_change", "revenue_at_risk", "model_drift")
SEVERITIES = ("info", "warning", "critical")
ALERT_STATUSES = ("open", "acknowledged", "assigned", "snoozed", "resolved")
CHANNELS = ("inapp", "email", "webhook")
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "dead")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(63), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16), default="analyst")
    # Only for the embedded SQLite mode; on PostgreSQL the server checks passwords.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(_in("status", CUSTOMER_STATUSES), name="status"),
        CheckConstraint("monthly_revenue IS NULL OR monthly_revenue >= 0", name="revenue"),
        Index(None, "name", "id"),
        Index(None, "email", "id"),
        # Filters: each carries the other filter columns, so any combination is counted from
        # one index: INCLUDE on PostgreSQL (migration 0009), trailing key columns on SQLite,
        # which has no INCLUDE (0010).
        Index(None, "segment", "id", postgresql_include=["plan", "status", "owner"]),
        Index(None, "plan", "id", postgresql_include=["segment", "status", "owner"]),
        Index(None, "country", "id"),
        Index(None, "status", "id", postgresql_include=["segment", "plan", "owner"]),
        Index(None, "owner", "id", postgresql_include=["segment", "plan", "status"]),
        Index(None, "signup_date", "id"),
        Index(None, "monthly_revenue", "id"),
        Index(None, "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    email: Mapped[str | None] = mapped_column(String(254))
    segment: Mapped[str | None] = mapped_column(String(64))
    plan: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(64))
    signup_date: Mapped[dt.date | None] = mapped_column(Date)
    monthly_revenue: Mapped[float | None] = mapped_column(Numeric(12, 2, asdecimal=False))
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    churned_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    owner: Mapped[str | None] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        Timestamp, server_default=func.now(), onupdate=func.now()
    )

    __mapper_args__ = {"version_id_col": version}


class CustomerScore(Base):
    """A customer's current score, band and revenue at risk: the latest run's, or the rescore
    after an edit. A customer not scored yet has no row.

    Kept out of ``customers`` because a run rewrites it for every customer whose score moved:
    updating an indexed column of a wide row writes a new version of the row into every index
    of the table (17 on PostgreSQL, trigram indexes included), while this row has four.
    """

    __tablename__ = "customer_scores"
    __table_args__ = (
        CheckConstraint("risk_score >= 0 AND risk_score <= 100", name="risk_score"),
        CheckConstraint(_in("risk_band", BANDS), name="risk_band"),
        Index(None, "risk_score", "customer_id"),
        Index(None, "risk_band", "customer_id"),
        Index(None, "revenue_at_risk", "customer_id"),
    )

    customer_id: Mapped[int] = mapped_column(
        BigId,
        ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )
    risk_score: Mapped[float] = mapped_column(Float)
    # The score before the last change, for the trend.
    risk_score_prev: Mapped[float | None] = mapped_column(Float)
    risk_band: Mapped[str] = mapped_column(String(16))
    revenue_at_risk: Mapped[float | None] = mapped_column(Float)
    # The top drivers of this score: [{"feature", "direction", "magnitude", ...}, ...]. Plain
    # JSON (text) on PostgreSQL too: never queried inside, staged and compared as text by runs
    # (migration 0008).
    drivers: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    # When these last changed: a run rewrites only the customers whose values moved (the
    # history in risk_scores has every run's time).
    scored_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint(_in("status", MODEL_STATUSES), name="status"),
        Index(None, "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="churn")
    version: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    feature_schema: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    artifact_format: Mapped[str] = mapped_column(String(32), default="joblib")
    sha256: Mapped[str] = mapped_column(String(64))
    training_fingerprint: Mapped[str | None] = mapped_column(String(64))
    training_rows: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="candidate")
    trained_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    trained_by: Mapped[str | None] = mapped_column(String(63))
    promoted_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    promoted_by: Mapped[str | None] = mapped_column(String(63))
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")


class ScoringRun(Base):
    __tablename__ = "scoring_runs"
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        Index(None, "started_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_by: Mapped[str | None] = mapped_column(String(63))
    started_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    customers_scored: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    band_counts: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    score_distribution: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    psi: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)


class RiskScore(Base):
    """One customer's score from one run: the full score history.

    Narrow on purpose (every run appends a row per customer): the drivers of the current
    score live in ``customer_scores``.
    """

    __tablename__ = "risk_scores"
    __table_args__ = (
        # The only secondary index, and it grows at its end as runs are appended. Alert
        # evaluation reads a run's scores, bands and revenue at risk from it alone; a
        # customer's history is read from it one run at a time (``customer_views``). An index
        # by customer took a million scattered inserts per run (migration 0007).
        Index(None, "run_id", "customer_id", "score", "band", "revenue_at_risk"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys (migrations 0006 and 0007): PostgreSQL checks a foreign key row by row,
    # and those checks were much of appending a run of a million rows. The scoring service
    # writes history only for customers that exist, and the customer service deletes a
    # customer's history with the customer (``services.history``).
    customer_id: Mapped[int] = mapped_column(BigId)
    run_id: Mapped[int | None] = mapped_column(BigId)
    model_version_id: Mapped[int] = mapped_column(BigId)
    score: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(16))
    revenue_at_risk: Mapped[float | None] = mapped_column(Float)
    scored_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())


class AlertRule(Base):
    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint(_in("kind", RULE_KINDS), name="kind"),
        CheckConstraint(_in("severity", SEVERITIES), name="severity"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    # e.g. {"threshold": 80} or {"points": 20, "days": 30}; validated by the alerts service.
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # {"segment": ..., "plan": ..., "owner": ...}; an absent key means "any".
    scope: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    channels: Mapped[list[str]] = mapped_column(Json, default=list)
    recipients: Mapped[list[str]] = mapped_column(Json, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    cooldown_hours: Mapped[float] = mapped_column(Float, default=24.0, server_default="24")
    hysteresis_margin: Mapped[float] = mapped_column(Float, default=5.0, server_default="5")
    created_by: Mapped[str | None] = mapped_column(String(63))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        Timestamp, server_default=func.now(), onupdate=func.now()
    )
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class AlertRuleState(Base):
    """Per rule and customer: whether the rule is armed (hysteresis) and when it last fired."""

    __tablename__ = "alert_rule_state"

    rule_id: Mapped[int] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    armed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    last_fired_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(_in("status", ALERT_STATUSES), name="status"),
        CheckConstraint(_in("severity", SEVERITIES), name="severity"),
        # At most one unresolved alert per de-duplication key (rule + customer).
        Index(
            "uq_alerts_dedup_key_unresolved",
            "dedup_key",
            unique=True,
            postgresql_where=text("status <> 'resolved'"),
            sqlite_where=text("status <> 'resolved'"),
        ),
        Index(None, "status", "created_at"),
        Index(None, "customer_id", "created_at"),
        Index(None, "rule_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("scoring_runs.id", ondelete="SET NULL"))
    dedup_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    title: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    acknowledged_by: Mapped[str | None] = mapped_column(String(63))
    assigned_to: Mapped[str | None] = mapped_column(String(63))
    assigned_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    snoozed_until: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    resolved_by: Mapped[str | None] = mapped_column(String(63))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")


class AlertEvent(Base):
    """One step of an alert's lifecycle: who did what, when, with a note."""

    __tablename__ = "alert_events"
    __table_args__ = (Index(None, "alert_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(63))
    at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    note: Mapped[str] = mapped_column(Text, default="", server_default="")


class OutboxMessage(Base):
    """A notification to deliver, written in the same transaction as the alert it announces."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claim_expires_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    sent_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class Notification(Base):
    """An in-app notification for one user (alert pane and tray popups)."""

    __tablename__ = "notifications"
    __table_args__ = (Index(None, "username", "read_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(63))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    read_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index(None, "entity", "entity_id", "at"),
        Index(None, "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())
    actor: Mapped[str | None] = mapped_column(String(63))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class Setting(Base):
    """A setting shared by every desktop of this database (band cut-offs, horizon, ...)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(Json)
    updated_at: Mapped[dt.datetime] = mapped_column(
        Timestamp, server_default=func.now(), onupdate=func.now()
    )
    updated_by: Mapped[str | None] = mapped_column(String(63))


class PendingIndex(Base):
    """An index a bulk load dropped, to build after its commit (churndesk.db.pending_indexes)."""

    __tablename__ = "pending_indexes"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(63))
    definition: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.now())

"""Alert rules: validation, create/edit/enable/delete with audit, and the default rule set."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from churndesk.db.engine import begin_write
from churndesk.db.models import (
    BANDS,
    CHANNELS,
    RULE_KINDS,
    SEVERITIES,
    Alert,
    AlertRule,
    User,
)
from churndesk.errors import ConflictError, NotFoundError, StaleEditError, ValidationError
from churndesk.services import audit
from churndesk.services.alert_common import as_utc, read_setting, write_setting
from churndesk.services.changes import Changes, publish
from churndesk.services.channels.config import is_email, webhook_endpoints

#: The recipient that means every active admin and analyst.
EVERYONE = "*"
EMAIL_MODES = ("immediate", "digest")
#: Delivery options kept in ``params`` beside the kind's own parameters.
EMAIL_MODE_PARAM = "email_mode"
SCOPE_KEYS = ("segment", "plan", "owner")
KIND_PARAMS: dict[str, tuple[str, ...]] = {
    "score_threshold": ("threshold",),
    "score_rise": ("points", "days"),
    "band_change": ("band",),
    "revenue_at_risk": ("amount",),
    "model_drift": ("psi",),
}
#: Bands a band_change rule can watch: entering "low" would mean every customer.
WATCHABLE_BANDS = BANDS[1:]
DEFAULTS_CREATED_KEY = "alerts.default_rules_created"
# Any constant: it only has to be the same in every process opening this database.
DEFAULTS_LOCK_ID = 716_006_001
MAX_COOLDOWN_HOURS = 24 * 365


@dataclass(frozen=True)
class RuleSpec:
    """What a user enters for a rule; ``hysteresis_margin=None`` takes the kind's default."""

    name: str
    kind: str
    params: Mapping[str, Any]
    scope: Mapping[str, Any] = field(default_factory=dict)
    severity: str = "warning"
    channels: Sequence[str] = ("inapp",)
    recipients: Sequence[str] = (EVERYONE,)
    enabled: bool = True
    cooldown_hours: float = 24.0
    hysteresis_margin: float | None = None
    email_mode: str = "immediate"


@dataclass(frozen=True)
class RuleView:
    id: int
    name: str
    kind: str
    params: dict[str, Any]
    scope: dict[str, list[str]]
    severity: str
    channels: tuple[str, ...]
    recipients: tuple[str, ...]
    enabled: bool
    cooldown_hours: float
    hysteresis_margin: float
    email_mode: str
    created_by: str | None
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    version: int

    @property
    def condition(self) -> str:
        """The rule in words, e.g. "risk score ≥ 80 (segment: SMB)"."""
        return describe(self.kind, self.params, self.scope)

    def to_spec(self) -> RuleSpec:
        return RuleSpec(
            name=self.name,
            kind=self.kind,
            params=dict(self.params),
            scope=dict(self.scope),
            severity=self.severity,
            channels=self.channels,
            recipients=self.recipients,
            enabled=self.enabled,
            cooldown_hours=self.cooldown_hours,
            hysteresis_margin=self.hysteresis_margin,
            email_mode=self.email_mode,
        )


def describe(kind: str, params: Mapping[str, Any], scope: Mapping[str, Any] | None = None) -> str:
    if kind == "score_threshold":
        text = f"risk score ≥ {params['threshold']:g}"
    elif kind == "score_rise":
        text = f"risk score up by ≥ {params['points']:g} points within {params['days']} days"
    elif kind == "band_change":
        text = f"enters the {params['band']} band or above"
    elif kind == "revenue_at_risk":
        text = f"revenue at risk ≥ {params['amount']:,.2f}"
    else:
        text = f"model drift: PSI ≥ {params['psi']:g}"
    parts = [f"{key}: {', '.join(values)}" for key, values in (scope or {}).items() if values]
    return text + (f" ({'; '.join(parts)})" if parts else "")


def default_margin(kind: str, params: Mapping[str, Any]) -> float:
    """Hysteresis margin in the rule's own unit: points, money or PSI."""
    if kind == "revenue_at_risk":
        return round(float(params["amount"]) * 0.1, 2)
    if kind == "model_drift":
        return round(float(params["psi"]) * 0.25, 4)
    return 5.0


DEFAULT_RULES = (
    RuleSpec(
        name="Customer enters the critical band",
        kind="band_change",
        params={"band": "critical"},
        severity="critical",
    ),
    RuleSpec(
        name="Risk up 20 points within 30 days",
        kind="score_rise",
        params={"points": 20, "days": 30},
        severity="warning",
    ),
    RuleSpec(
        name="Model drift (PSI ≥ 0.2)",
        kind="model_drift",
        params={"psi": 0.2},
        severity="warning",
        cooldown_hours=24.0,
    ),
)


# --- Validation ---------------------------------------------------------------------------


def _number(
    problems: dict[str, str],
    key: str,
    value: Any,
    *,
    low: float,
    high: float,
    low_inclusive: bool = True,
    label: str,
) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems[key] = f"{label} must be a number."
        return 0.0
    too_low = number < low if low_inclusive else number <= low
    if math.isnan(number) or too_low or number > high:
        bound = "from" if low_inclusive else "above"
        problems[key] = f"{label} must be {bound} {low:g} to {high:g}."
    return number


def _params(kind: str, raw: Mapping[str, Any], problems: dict[str, str]) -> dict[str, Any]:
    expected = KIND_PARAMS[kind]
    unknown = sorted(set(raw) - set(expected) - {EMAIL_MODE_PARAM})
    if unknown:
        problems["params"] = f"A {kind} rule does not take {', '.join(unknown)}."
    missing = [key for key in expected if raw.get(key) in (None, "")]
    if missing:
        problems["params"] = f"A {kind} rule needs {', '.join(missing)}."
        return {}
    if kind == "score_threshold":
        return {
            "threshold": _number(
                problems, "threshold", raw["threshold"], low=0, high=100, label="The threshold"
            )
        }
    if kind == "score_rise":
        points = _number(
            problems,
            "points",
            raw["points"],
            low=0,
            high=100,
            low_inclusive=False,
            label="The rise in points",
        )
        days = raw["days"]
        if isinstance(days, float) and days.is_integer():
            days = int(days)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365:
            problems["days"] = "The number of days must be a whole number from 1 to 365."
        return {"points": points, "days": days}
    if kind == "band_change":
        band = str(raw["band"]).strip().lower()
        if band not in WATCHABLE_BANDS:
            problems["band"] = f"The band must be one of {', '.join(WATCHABLE_BANDS)}."
        return {"band": band}
    if kind == "revenue_at_risk":
        amount = _number(
            problems,
            "amount",
            raw["amount"],
            low=0,
            high=1e12,
            low_inclusive=False,
            label="The revenue at risk",
        )
        return {"amount": amount}
    psi = _number(problems, "psi", raw["psi"], low=0, high=10, low_inclusive=False, label="The PSI")
    return {"psi": psi}


def _threshold_of(kind: str, params: Mapping[str, Any]) -> float | None:
    key = {"score_threshold": "threshold", "score_rise": "points", "revenue_at_risk": "amount"}
    if kind in key:
        return float(params[key[kind]])
    if kind == "model_drift":
        return float(params["psi"])
    return None


def _scope(raw: Mapping[str, Any], problems: dict[str, str]) -> dict[str, list[str]]:
    unknown = sorted(set(raw) - set(SCOPE_KEYS))
    if unknown:
        problems["scope"] = f"A scope can only name {', '.join(SCOPE_KEYS)}, not {unknown[0]}."
    scope: dict[str, list[str]] = {}
    for key in SCOPE_KEYS:
        value = raw.get(key)
        if value in (None, "", [], ()):
            continue
        values = [value] if isinstance(value, str) else list(value)
        cleaned = [str(v).strip() for v in values if str(v).strip()]
        if not cleaned or any(len(v) > 64 for v in cleaned):
            problems[f"scope.{key}"] = f"Each {key} in the scope must be 1 to 64 characters."
        scope[key] = list(dict.fromkeys(cleaned))
    return scope


def _recipients(
    channels: Sequence[str],
    recipients: Sequence[str],
    users: Mapping[str, str | None],
    endpoints: Collection[str],
    problems: dict[str, str],
) -> None:
    for recipient in recipients:
        known = (
            recipient == EVERYONE
            or recipient in users
            or is_email(recipient)
            or recipient in endpoints
        )
        if not known:
            problems["recipients"] = (
                f"'{recipient}' is not a user, an e-mail address or a webhook endpoint "
                "(add endpoints with 'churndesk notify webhook add')."
            )
            return
    needs = {
        "inapp": lambda r: r == EVERYONE or r in users,
        "email": lambda r: r == EVERYONE or is_email(r) or bool(users.get(r)),
        "webhook": lambda r: r in endpoints,
    }
    what = {
        "inapp": "a user name or *",
        "email": "an e-mail address, a user with an e-mail address, or *",
        "webhook": "a webhook endpoint name",
    }
    for channel in channels:
        if not any(needs[channel](r) for r in recipients):
            problems["recipients"] = f"The {channel} channel needs {what[channel]} as a recipient."


def validate_rule(
    spec: RuleSpec,
    *,
    users: Mapping[str, str | None],
    endpoints: Collection[str],
) -> RuleSpec:
    """Check and normalise a rule; raises ValidationError naming every problem.

    ``users`` maps active user names to their e-mail address (or None); ``endpoints`` are the
    webhook endpoint names of the database.
    """
    problems: dict[str, str] = {}
    name = " ".join(str(spec.name or "").split())
    if not name:
        problems["name"] = "Give the rule a name."
    elif len(name) > 200:
        problems["name"] = "The name can have at most 200 characters."
    params: dict[str, Any] = {}
    if spec.kind not in RULE_KINDS:
        problems["kind"] = f"The kind must be one of {', '.join(RULE_KINDS)}."
    else:
        params = _params(spec.kind, spec.params or {}, problems)
    scope = _scope(spec.scope or {}, problems)
    if spec.kind == "model_drift" and scope:
        problems["scope"] = "A model drift rule watches whole runs; it has no customer scope."
    if spec.severity not in SEVERITIES:
        problems["severity"] = f"The severity must be one of {', '.join(SEVERITIES)}."
    channels = tuple(dict.fromkeys(str(c).strip().lower() for c in spec.channels))
    bad_channels = [c for c in channels if c not in CHANNELS]
    if bad_channels:
        problems["channels"] = f"Unknown channel {bad_channels[0]}: use inapp, email or webhook."
    recipients = tuple(dict.fromkeys(str(r).strip() for r in spec.recipients if str(r).strip()))
    if not bad_channels:
        _recipients(channels, recipients, users, endpoints, problems)
    email_mode = (spec.email_mode or "immediate").strip().lower()
    if email_mode not in EMAIL_MODES:
        problems["email_mode"] = "E-mail delivery must be immediate or digest."
    cooldown = _number(
        problems,
        "cooldown_hours",
        spec.cooldown_hours,
        low=0,
        high=MAX_COOLDOWN_HOURS,
        label="The cool-down (hours)",
    )
    margin = spec.hysteresis_margin
    if margin is None and params and spec.kind in KIND_PARAMS and "params" not in problems:
        margin = default_margin(spec.kind, params)
    margin = _number(
        problems,
        "hysteresis_margin",
        margin if margin is not None else 0,
        low=0,
        high=1e12,
        label="The hysteresis margin",
    )
    threshold = _threshold_of(spec.kind, params) if params and not problems else None
    if threshold is not None and margin >= threshold:
        problems["hysteresis_margin"] = (
            f"The hysteresis margin ({margin:g}) must be smaller than the threshold "
            f"({threshold:g}), or the rule could never re-arm."
        )
    if problems:
        first = next(iter(problems.values()))
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ValidationError(f"The alert rule is not valid: {first}{more}", problems)
    return replace(
        spec,
        name=name,
        params=params,
        scope=scope,
        channels=channels,
        recipients=recipients,
        cooldown_hours=cooldown,
        hysteresis_margin=margin,
        email_mode=email_mode,
    )


def active_users(connection: Connection) -> dict[str, str | None]:
    rows = connection.execute(select(User.username, User.email).where(User.is_active.is_(True)))
    return {username: email for username, email in rows}


def _validate_in(connection: Connection, spec: RuleSpec) -> RuleSpec:
    return validate_rule(
        spec, users=active_users(connection), endpoints=set(webhook_endpoints(connection))
    )


# --- Reading ------------------------------------------------------------------------------


def _view(row: Any) -> RuleView:
    params = dict(row.params or {})
    email_mode = str(params.pop(EMAIL_MODE_PARAM, "immediate"))
    scope = {k: ([v] if isinstance(v, str) else list(v)) for k, v in (row.scope or {}).items()}
    return RuleView(
        id=row.id,
        name=row.name,
        kind=row.kind,
        params=params,
        scope=scope,
        severity=row.severity,
        channels=tuple(row.channels or ()),
        recipients=tuple(row.recipients or ()),
        enabled=bool(row.enabled),
        cooldown_hours=float(row.cooldown_hours),
        hysteresis_margin=float(row.hysteresis_margin),
        email_mode=email_mode,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        version=row.version,
    )


def load_rules(connection: Connection, *, enabled: bool | None = None) -> list[RuleView]:
    query = select(AlertRule.__table__).order_by(AlertRule.id)
    if enabled is not None:
        query = query.where(AlertRule.enabled.is_(enabled))
    return [_view(row) for row in connection.execute(query)]


def list_rules(engine: Engine, *, enabled: bool | None = None) -> list[RuleView]:
    """Every rule (or only enabled / disabled ones), oldest first."""
    with engine.connect() as connection:
        return load_rules(connection, enabled=enabled)


def _find(connection: Connection, ref: int | str) -> RuleView:
    table = AlertRule.__table__
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
        row = connection.execute(select(table).where(table.c.id == int(ref))).first()
    else:
        row = connection.execute(select(table).where(table.c.name == ref.strip())).first()
    if row is None:
        raise NotFoundError(f"There is no alert rule {ref!s}.")
    return _view(row)


def get_rule(engine: Engine, ref: int | str) -> RuleView:
    """A rule by id or by name; raises NotFoundError."""
    with engine.connect() as connection:
        return _find(connection, ref)


# --- Writing ------------------------------------------------------------------------------


def _values(spec: RuleSpec) -> dict[str, Any]:
    params = dict(spec.params)
    if spec.email_mode != "immediate":
        params[EMAIL_MODE_PARAM] = spec.email_mode
    return {
        "name": spec.name,
        "kind": spec.kind,
        "params": params,
        "scope": dict(spec.scope),
        "severity": spec.severity,
        "channels": list(spec.channels),
        "recipients": list(spec.recipients),
        "enabled": spec.enabled,
        "cooldown_hours": spec.cooldown_hours,
        "hysteresis_margin": spec.hysteresis_margin,
    }


def _name_taken(name: str) -> ValidationError:
    return ValidationError(
        f"There is already a rule named '{name}'.", {"name": "This name is taken."}
    )


def create_rule(engine: Engine, spec: RuleSpec, *, actor: str | None) -> RuleView:
    """Validate and add a rule; raises ValidationError (also for a duplicate name). Commits."""
    try:
        with begin_write(engine) as connection:
            spec = _validate_in(connection, spec)
            values = _values(spec)
            rule_id = connection.execute(
                AlertRule.__table__.insert().values(**values, created_by=actor, version=1)
            ).inserted_primary_key[0]
            audit.record(
                connection,
                actor=actor,
                action="create",
                entity="alert_rule",
                entity_id=rule_id,
                changes=values,
            )
            publish(connection, Changes(alerts=True))
            return _find(connection, int(rule_id))
    except IntegrityError as exc:
        raise _name_taken(spec.name) from exc


def update_rule(
    engine: Engine,
    rule_id: int,
    spec: RuleSpec,
    *,
    actor: str | None,
    expected_version: int | None = None,
) -> RuleView:
    """Replace a rule's settings with ``spec``.

    With ``expected_version`` the edit only applies if nobody changed the rule since it was
    read. Raises ValidationError, NotFoundError, StaleEditError. Commits.
    """
    try:
        with begin_write(engine) as connection:
            before = _find(connection, rule_id)
            spec = _validate_in(connection, spec)
            values = _values(spec)
            table = AlertRule.__table__
            condition = table.c.id == rule_id
            if expected_version is not None:
                condition = condition & (table.c.version == expected_version)
            result = connection.execute(
                update(table)
                .where(condition)
                .values(**values, version=table.c.version + 1, updated_at=func.now())
            )
            if result.rowcount == 0:
                current = _find(connection, rule_id)
                raise StaleEditError(
                    f"Someone else changed the rule '{current.name}' meanwhile; nothing was "
                    "saved. Reload it and try again.",
                    current=current,
                )
            old = _values(before.to_spec())
            changed = {k: [old[k], v] for k, v in values.items() if old.get(k) != v}
            audit.record(
                connection,
                actor=actor,
                action="update",
                entity="alert_rule",
                entity_id=rule_id,
                changes=changed,
            )
            publish(connection, Changes(alerts=True))
            return _find(connection, rule_id)
    except IntegrityError as exc:
        raise _name_taken(spec.name) from exc


def set_rule_enabled(
    engine: Engine, ref: int | str, enabled: bool, *, actor: str | None
) -> RuleView:
    """Enable or disable a rule; raises NotFoundError. Commits."""
    with begin_write(engine) as connection:
        rule = _find(connection, ref)
        if rule.enabled != enabled:
            table = AlertRule.__table__
            connection.execute(
                update(table)
                .where(table.c.id == rule.id)
                .values(enabled=enabled, version=table.c.version + 1, updated_at=func.now())
            )
            audit.record(
                connection,
                actor=actor,
                action="enable" if enabled else "disable",
                entity="alert_rule",
                entity_id=rule.id,
                changes={"enabled": [not enabled, enabled]},
            )
            publish(connection, Changes(alerts=True))
        return _find(connection, rule.id)


def delete_rule(engine: Engine, ref: int | str, *, actor: str | None, force: bool = False) -> int:
    """Delete a rule; returns how many of its alerts went with it.

    A rule with alerts is only deleted with ``force`` (its alert history is deleted too);
    otherwise raises ConflictError suggesting to disable it. Raises NotFoundError. Commits.
    """
    with begin_write(engine) as connection:
        rule = _find(connection, ref)
        alerts = connection.scalar(
            select(func.count()).select_from(Alert).where(Alert.rule_id == rule.id)
        )
        if alerts and not force:
            raise ConflictError(
                f"The rule '{rule.name}' has {alerts:,} alerts; deleting it deletes them too. "
                "Disable it instead, or delete it with --force."
            )
        connection.execute(delete(AlertRule.__table__).where(AlertRule.id == rule.id))
        audit.record(
            connection,
            actor=actor,
            action="delete",
            entity="alert_rule",
            entity_id=rule.id,
            changes={"name": rule.name, "alerts_deleted": alerts},
        )
        publish(connection, Changes(alerts=True))
        return int(alerts or 0)


def ensure_default_rules(engine: Engine, *, actor: str | None = None) -> int:
    """Create the default rule set once per database; returns how many rules were created.

    Only a database that never had rules gets them (a flag in the shared settings remembers),
    so rules a user deleted do not come back. Safe to call from many desktops at once. Commits.
    """
    with engine.connect() as connection:
        if read_setting(connection, DEFAULTS_CREATED_KEY):
            return 0
    created = 0
    with begin_write(engine) as connection:
        if connection.dialect.name == "postgresql":
            # Two desktops opening a new database together must not both create the set.
            connection.execute(select(func.pg_advisory_xact_lock(DEFAULTS_LOCK_ID)))
        if read_setting(connection, DEFAULTS_CREATED_KEY):
            return 0
        have_rules = connection.scalar(select(func.count()).select_from(AlertRule))
        if not have_rules:
            for spec in DEFAULT_RULES:
                valid = validate_rule(spec, users={}, endpoints=())
                values = _values(valid)
                connection.execute(
                    AlertRule.__table__.insert().values(**values, created_by=actor, version=1)
                )
                created += 1
            audit.record(
                connection,
                actor=actor,
                action="create",
                entity="alert_rule",
                changes={"default_rules": [s.name for s in DEFAULT_RULES]},
            )
            publish(connection, Changes(alerts=True))
        write_setting(connection, DEFAULTS_CREATED_KEY, True, actor=actor)
    return created

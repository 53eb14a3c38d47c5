"""Create, read, update and delete one customer: validated, optimistically locked, audited."""

from __future__ import annotations

import datetime as dt
import decimal
import getpass
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from churndesk.db.engine import session_factory, write_unit_of_work
from churndesk.db.models import Customer, CustomerScore
from churndesk.errors import ChurndeskError, NotFoundError, StaleEditError, ValidationError
from churndesk.services import audit, history
from churndesk.services.changes import Changes, publish
from churndesk.services.customer_fields import (
    FIELD_LABELS,
    FIELDS,
    STATUSES,
    FieldError,
    as_utc,
    check_date_range,
    check_email,
    check_external_id,
    check_length,
    check_money,
    parse_date,
    parse_money,
    parse_timestamp,
)

__all__ = [
    "EDITABLE_FIELDS",
    "AfterSave",
    "CustomerRecord",
    "create_customer",
    "delete_customer",
    "get_customer",
    "get_customer_by_external_id",
    "resolve_actor",
    "update_customer",
    "validate_customer",
]

#: What create/update accept: the CSV fields plus the free-form attributes.
EDITABLE_FIELDS: tuple[str, ...] = (*FIELDS, "attributes")

#: Called inside the write transaction after a customer was created or edited, with the session
#: and the customer's id. This is the hook point where scoring rescores the customer at once
#: (issue "scoring": "a customer created or edited is rescored at once"); what it writes commits
#: or rolls back together with the edit.
AfterSave = Callable[[Session, int], None]

Factory = Engine | sessionmaker[Session]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustomerRecord:
    """One customer as plain data (never an ORM object); times are UTC-aware."""

    id: int
    external_id: str
    name: str
    email: str | None
    segment: str | None
    plan: str | None
    country: str | None
    signup_date: dt.date | None
    monthly_revenue: float | None
    status: str
    churned_at: dt.datetime | None
    owner: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    risk_score: float | None = None
    risk_score_prev: float | None = None
    risk_band: str | None = None
    revenue_at_risk: float | None = None
    scored_at: dt.datetime | None = None
    version: int = 1
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    def values(self) -> dict[str, Any]:
        """The editable fields, as create/update take them."""
        return {name: getattr(self, name) for name in EDITABLE_FIELDS}


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite keeps naive UTC; PostgreSQL returns aware values.
    return None if value is None else as_utc(value)


_NOT_SCORED: tuple[Any, ...] = (None, None, None, None, None)


def _current_score(customer: Customer) -> tuple[Any, ...]:
    """The customer's current score columns (risk, previous risk, band, revenue at risk, when),
    read in the customer's own session so a rescore in this transaction shows."""
    session = object_session(customer)
    if session is None:
        return _NOT_SCORED
    row = session.execute(
        select(
            CustomerScore.risk_score,
            CustomerScore.risk_score_prev,
            CustomerScore.risk_band,
            CustomerScore.revenue_at_risk,
            CustomerScore.scored_at,
        ).where(CustomerScore.customer_id == customer.id)
    ).first()
    return _NOT_SCORED if row is None else tuple(row)


def _record(customer: Customer) -> CustomerRecord:
    risk_score, risk_score_prev, risk_band, revenue_at_risk, scored_at = _current_score(customer)
    return CustomerRecord(
        id=customer.id,
        external_id=customer.external_id,
        name=customer.name,
        email=customer.email,
        segment=customer.segment,
        plan=customer.plan,
        country=customer.country,
        signup_date=customer.signup_date,
        monthly_revenue=customer.monthly_revenue,
        status=customer.status,
        churned_at=_aware(customer.churned_at),
        owner=customer.owner,
        attributes=dict(customer.attributes or {}),
        risk_score=risk_score,
        risk_score_prev=risk_score_prev,
        risk_band=risk_band,
        revenue_at_risk=revenue_at_risk,
        scored_at=_aware(scored_at),
        version=customer.version,
        created_at=_aware(customer.created_at),
        updated_at=_aware(customer.updated_at),
    )


def _rescore(session: Session, customer_id: int) -> None:
    """By default a saved customer is rescored at once with the active model, if there is one."""
    from churndesk.services.scoring import rescore_after_save

    try:
        rescore_after_save(session, customer_id)
    except ChurndeskError as exc:
        # A damaged or unloadable model must never stop anyone from editing a customer; the
        # next scoring run will score them.
        log.warning("customer %s saved but not rescored: %s", customer_id, exc.user_message)


def no_rescore(session: Session, customer_id: int) -> None:
    """An ``after_save`` that skips rescoring (bulk tools that score afterwards anyway)."""


def _factory(target: Factory) -> sessionmaker[Session]:
    return session_factory(target) if isinstance(target, Engine) else target


def resolve_actor(connection: Connection, actor: str | None) -> str | None:
    """Who does this: on PostgreSQL always the login, else ``actor`` or the OS user."""
    if connection.dialect.name == "postgresql":
        # "Who did it" is the database login there, whatever the client claims.
        login = str(connection.exec_driver_sql("SELECT session_user").scalar_one())
        return actor if actor == login else login
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


# --- Validation ------------------------------------------------------------------------------


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(f"{FIELD_LABELS[name]} must be text.")
    if value == "":
        return None
    check_length(name, value)
    return value


def _clean(name: str, value: Any, today: dt.date | None) -> Any:
    """One field's value, normalised; raises FieldError with the reason."""
    if name == "external_id":
        if value is None or (isinstance(value, str) and not value.strip()):
            raise FieldError("Customer ID is required.")
        if not isinstance(value, str):
            value = str(value)
        return check_external_id(value)
    if name == "name":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise FieldError("Name must be text.")
        check_length("name", value)
        return value
    if name in ("segment", "plan", "country", "owner"):
        return _text(name, value)
    if name == "email":
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise FieldError("E-mail must be text.")
        return check_email(value)
    if name == "signup_date":
        if value is None or value == "":
            return None
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, dt.date):
            check_date_range(value, today=today)
            return value
        if isinstance(value, str):
            return parse_date(value, today=today)
        raise FieldError("Signup date must be a date.")
    if name == "churned_at":
        if value is None or value == "":
            return None
        if isinstance(value, dt.datetime):
            stamp = as_utc(value)
            check_date_range(stamp.date(), today=today)
            return stamp
        if isinstance(value, dt.date):
            check_date_range(value, today=today)
            return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
        if isinstance(value, str):
            return parse_timestamp(value, today=today)
        raise FieldError("Churned at must be a date and time.")
    if name == "monthly_revenue":
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return parse_money(value)
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            raise FieldError("Monthly revenue must be a number.")
        return check_money(float(value), value)
    if name == "status":
        if value not in STATUSES:
            raise FieldError(f"Status must be one of {', '.join(STATUSES)}.")
        return value
    if name == "attributes":
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise FieldError("Attributes must map names to values.")
        try:
            text = json.dumps(dict(value), allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError):
            raise FieldError(
                "Attributes may hold only text, numbers, true/false and empty values."
            ) from None
        if "\x00" in text:
            raise FieldError("Attributes cannot contain NUL characters.")
        return json.loads(text)
    raise FieldError(f"'{name}' is not a customer field.")


def validate_customer(
    values: Mapping[str, Any],
    *,
    current: CustomerRecord | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Check and normalise ``values`` (all fields for a new customer, changes for an edit).

    Returns the cleaned values of the given fields. Raises ValidationError whose
    ``field_errors`` maps each bad field to a reason a user understands.
    """
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        if name not in EDITABLE_FIELDS:
            errors[name] = f"'{name}' is not a customer field."
            continue
        if isinstance(value, str) and "\x00" in value:
            errors[name] = f"{FIELD_LABELS[name]} cannot contain NUL characters."
            continue
        if isinstance(value, float) and math.isnan(value):
            value = None
        try:
            cleaned[name] = _clean(name, value, today)
        except FieldError as exc:
            errors[name] = str(exc)
    if current is None and "external_id" not in values:
        errors["external_id"] = "Customer ID is required."
    status = cleaned.get("status", current.status if current else "active")
    churned_at = cleaned.get("churned_at", current.churned_at if current else None)
    if status == "active" and churned_at is not None and "churned_at" not in errors:
        if "churned_at" in cleaned or "status" not in cleaned:
            errors["churned_at"] = "Only a churned customer has a churn date."
        else:
            # Reactivating a churned customer: their old churn date no longer applies.
            cleaned["churned_at"] = None
    if errors:
        if len(errors) == 1:
            (name, reason), *_ = errors.items()
            label = FIELD_LABELS.get(name, name)
            message = f"{label}: {reason}" if not reason.startswith(label) else reason
        else:
            message = f"{len(errors)} fields need attention: " + "; ".join(
                f"{FIELD_LABELS.get(n, n)}: {r}" for n, r in errors.items()
            )
        raise ValidationError(message, field_errors=errors)
    return cleaned


# --- Reading ---------------------------------------------------------------------------------


def get_customer(session: Session, customer_id: int) -> CustomerRecord:
    """The customer with this id. Raises NotFoundError. Does not commit."""
    customer = session.get(Customer, customer_id, populate_existing=True)
    if customer is None:
        raise NotFoundError(f"There is no customer with id {customer_id} (deleted?).")
    return _record(customer)


def get_customer_by_external_id(session: Session, external_id: str) -> CustomerRecord:
    """The customer with this customer ID. Raises NotFoundError. Does not commit."""
    customer = session.scalars(
        select(Customer).where(Customer.external_id == external_id.strip())
    ).one_or_none()
    if customer is None:
        raise NotFoundError(f"There is no customer with the customer ID '{external_id}'.")
    return _record(customer)


# --- Writing ---------------------------------------------------------------------------------


def _get_for_write(session: Session, customer_id: int) -> Customer | None:
    """Load a customer to change it, holding what stops a concurrent edit from interleaving.

    PostgreSQL: the row lock (FOR UPDATE), so a second editor waits and then sees the new
    version. SQLite: the database write lock, which ``write_unit_of_work`` took at BEGIN.
    """
    return session.get(Customer, customer_id, populate_existing=True, with_for_update=True)


def _external_id_taken(session: Session, external_id: str, own_id: int | None) -> bool:
    found = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
    return found is not None and found != own_id


def _duplicate(external_id: str) -> ValidationError:
    return ValidationError(
        f"Another customer already has the customer ID '{external_id}'.",
        field_errors={"external_id": "Another customer already has this customer ID."},
    )


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}


def create_customer(
    factory: Factory,
    values: Mapping[str, Any],
    *,
    actor: str | None = None,
    after_save: AfterSave | None = None,
    today: dt.date | None = None,
) -> CustomerRecord:
    """Create a customer from ``values`` (field -> value; external_id is required).

    Commits, with an audit entry and a change event. Raises ValidationError (with
    ``field_errors``) for bad values or a customer ID already in use.
    """
    cleaned = validate_customer(values, today=today)
    maker = _factory(factory)
    try:
        with write_unit_of_work(maker) as session:
            if _external_id_taken(session, cleaned["external_id"], None):
                raise _duplicate(cleaned["external_id"])
            customer = Customer(**{"name": "", "attributes": {}, **cleaned})
            session.add(customer)
            session.flush()
            connection = session.connection()
            audit.record(
                session,
                actor=resolve_actor(connection, actor),
                action="create",
                entity="customer",
                entity_id=customer.id,
                changes={k: [None, v] for k, v in cleaned.items()},
            )
            (after_save or _rescore)(session, customer.id)
            session.flush()
            session.refresh(customer)
            record = _record(customer)
            publish(connection, Changes(customers=True, customer_ids=(customer.id,)))
    except IntegrityError as exc:
        # Someone created the same customer ID between our check and our insert.
        raise _duplicate(cleaned["external_id"]) from exc
    return record


def update_customer(
    factory: Factory,
    customer_id: int,
    changes: Mapping[str, Any],
    *,
    expected_version: int,
    actor: str | None = None,
    after_save: AfterSave | None = None,
    today: dt.date | None = None,
) -> CustomerRecord:
    """Apply ``changes`` (field -> new value) if the customer is still at ``expected_version``.

    Commits, with an audit entry holding each changed field's old and new value, and a change
    event. An edit that changes nothing writes nothing. Raises ValidationError for bad values,
    StaleEditError (``current`` = the record as it is now; nothing was overwritten) when someone
    else saved first, NotFoundError when the customer was deleted.
    """
    maker = _factory(factory)
    try:
        with write_unit_of_work(maker) as session:
            customer = _get_for_write(session, customer_id)
            if customer is None:
                raise NotFoundError("This customer was deleted by someone else.")
            current = _record(customer)
            if customer.version != expected_version:
                raise _stale(current)
            cleaned = validate_customer(changes, current=current, today=today)
            old = current.values()
            diff = _diff(old, cleaned)
            if not diff:
                return current
            new_id = cleaned.get("external_id")
            if new_id is not None and _external_id_taken(session, new_id, customer_id):
                raise _duplicate(new_id)
            for name in diff:
                setattr(customer, name, cleaned[name])
            # version_id_col turns this into UPDATE ... WHERE version = :expected, so an edit
            # committed between our read and this flush raises StaleDataError, not a lost update.
            session.flush()
            connection = session.connection()
            audit.record(
                session,
                actor=resolve_actor(connection, actor),
                action="update",
                entity="customer",
                entity_id=customer_id,
                changes=diff,
            )
            (after_save or _rescore)(session, customer_id)
            session.flush()
            session.refresh(customer)
            record = _record(customer)
            publish(connection, Changes(customers=True, customer_ids=(customer_id,)))
    except StaleDataError as exc:
        raise _stale(_current_or_none(maker, customer_id)) from exc
    except IntegrityError as exc:
        raise _duplicate(str(changes.get("external_id"))) from exc
    return record


def delete_customer(
    factory: Factory,
    customer_id: int,
    *,
    expected_version: int,
    actor: str | None = None,
) -> None:
    """Delete the customer (and its score history) if still at ``expected_version``.

    Commits, with an audit entry holding the deleted values, and a change event. Raises
    StaleEditError when someone else changed it first, NotFoundError when already deleted.
    """
    maker = _factory(factory)
    try:
        with write_unit_of_work(maker) as session:
            connection = session.connection()
            history.lock_for_delete(connection)
            customer = _get_for_write(session, customer_id)
            if customer is None:
                raise NotFoundError("This customer was already deleted.")
            current = _record(customer)
            if customer.version != expected_version:
                raise _stale(current)
            history.delete_history(connection, customer_id)
            session.delete(customer)
            session.flush()
            audit.record(
                session,
                actor=resolve_actor(connection, actor),
                action="delete",
                entity="customer",
                entity_id=customer_id,
                changes={k: [v, None] for k, v in current.values().items() if v not in (None, "")},
            )
            publish(connection, Changes(customers=True, customer_ids=(customer_id,)))
    except StaleDataError as exc:
        raise _stale(_current_or_none(maker, customer_id)) from exc


def _current_or_none(maker: sessionmaker[Session], customer_id: int) -> CustomerRecord | None:
    with maker() as session:
        customer = session.get(Customer, customer_id)
        return None if customer is None else _record(customer)


def _stale(current: CustomerRecord | None) -> StaleEditError:
    if current is None:
        return StaleEditError("Someone else deleted this customer; your changes were not saved.")
    return StaleEditError(
        f"Someone else changed customer {current.external_id} after you opened it; your changes "
        "were not saved. Review their version and apply your edit again.",
        current=current,
    )

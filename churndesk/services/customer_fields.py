"""The rules every customer field obeys, shared by the editor (customers.py) and the CSV import."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable

from churndesk.db.models import CUSTOMER_STATUSES, Customer

#: Customer fields a CSV column can be mapped to, by their column name in ``customers``.
FIELDS: tuple[str, ...] = (
    "external_id",
    "name",
    "email",
    "segment",
    "plan",
    "country",
    "signup_date",
    "monthly_revenue",
    "status",
    "churned_at",
    "owner",
)
TEXT_FIELDS: tuple[str, ...] = ("name", "email", "segment", "plan", "country", "owner")
#: Maximum length in characters of each text field: the width of its column.
MAX_LENGTH: dict[str, int] = {
    name: int(Customer.__table__.c[name].type.length)  # type: ignore[attr-defined]
    for name in ("external_id", *TEXT_FIELDS)
}
FIELD_LABELS: dict[str, str] = {
    "external_id": "Customer ID",
    "name": "Name",
    "email": "E-mail",
    "segment": "Segment",
    "plan": "Plan",
    "country": "Country",
    "signup_date": "Signup date",
    "monthly_revenue": "Monthly revenue",
    "status": "Status",
    "churned_at": "Churned at",
    "owner": "Owner",
}
STATUSES = CUSTOMER_STATUSES
#: Values of a status column that mean "churned" unless the user names others (case-insensitive).
DEFAULT_CHURN_VALUES: tuple[str, ...] = ("yes", "true", "1", "churned")
#: Values that mean "active" when the churn values are the defaults; anything else is an error,
#: so a typo ("churend") is reported instead of silently counted as active.
DEFAULT_ACTIVE_VALUES: tuple[str, ...] = ("no", "false", "0", "active", "")

EARLIEST_DATE = dt.date(1900, 1, 1)
#: NUMERIC(12, 2): ten digits before the decimal point.
MAX_REVENUE = 9_999_999_999.99

# Deliberately permissive (internationalised addresses are valid): one @, no spaces, a dot in
# the domain. The mail server is the real judge; this catches typos and swapped columns.
EMAIL_PATTERN = r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+"
_EMAIL = re.compile(EMAIL_PATTERN)
_DECIMAL_COMMA = re.compile(r"-?\d+,\d+")


class FieldError(ValueError):
    """One field's value is unacceptable; the message is the reason, written for a user."""


def latest_date(today: dt.date | None = None) -> dt.date:
    """Dates up to a day ahead are accepted: time zones put 'today' on two dates."""
    return (today or dt.date.today()) + dt.timedelta(days=1)


def check_length(field: str, value: str) -> None:
    limit = MAX_LENGTH[field]
    if len(value) > limit:
        raise FieldError(
            f"{FIELD_LABELS[field]} is {len(value):,} characters long; at most {limit:,} fit."
        )


def check_external_id(value: str) -> str:
    value = value.strip()
    if not value:
        raise FieldError("Customer ID is required.")
    check_length("external_id", value)
    return value


def check_email(value: str) -> str:
    value = value.strip()
    check_length("email", value)
    if not _EMAIL.fullmatch(value):
        raise FieldError(f"'{_short(value)}' is not an e-mail address (like name@example.com).")
    return value


def parse_date(text: str, *, today: dt.date | None = None) -> dt.date:
    """An ISO date (2024-01-31); a trailing time of midnight is tolerated."""
    value = text.strip()
    try:
        if len(value) > 10 and value[10] in "T ":
            stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            parsed = stamp.date()
        else:
            parsed = dt.date.fromisoformat(value)
    except ValueError:
        raise FieldError(f"'{_short(value)}' is not a date like 2024-01-31.") from None
    check_date_range(parsed, today=today)
    return parsed


def check_date_range(value: dt.date, *, today: dt.date | None = None) -> None:
    if value < EARLIEST_DATE:
        raise FieldError(f"{value.isoformat()} is before {EARLIEST_DATE.year}.")
    if value > latest_date(today):
        raise FieldError(f"{value.isoformat()} is in the future.")


def parse_timestamp(text: str, *, today: dt.date | None = None) -> dt.datetime:
    """An ISO date or date and time; without a UTC offset it is taken as UTC."""
    value = text.strip()
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FieldError(
            f"'{_short(value)}' is not a date and time like 2024-01-31 14:05:00."
        ) from None
    parsed = as_utc(parsed)
    check_date_range(parsed.date(), today=today)
    return parsed


def as_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def parse_money(text: str, *, decimal_comma: bool = False) -> float:
    """A non-negative amount, rounded to cents (the column keeps two decimals)."""
    value = text.strip()
    candidate = value
    if decimal_comma and _DECIMAL_COMMA.fullmatch(value):
        candidate = value.replace(",", ".")
    try:
        number = float(candidate)
    except ValueError:
        raise FieldError(f"'{_short(value)}' is not a number.") from None
    return check_money(number, value)


def check_money(number: float, shown: object = None) -> float:
    label = shown if shown is not None else number
    if math.isnan(number) or math.isinf(number):
        raise FieldError(f"'{label}' is not a number.")
    if number < 0:
        raise FieldError(f"Monthly revenue cannot be negative ({label}).")
    rounded = round(number, 2)
    if rounded > MAX_REVENUE:
        raise FieldError(f"Monthly revenue {label} is too large (at most {MAX_REVENUE:,.2f}).")
    return rounded + 0.0  # turns -0.0 into 0.0


def status_reader(churn_values: Iterable[str] | None) -> tuple[frozenset[str], frozenset[str]]:
    """The (churned, active) value sets; an empty active set means "anything else is active"."""
    if churn_values is None:
        return frozenset(DEFAULT_CHURN_VALUES), frozenset(DEFAULT_ACTIVE_VALUES)
    churned = frozenset(v.strip().lower() for v in churn_values)
    return churned, frozenset()


def parse_status(text: str, churned: frozenset[str], active: frozenset[str]) -> str:
    value = text.strip().lower()
    if value in churned:
        return "churned"
    if not active or value in active:
        return "active"
    raise FieldError(
        f"'{_short(text)}' is not a status: churned is {_or_list(churned)}, active is "
        f"{_or_list(active - {''})} (use --churn-value to name the churned values)."
    )


def _or_list(values: Iterable[str]) -> str:
    return "/".join(sorted(values))


def _short(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"

"""Turn stored values into display text; every value stays plain text, never markup."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

BAND_COLOURS = {
    "low": "#2e7d32",
    "medium": "#f9a825",
    "high": "#ef6c00",
    "critical": "#c62828",
}


def money(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def score(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def date(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def trend(current: float | None, previous: float | None) -> str:
    """An arrow for the change since the previous scoring run (a point or more)."""
    if current is None or previous is None:
        return ""
    delta = current - previous
    if delta >= 1:
        return f"▲ {delta:.0f}"
    if delta <= -1:
        return f"▼ {-delta:.0f}"
    return "–"


def plain_tooltip(text: str) -> str:
    """Qt guesses whether a tooltip is rich text; escape it so "<b>x</b>" shows literally."""
    return f"<p style='white-space:pre-wrap'>{html.escape(text)}</p>"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 alert', '2 alerts', '1,204 alerts'."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def duration(seconds: float) -> str:
    """How long something took, to the second: 'under a second', '42 s', '1 min 5 s', '2 min'."""
    if seconds < 1:
        return "under a second"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"

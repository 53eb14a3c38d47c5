"""Counts with their nouns for messages people read: "1 row", "2 rows", "1,000 customers"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` with thousands separators and ``noun``, or ``plural`` (default noun + "s") unless
    ``n`` is exactly one."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"

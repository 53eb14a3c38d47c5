"""Counts in messages: singular for exactly one, the plural otherwise."""

from __future__ import annotations

from churndesk.plurals import counted


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert counted(1, "row") == "1 row"
    assert counted(0, "row") == "0 rows"
    assert counted(2, "error") == "2 errors"
    assert counted(1_000_000, "customer") == "1,000,000 customers"


def test_an_irregular_plural_is_given() -> None:
    assert counted(1, "entry", "entries") == "1 entry"
    assert counted(3, "entry", "entries") == "3 entries"

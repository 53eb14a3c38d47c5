"""Bulk insert paths (COPY / executemany) store values verbatim and read back like ORM rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from churndesk.db.bulk import insert_rows
from churndesk.db.engine import make_engine, session_factory, unit_of_work
from churndesk.db.models import Customer

AWKWARD = [
    "<img src=x onerror=alert(1)>",
    '=HYPERLINK("http://evil.example","click")',
    "Quote \"double\" and 'single'",
    "Emoji 😀 and RTL עברית العربية",
    "Tab\tand\nnewline and back\\slash",
]


def test_bulk_rows_round_trip_verbatim(db_url: str) -> None:
    engine = make_engine(db_url)
    churned = dt.datetime(2026, 9, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    rows = [
        (
            f"c-{i}",
            name,
            None,
            dt.date(2024, 1, i + 1),
            12.5 * i,
            "churned" if i % 2 else "active",
            churned if i % 2 else None,
            {"note": name, "n": i, "flag": True, "missing": None},
        )
        for i, name in enumerate(AWKWARD)
    ]
    columns = (
        "external_id",
        "name",
        "email",
        "signup_date",
        "monthly_revenue",
        "status",
        "churned_at",
        "attributes",
    )
    try:
        with engine.begin() as connection:
            assert insert_rows(connection, "customers", columns, iter(rows)) == len(rows)
        with unit_of_work(session_factory(engine)) as session:
            stored = session.scalars(select(Customer).order_by(Customer.external_id)).all()
        assert [c.name for c in stored] == AWKWARD
        assert [c.attributes["note"] for c in stored] == AWKWARD
        assert stored[1].attributes == {"note": AWKWARD[1], "n": 1, "flag": True, "missing": None}
        assert stored[1].signup_date == dt.date(2024, 1, 2)
        assert stored[1].monthly_revenue == 12.5
        read_back = stored[1].churned_at
        assert read_back is not None
        if read_back.tzinfo is None:  # SQLite keeps naive UTC
            read_back = read_back.replace(tzinfo=dt.UTC)
        assert read_back == churned
        assert stored[0].churned_at is None
        assert all(c.version == 1 and c.created_at is not None for c in stored)
    finally:
        engine.dispose()


def test_bulk_insert_is_part_of_the_callers_transaction(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        try:
            with engine.begin() as connection:
                insert_rows(connection, "customers", ("external_id", "attributes"), [("x", {})])
                raise KeyError("abort")
        except KeyError:
            pass
        with engine.connect() as connection:
            assert connection.scalar(select(Customer.id)) is None
    finally:
        engine.dispose()

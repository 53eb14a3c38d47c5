"""The customer table's query API: orders, filters, counts, rows by id and keyset pages."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pytest
from sqlalchemy import Connection, text

from churndesk.db.bulk import insert_rows
from churndesk.db.engine import make_engine
from churndesk.db.queries.customers import (
    TABLE_COLUMNS,
    CustomerQuery,
    count,
    customer_page,
    filter_choices,
    ordered_ids,
    rows_by_ids,
    view_statements,
)
from churndesk.errors import Cancelled, ValidationError
from tests.db.plans import sqlite_plan

N = 300
SCORED_AT = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)


def _seed(connection: Connection) -> None:
    rng = np.random.default_rng(7)
    rows = []
    scores = []
    for i in range(N):
        scored = i % 5 != 0  # every fifth customer has no score yet
        score = float(rng.integers(0, 101)) if scored else None
        band = (
            None
            if score is None
            else "critical"
            if score >= 80
            else "high"
            if score >= 60
            else "medium"
            if score >= 40
            else "low"
        )
        # Revenue at risk is missing for some scored customers too (no monthly revenue).
        revenue_at_risk = None if score is None or i % 11 == 0 else round(score * 3.7, 2)
        scores.append((i + 1, score, band, revenue_at_risk, SCORED_AT))
        rows.append(
            (
                i + 1,
                f"EXT-{i:04d}",
                f"Customer {i:03d} {'Smith' if i % 7 == 0 else 'Jones'}",
                f"c{i}@example.com" if i % 3 else None,
                ("Residential", "Small Business", "Enterprise")[i % 3],
                ("DSL Basic", "Fiber Premium")[i % 2],
                "churned" if i % 4 == 0 else "active",
                ("alice", "bob", None)[i % 3],
                {},
            )
        )
    columns = (
        "id",
        "external_id",
        "name",
        "email",
        "segment",
        "plan",
        "status",
        "owner",
        "attributes",
    )
    insert_rows(connection, "customers", columns, rows)
    insert_rows(
        connection,
        "customer_scores",
        ("customer_id", "risk_score", "risk_band", "revenue_at_risk", "scored_at"),
        [s for s in scores if s[1] is not None],
    )


@pytest.fixture
def connection(db_url: str):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        _seed(conn)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def _python_order(connection: Connection, query: CustomerQuery) -> list[int]:
    """The expected order, computed naively in Python from every row."""
    ids = ordered_ids(connection, CustomerQuery(sort="id", descending=False))
    rows = rows_by_ids(connection, ids.tolist())
    key = {"risk_band": "risk_score"}.get(query.sort, query.sort)
    index = TABLE_COLUMNS.index(key)
    present = [r for r in rows.values() if r[index] is not None]
    missing = [r for r in rows.values() if r[index] is None]
    present.sort(key=lambda r: (r[index], r[0]), reverse=query.descending)
    missing.sort(key=lambda r: r[0], reverse=query.descending)
    return [r[0] for r in present + missing]


@pytest.mark.parametrize(
    "sort", ["risk_score", "name", "owner", "risk_band", "email", "revenue_at_risk"]
)
@pytest.mark.parametrize("descending", [True, False])
def test_ordered_ids_match_a_naive_sort_with_nulls_last(connection, sort, descending) -> None:
    query = CustomerQuery(sort=sort, descending=descending)
    ids = ordered_ids(connection, query)
    assert ids.dtype == np.int64
    assert len(ids) == N
    assert ids.tolist() == _python_order(connection, query)


@pytest.mark.parametrize("sort", ["risk_score", "name", "monthly_revenue", "revenue_at_risk"])
@pytest.mark.parametrize("descending", [True, False])
def test_filtered_whole_views_keep_the_order_of_their_first_screen(
    connection, sort, descending
) -> None:
    # The whole view of a filtered query is planned differently from its first screenful
    # (SQLite sorts what the filter's index finds); both must give the same order.
    query = CustomerQuery(status="active", sort=sort, descending=descending)
    whole = ordered_ids(connection, query)
    first = ordered_ids(connection, query, limit=25)
    assert whole[:25].tolist() == first.tolist()
    active = set(ordered_ids(connection, CustomerQuery(sort="id", status="active")).tolist())
    expected = [
        i for i in _python_order(connection, query.sorted_by(sort, descending)) if i in active
    ]
    assert whole.tolist() == expected


def test_filters_and_count_agree(connection) -> None:
    query = CustomerQuery(segment="Enterprise", status="churned", risk_min=40)
    ids = ordered_ids(connection, query)
    assert count(connection, query) == len(ids) > 0
    rows = rows_by_ids(connection, ids.tolist())
    for row in rows.values():
        assert row[4] == "Enterprise"
        assert row[7] == "churned"
        assert row[10] >= 40


def test_text_search_covers_name_email_and_external_id_case_insensitively(connection) -> None:
    by_name = ordered_ids(connection, CustomerQuery(search="smith"))
    assert len(by_name) == len([i for i in range(N) if i % 7 == 0])
    by_id = ordered_ids(connection, CustomerQuery(search="ext-0042"))
    by_email = ordered_ids(connection, CustomerQuery(search="c43@EXAMPLE"))
    assert len(by_id) == 1
    assert len(by_email) == 1
    assert rows_by_ids(connection, by_id.tolist())[int(by_id[0])][1] == "EXT-0042"


def test_search_treats_like_wildcards_literally(connection) -> None:
    assert count(connection, CustomerQuery(search="%")) == 0
    assert count(connection, CustomerQuery(search="_")) == 0


def test_search_follows_edits_and_deletes_and_reads_no_query_syntax(connection) -> None:
    # On SQLite the search reads a trigram index kept current by triggers; on PostgreSQL the
    # pg_trgm indexes. Either way an edit or a delete shows in the next search.
    connection.execute(
        text("UPDATE customers SET name = :name WHERE external_id = 'EXT-0001'"),
        {"name": "Jürgen Müller-Lüdenscheidt"},
    )
    connection.execute(text("DELETE FROM customers WHERE external_id = 'EXT-0014'"))  # a Smith
    smiths = [i for i in range(N) if i % 7 == 0 and i != 14]
    assert count(connection, CustomerQuery(search="SMITH")) == len(smiths)
    assert count(connection, CustomerQuery(search="müller-lüd")) == 1
    assert count(connection, CustomerQuery(search="Customer 001")) == 0  # renamed away
    for syntax in ('"Smith', 'Smith" OR "Jones', "Smi*", "NEAR(Smith Jones)", "name:Smith"):
        assert count(connection, CustomerQuery(search=syntax)) == 0, syntax
    assert count(connection, CustomerQuery(search="ith")) == len(smiths)  # a substring


# PostgreSQL searches through pg_trgm; test_migrations checks those indexes.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_search_uses_the_trigram_index(connection) -> None:
    stmt = view_statements(CustomerQuery(search="smith"), "sqlite")[0]
    assert "customer_search VIRTUAL TABLE" in sqlite_plan(connection, stmt)


@pytest.mark.parametrize(
    "query",
    [
        CustomerQuery(sort="risk_score", descending=True),
        CustomerQuery(sort="revenue_at_risk", descending=False),
        CustomerQuery(sort="risk_score", descending=False, status="active"),
        CustomerQuery(sort="name", band="high"),
        CustomerQuery(sort="owner", risk_min=30, segment="Enterprise", descending=True),
        CustomerQuery(sort="revenue_at_risk", search="smith", descending=True),
    ],
    ids=repr,
)
def test_keyset_pages_walk_the_whole_view_in_order(connection, query: CustomerQuery) -> None:
    walked: list[int] = []
    cursor = None
    while True:
        page = customer_page(connection, query, after=cursor, limit=37)
        walked.extend(row[0] for row in page.rows)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert walked == ordered_ids(connection, query).tolist()
    assert len(walked) == count(connection, query)
    everyone = rows_by_ids(connection, ordered_ids(connection, CustomerQuery()).tolist())
    expected = [i for i in _python_order(connection, query) if _matches(everyone[i], query)]
    assert walked == expected


def _matches(row: tuple, query: CustomerQuery) -> bool:
    """The view's filters, evaluated naively on one table row."""
    value = dict(zip(TABLE_COLUMNS, row, strict=True))
    term = query.search.lower()
    if term and not any(term in (value[c] or "").lower() for c in ("name", "email", "external_id")):
        return False
    for name, column in (("segment", "segment"), ("status", "status"), ("band", "risk_band")):
        wanted = getattr(query, name)
        if wanted is not None and value[column] != wanted:
            return False
    score = value["risk_score"]
    return query.risk_min is None or (score is not None and score >= query.risk_min)


def test_rows_by_ids_returns_plain_tuples(connection) -> None:
    ids = ordered_ids(connection, CustomerQuery())[:5].tolist()
    rows = rows_by_ids(connection, ids)
    assert set(rows) == set(ids)
    assert all(type(r) is tuple for r in rows.values())


def test_filter_choices_are_distinct_and_sorted(connection) -> None:
    assert filter_choices(connection, "segment") == ["Enterprise", "Residential", "Small Business"]
    assert filter_choices(connection, "owner") == ["alice", "bob"]
    with pytest.raises(ValidationError):
        filter_choices(connection, "name; drop table customers")


def test_bad_queries_are_refused_with_a_message() -> None:
    with pytest.raises(ValidationError, match="cannot be sorted"):
        CustomerQuery(sort="password_hash")
    with pytest.raises(ValidationError, match="0 to 100"):
        CustomerQuery(risk_min=-1)


def test_cancel_is_honoured(connection) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        ordered_ids(connection, CustomerQuery(), cancel)

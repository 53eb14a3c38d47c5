"""Customers read as frames for training and scoring: the same values from either database."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import Engine, insert

from churndesk.db.engine import make_engine
from churndesk.db.models import Customer
from churndesk.services.customer_frames import iter_customer_frames

ATTRIBUTES = ["note", "seats", "TotalCharges", "flag"]

ROWS = [
    {
        "external_id": "a",
        "name": 'Ada, "the first"\nLovelace',
        "segment": "SMB",
        "signup_date": dt.date(2024, 2, 29),
        "monthly_revenue": 70.35,
        "churned_at": dt.datetime(2026, 10, 1, 6, 30, tzinfo=dt.UTC),
        "attributes": {"note": 'line one\nline "two", three', "seats": "3", "TotalCharges": " "},
    },
    {
        "external_id": "b",
        "name": "بوب 🙂",
        "segment": None,
        "signup_date": None,
        "monthly_revenue": None,
        "churned_at": dt.datetime(2026, 10, 2, 7, 45, 12, 123456, tzinfo=dt.UTC),
        "attributes": {"note": "", "seats": 12, "TotalCharges": "1889.5", "flag": "NA"},
    },
    {
        "external_id": "c",
        "name": '=HYPERLINK("x")',
        "segment": "Enterprise",
        "signup_date": dt.date(2020, 1, 1),
        "monthly_revenue": 0.1,
        "churned_at": None,
        "attributes": {"seats": "7.5", "TotalCharges": "20.05", "flag": "null"},
    },
]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(insert(Customer), ROWS)
    yield engine
    engine.dispose()


def test_frames_carry_the_stored_values_whichever_the_database(engine: Engine) -> None:
    """PostgreSQL reads chunks with COPY as CSV, SQLite row by row: quotes, newlines, blanks,
    NULLs, numbers stored as text and timestamps with and without fractions come out the same."""
    frames = list(iter_customer_frames(engine, ATTRIBUTES, chunk_size=2))
    assert [len(f) for f in frames] == [2, 1]
    frame = pd.concat(frames, ignore_index=True)

    assert frame["external_id"].tolist() == ["a", "b", "c"]
    assert frame["name"].tolist() == [r["name"] for r in ROWS]
    assert frame["id"].dtype.kind == "i" and frame["id"].is_monotonic_increasing
    assert frame["segment"].tolist()[0::2] == ["SMB", "Enterprise"]
    assert pd.isna(frame["segment"][1])
    assert frame["signup_date"].tolist()[0::2] == [
        pd.Timestamp(2024, 2, 29),
        pd.Timestamp(2020, 1, 1),
    ]
    assert pd.isna(frame["signup_date"][1])
    assert frame["monthly_revenue"].tolist()[0::2] == [70.35, 0.1]
    assert math.isnan(frame["monthly_revenue"][1])
    assert frame["churned_at"].tolist()[:2] == [
        pd.Timestamp("2026-10-01 06:30:00", tz="UTC"),
        pd.Timestamp("2026-10-02 07:45:12.123456", tz="UTC"),
    ]
    assert pd.isna(frame["churned_at"][2])
    # Numbers stored as text or as numbers, with a blank among them, become float columns.
    assert frame["seats"].tolist() == [3.0, 12.0, 7.5]
    assert frame["TotalCharges"].dtype == "float64"
    assert math.isnan(frame["TotalCharges"][0]) and frame["TotalCharges"][1] == 1889.5
    # Text stays text, "NA" and "null" included; blank or absent is missing.
    assert frame["note"][0] == 'line one\nline "two", three'
    assert all(pd.isna(v) or v == "" for v in frame["note"][1:])
    assert frame["flag"].tolist()[1:] == ["NA", "null"]


def test_a_scoring_read_takes_only_the_columns_asked_for(engine: Engine) -> None:
    frames = list(
        iter_customer_frames(engine, ["seats"], columns=("monthly_revenue", "churned_at"))
    )
    assert list(frames[0].columns) == ["id", "monthly_revenue", "churned_at", "seats"]
    assert frames[0]["seats"].tolist() == [3.0, 12.0, 7.5]

"""PostgreSQL: a first import into an empty table is copied straight into customers, and stores
exactly what the staged upsert stores."""

from __future__ import annotations

import csv
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from churndesk.db.models import Customer
from churndesk.errors import Cancelled
from churndesk.services import import_writes
from churndesk.services.importing import import_customers

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgresql"])]

TODAY = dt.date(2026, 11, 1)
HEADER = [
    "customerID", "Name", "Email", "Segment", "Plan", "Country", "Signup date",
    "MonthlyCharges", "Status", "Churned at", "Owner",
    "Tier \"gold\"", "naïve", "ratio", "vip", "never", "note",
]  # fmt: skip
NAMES = [
    "Plain Name",
    "",
    "\\N",
    '=HYPERLINK("http://evil.example","x")',
    'Quote "double", comma',
    "Line one\nline two",
    "Emoji 😀 and RTL עברית",
    "  padded  ",
    "Tab\there, CR\rthere, back\\slash\\N",
]


def rows(n: int) -> list[list[str]]:
    out = []
    for i in range(n):
        out.append(
            [
                f"C{i:05d}",
                NAMES[i % len(NAMES)],
                "" if i % 3 == 0 else f"p{i}@example.com",
                ["", "SMB", "Enterprise"][i % 3],
                ["Basic", "", "Plus"][i % 3],
                "" if i % 4 == 0 else "NL",
                "" if i % 5 == 0 else f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
                "" if i % 7 == 0 else f"{i % 90}.{i % 100:02d}",
                ["active", "churned", ""][i % 3],
                "2026-01-02T03:04:05+02:00" if i % 3 == 1 else "",
                "" if i % 2 else "alice",
                ["gold", 'say "hi"', "", "tab\there"][i % 4],
                str(i % 11 - 5) if i % 6 else "",
                ["1.50", "-0.001", "1e5", "", "2E-3", "-0"][i % 6],
                ["TRUE", "false", "", "True"][i % 4],
                "",
                "back\\slash" if i % 2 else "Line\r\nbreak",
            ]
        )
    return out


def write(path: Path, data: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(data)
    return path


MAPPING = {
    "name": "Name",
    "email": "Email",
    "segment": "Segment",
    "plan": "Plan",
    "country": "Country",
    "signup_date": "Signup date",
    "status": "Status",
    "churned_at": "Churned at",
    "owner": "Owner",
}


def stored(engine: Engine) -> dict[str, tuple[Any, ...]]:
    """Every customer by external id, without what differs between two loads (id, times)."""
    table = Customer.__table__
    skip = {"id", "created_at", "updated_at"}
    with engine.connect() as connection:
        result = connection.execute(
            select(*(c for c in table.columns if c.name not in skip), text("attributes::text"))
        ).all()
    return {r[0]: tuple(r) for r in result}


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Imports of 100 rows or more count as bulk loads; records each direct COPY's row count."""
    monkeypatch.setattr(import_writes, "BULK_LOAD_MIN_ROWS", 100)
    seen: list[int] = []
    real = import_writes._copy_customers

    def spy(*args: Any) -> int:
        count = real(*args)
        seen.append(count)
        return count

    monkeypatch.setattr(import_writes, "_copy_customers", spy)
    return seen


def test_a_first_import_stores_what_the_upsert_stores(
    engine: Engine, tmp_path: Path, copies: list[int]
) -> None:
    path = write(tmp_path / "c.csv", rows(700))
    direct = import_customers(engine, path, mapping=MAPPING, chunk_size=200, today=TODAY)
    assert copies == [200, 200, 200, 100]  # every chunk straight into customers
    assert (direct.inserted, direct.updated, direct.rejected) == (700, 0, 0)
    first = stored(engine)

    # The same file through staging and ON CONFLICT: the table is not empty this time.
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM customers")
        connection.exec_driver_sql(
            "INSERT INTO customers (external_id, attributes) VALUES ('zz', '{}')"
        )
    copies.clear()
    staged = import_customers(engine, path, mapping=MAPPING, chunk_size=200, today=TODAY)
    assert copies == []
    assert staged.inserted == 700
    second = stored(engine)
    del second["zz"]
    assert second == first
    # Spot checks of what both stored.
    assert first["C00001"][1] == ""  # an empty name is '', not NULL
    assert first["C00002"][1] == "\\N"
    assert first["C00000"][2] is None and first["C00000"][3] is None  # blank e-mail, segment
    assert first["C00002"][8] == "active"  # a blank status is active
    assert first["C00001"][9] == dt.datetime(2026, 1, 2, 1, 4, 5, tzinfo=dt.UTC)
    assert '"Tier \\"gold\\"": "say \\"hi\\""' in first["C00001"][-1]


def test_a_cancelled_first_import_leaves_the_table_empty(
    engine: Engine, tmp_path: Path, copies: list[int]
) -> None:
    cancel = threading.Event()

    def progress(fraction: float, message: str) -> None:
        if message.startswith("Reading c.csv: 400"):
            cancel.set()

    with pytest.raises(Cancelled):
        import_customers(
            engine,
            write(tmp_path / "c.csv", rows(700)),
            mapping=MAPPING,
            chunk_size=200,
            today=TODAY,
            progress=progress,
            cancel=cancel,
        )
    assert copies  # it had copied chunks before the cancel
    assert stored(engine) == {}


def test_a_busy_table_is_not_copied_into(
    engine: Engine, tmp_path: Path, copies: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another desktop reading: no exclusive lock, so the rows go through ON CONFLICT."""
    monkeypatch.setattr(import_writes, "BULK_LOCK_WAIT_MS", 100)
    with engine.connect() as reader, reader.begin():
        reader.exec_driver_sql("SELECT count(*) FROM customers")
        worker = threading.Thread(
            target=import_customers,
            args=(engine, write(tmp_path / "c.csv", rows(300))),
            kwargs={"mapping": MAPPING, "today": TODAY},
        )
        worker.start()
        worker.join(timeout=120)  # an import waiting for this reader would never finish
    worker.join()
    assert copies == []
    assert len(stored(engine)) == 300


def test_a_column_that_turns_to_text_after_copied_chunks_is_imported_exactly(
    engine: Engine, tmp_path: Path, copies: list[int]
) -> None:
    """'zip' looks numeric while chunks are copied as JSON numbers, then holds a postcode: the
    import starts again through staging and stores text everywhere."""
    path = tmp_path / "zip.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "zip"])
        writer.writerows([f"c{i}", "SW1A 1AA" if i == 430 else str(10000 + i)] for i in range(500))
    messages: list[str] = []
    result = import_customers(
        engine, path, chunk_size=100, progress=lambda fraction, message: messages.append(message)
    )
    assert copies[:2] == [100, 100]  # copied before the postcode showed up
    assert "Reading zip.csv again: column zip holds text" in messages
    assert result.attribute_types["zip"] == "text"
    assert result.inserted == 500
    with engine.connect() as connection:
        kinds = connection.execute(
            text("SELECT DISTINCT jsonb_typeof(attributes -> 'zip') FROM customers")
        ).scalars()
        assert list(kinds) == ["string"]

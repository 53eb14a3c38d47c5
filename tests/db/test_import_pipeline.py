"""PostgreSQL saves each chunk while the next is read; results match a read-then-save import."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from churndesk.db.models import Customer
from churndesk.services import import_writes
from churndesk.services.importing import import_customers


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "name", "zip", "vip"])
        writer.writerows(rows)
    return path


def attributes(row: Any) -> dict[str, Any]:
    value = row["attributes"]
    return json.loads(value) if isinstance(value, str) else dict(value)


def stored(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = connection.execute(select(Customer.__table__)).mappings().all()
    return {r["external_id"]: r for r in rows}


def test_chunks_are_saved_on_a_worker_thread_with_exact_counts(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved_on: list[str] = []
    real = import_writes._upsert_counted

    def spy(*args: Any) -> tuple[int, int]:
        saved_on.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(import_writes, "_upsert_counted", spy)
    first = [[f"c{i}", f"Name {i}", str(10000 + i), "true"] for i in range(250)]
    import_customers(engine, write(tmp_path / "a.csv", first), chunk_size=100)
    # Rows 0-99 unchanged, 100-199 renamed, 200-249 unchanged, 250-349 new.
    second = [
        [f"c{i}", f"Name {i}" if not 100 <= i < 200 else f"Renamed {i}", str(10000 + i), "true"]
        for i in range(350)
    ]
    result = import_customers(engine, write(tmp_path / "b.csv", second), chunk_size=100)
    assert (result.inserted, result.updated, result.unchanged) == (100, 100, 150)
    rows = stored(engine)
    assert rows["c150"]["name"] == "Renamed 150" and rows["c150"]["version"] == 2
    assert rows["c50"]["version"] == 1 and rows["c300"]["version"] == 1
    if engine.dialect.name == "postgresql":
        assert len(saved_on) == 3 + 4  # one upsert per chunk, none on the calling thread
        assert all(name.startswith("import-save") for name in saved_on)
    else:
        assert saved_on == []  # SQLite saves once, after reading


def test_a_column_that_turns_to_text_is_imported_exactly(engine: Engine, tmp_path: Path) -> None:
    """'zip' looks numeric for two chunks, then holds a postcode: the chunks already saved had
    numbers, so PostgreSQL reads the file again; either way the result is exact."""
    # Stored before, with 'zip' already text (the file also held "AB1").
    old = [["c5", "Name 5", "10005", "true"], ["x", "X", "AB1", ""]]
    import_customers(engine, write(tmp_path / "old.csv", old))
    rows = [[f"c{i}", f"Name {i}", str(10000 + i), "true"] for i in range(250)]
    rows[230][2] = "SW1A 1AA"
    messages: list[str] = []
    result = import_customers(
        engine,
        write(tmp_path / "new.csv", rows),
        chunk_size=100,
        progress=lambda fraction, message: messages.append(message),
    )
    assert result.attribute_types["zip"] == "text"
    assert (result.inserted, result.updated, result.unchanged) == (249, 0, 1)
    saved = stored(engine)
    assert attributes(saved["c7"]) == {"zip": "10007", "vip": True}  # text, not a number
    assert attributes(saved["c230"]) == {"zip": "SW1A 1AA", "vip": True}
    assert saved["c5"]["version"] == 1  # stored "10005" as text already: unchanged
    assert saved["c230"]["name"] == "Name 230"
    again = [m for m in messages if "again" in m]
    if engine.dialect.name == "postgresql":
        assert again == ["Reading new.csv again: column zip holds text"]
    else:
        assert again == []


def test_a_type_changed_by_rejected_rows_alone_is_caught_too(
    engine: Engine, tmp_path: Path
) -> None:
    """The last chunk's rows are all rejected (ids seen before), so nothing of it is saved,
    yet its postcodes make 'zip' a text column: the saved chunks must not keep numbers."""
    rows = [[f"c{i}", f"Name {i}", str(10000 + i), "true"] for i in range(200)]
    rows += [[f"c{i}", "Again", "SW1A 1AA", "true"] for i in range(50)]
    result = import_customers(engine, write(tmp_path / "dup.csv", rows), chunk_size=100)
    assert result.attribute_types["zip"] == "text"
    assert (result.inserted, result.rejected) == (200, 50)
    assert attributes(stored(engine)["c7"]) == {"zip": "10007", "vip": True}

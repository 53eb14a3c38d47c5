"""Reading a big file in worker processes stores, rejects and reports exactly what one process
does; whatever the workers cannot do the same way makes the import read in one process."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from churndesk.db.models import Customer
from churndesk.errors import Cancelled, ValidationError
from churndesk.services import import_parallel, import_writes
from churndesk.services.importing import ImportResult, import_customers
from tests.db.test_import_direct import HEADER, MAPPING, rows

TODAY = dt.date(2026, 11, 1)
BLOCK = 4096  # bytes: about 25 blocks for the 600 rows below


@pytest.fixture(autouse=True)
def bulk_from_100_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_writes, "BULK_LOAD_MIN_ROWS", 100)


def write(path: Path, data: list[list[str]], *, encoding: str = "utf-8", raw: str = "") -> Path:
    """The rows as CSV, with ``raw`` text (blank lines, ragged rows) after the 300th."""
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(data[:300])
        handle.write(raw)
        writer.writerows(data[300:])
    return path


def messy_rows(n: int = 600) -> list[list[str]]:
    data = rows(n)
    data[50][7] = "abc"  # not a number
    data[120][2] = "not-an-email"
    data[121][6] = "2024-02-30"  # no such day
    data[400][0] = ""  # no customer ID
    return data


def stored(engine: Engine) -> dict[str, tuple[Any, ...]]:
    """Every customer by external id, without what differs between two loads (id, times)."""
    table = Customer.__table__
    columns = [c for c in table.columns if c.name not in {"id", "created_at", "updated_at"}]
    with engine.connect() as connection:
        return {r[0]: tuple(r) for r in connection.execute(select(*columns)).all()}


def report(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def blocks_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records of each block the workers read, in the order the import took them."""
    seen: list[int] = []
    real = import_parallel.ParallelReader.blocks

    def spy(self: import_parallel.ParallelReader, cancel: Any = None) -> Any:
        for block in real(self, cancel):
            seen.append(block.records)
            yield block

    monkeypatch.setattr(import_parallel.ParallelReader, "blocks", spy)
    return seen


def import_both_ways(
    engine: Engine, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> tuple[tuple[ImportResult, Any, Any], tuple[ImportResult, Any, Any]]:
    """Import ``path`` in one process, empty the table, import it with workers; for each the
    result, what was stored and the error report (or the ValidationError raised)."""
    outcomes = []
    for minimum in (10**15, 0):
        monkeypatch.setattr(import_parallel, "PARALLEL_MIN_BYTES", minimum)
        monkeypatch.setattr(import_parallel, "BLOCK_BYTES", BLOCK)
        errors = tmp_path / f"errors-{minimum}.csv"
        try:
            result = import_customers(
                engine, path, mapping=MAPPING, today=TODAY, errors_out=errors, **options
            )
        except ValidationError as exc:
            outcomes.append((None, None, exc.user_message))
            continue
        outcomes.append((result, stored(engine), report(errors) if result.errors_path else None))
        with engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM customers")
    return outcomes[0], outcomes[1]


def assert_same(one: tuple[Any, Any, Any], workers: tuple[Any, Any, Any]) -> None:
    result, table, errors = one
    parallel_result, parallel_table, parallel_errors = workers
    assert parallel_errors == errors
    assert parallel_table == table
    if result is not None:
        fields = ("rows", "inserted", "updated", "rejected", "error_count", "attribute_types")
        assert {f: getattr(parallel_result, f) for f in fields} == {
            f: getattr(result, f) for f in fields
        }


def test_workers_store_reject_and_report_what_one_process_does(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocks_read: list[int]
) -> None:
    ragged = '\n\nR1,only two\n\n"R2",x,y,"a ""quoted"" field\nspanning lines",,,,,,,,,,,,,,,\n'
    path = write(tmp_path / "c.csv", messy_rows(), raw=ragged)
    one, workers = import_both_ways(engine, path, tmp_path, monkeypatch)
    assert len(blocks_read) > 10  # really read in blocks by the workers
    assert sum(blocks_read) == one[0].rows == 602
    assert_same(one, workers)
    result, table, errors = one
    assert result.rejected == len({e[0] for e in errors[1:]}) == 6
    # Row 52 starts on line 87: before it the header and 50 rows, 35 of which hold a quoted
    # line break ("\n", "\r\n" or a lone "\r", each a line to the CSV reader).
    assert errors[1][:3] == ["52", "87", "MonthlyCharges"]
    assert table["C00005"][1] == "Line one\nline two"


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8-sig"])
def test_other_encodings_read_the_same(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    blocks_read: list[int],
    encoding: str,
) -> None:
    data = [[cell.replace("😀", "€").replace("עברית", "café") for cell in r] for r in rows(400)]
    path = write(tmp_path / "c.csv", data, encoding=encoding)
    one, workers = import_both_ways(engine, path, tmp_path, monkeypatch)
    assert blocks_read
    assert one[0].format.encoding == encoding
    assert_same(one, workers)


def plain(data: list[list[str]]) -> list[list[str]]:
    """The rows without quotes, commas or line breaks: CSV then needs no quoting at all."""
    return [[c.replace('"', "").replace(",", " ").replace("\n", " ").replace("\r", " ") for c in r]
            for r in data]  # fmt: skip


def duplicate(data: list[list[str]]) -> tuple[list[list[str]], str]:
    data[10][0] = data[500][0]
    return data, ""


def stray_quote(data: list[list[str]]) -> tuple[list[list[str]], str]:
    # A quote inside an unquoted field: the count of quotes says the line ends a record, the
    # CSV reader reads the rest of the file as one quoted field.
    return plain(data), 'X9,5" screen,"unclosed\n'


def huge_field(data: list[list[str]]) -> tuple[list[list[str]], str]:
    return data, "X1," + "a" * 140_000 + "\n"  # over the csv module's field limit


@pytest.mark.parametrize(
    ("case", "reason", "most_blocks"),
    [
        (duplicate, "appears more than once", 16),
        (stray_quote, "inside a quoted field", 16),
        (huge_field, "no record boundary", 16),  # 140 kB without a newline: 34 blocks
        (huge_field, "worker failed", 100),
    ],
    ids=["duplicate", "stray-quote", "no-boundary", "worker-error"],
)
def test_what_workers_cannot_do_is_read_in_one_process(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    case: Callable[[list[list[str]]], tuple[list[list[str]], str]],
    reason: str,
    most_blocks: int,
) -> None:
    monkeypatch.setattr(import_parallel, "MAX_BLOCKS_WITHOUT_BOUNDARY", most_blocks)
    data, raw = case(rows(600))
    path = write(tmp_path / "c.csv", data, raw=raw)
    with caplog.at_level(logging.INFO, logger="churndesk.services.importing"):
        one, workers = import_both_ways(engine, path, tmp_path, monkeypatch)
    assert reason in caplog.text
    assert_same(one, workers)


def test_a_type_found_late_reads_again_and_stores_the_same(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = rows(600)
    for i, row in enumerate(data):
        row[16] = str(i) if i < 500 else f"n{i}"  # numbers for 500 rows, then text
    path = write(tmp_path / "c.csv", data)
    one, workers = import_both_ways(engine, path, tmp_path, monkeypatch)
    assert one[0].attribute_types["note"] == "text"
    assert_same(one, workers)


def test_a_cancel_stops_the_workers_and_keeps_nothing(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(import_parallel, "BLOCK_BYTES", BLOCK)
    path = write(tmp_path / "c.csv", rows(600))
    cancel = threading.Event()
    processes: list[Any] = []
    real_blocks = import_parallel.ParallelReader.blocks

    def cancel_after_three(self: import_parallel.ParallelReader, _: Any = None) -> Any:
        processes.extend(self._workers)
        for n, block in enumerate(real_blocks(self, cancel)):
            if n == 3:
                cancel.set()
            yield block

    monkeypatch.setattr(import_parallel.ParallelReader, "blocks", cancel_after_three)
    with pytest.raises(Cancelled):
        import_customers(engine, path, mapping=MAPPING, today=TODAY, cancel=cancel)
    assert stored(engine) == {}
    assert len(processes) == import_parallel.WORKERS
    assert all(p.poll() is not None for p in processes)  # gone, not left reading


# --- Where the file is cut ---------------------------------------------------------------------


def test_blocks_cover_the_file_and_end_only_between_records(tmp_path: Path) -> None:
    text = "h1,h2\n" + "".join(
        f'{i},"a ""{i}""\nb"\n' if i % 3 == 0 else f"{i},plain\n" for i in range(500)
    )
    path = tmp_path / "q.csv"
    path.write_bytes(text.encode() + b"last,row")  # no newline at the end
    data = path.read_bytes()
    start = data.index(b"\n") + 1
    ranges = list(import_parallel.blocks(path, start, size=64))
    assert ranges[0][0] == start and ranges[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert len(ranges) > 20
    for _, end in ranges[:-1]:
        assert data[end - 1 : end] == b"\n" and data.count(b'"', start, end) % 2 == 0
    parsed = [
        record
        for first, end in ranges
        for record in csv.reader(data[first:end].decode().splitlines(keepends=True))
    ]
    assert parsed == list(csv.reader(data[start:].decode().splitlines(keepends=True)))


def test_the_data_starts_after_the_header_lines(tmp_path: Path) -> None:
    from churndesk.services.csv_sniff import detect_format

    path = tmp_path / "h.csv"
    path.write_bytes('\ufeff\r\n"a\r\nb",c\r\n1,2\r\n'.encode())
    fmt = detect_format(path)
    assert fmt.encoding == "utf-8-sig"
    # Line 1 is blank, the header spans lines 2 and 3.
    assert path.read_bytes()[import_parallel.data_start(path, fmt, 3) :] == b"1,2\r\n"


def test_no_interpreter_for_workers_reads_in_one_process(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = write(tmp_path / "c.csv", rows(300))
    monkeypatch.setattr(import_parallel.sys, "executable", str(tmp_path / "no-such-python"))
    with caplog.at_level(logging.INFO, logger="churndesk.services.importing"):
        one, workers = import_both_ways(engine, path, tmp_path, monkeypatch)
    assert "could not start" in caplog.text
    assert_same(one, workers)

"""CSV import of customers: streamed, validated per row, upserted by external id in one transaction.

How it works, and why:

* The file is read in chunks (never whole) by :class:`~churndesk.services.csv_sniff.CsvReader`.
  Each chunk is validated column by column; a field's values are converted once per distinct
  value, which makes low-cardinality columns (dates, plans, status) nearly free. Big files are
  read and validated by two worker processes instead (:mod:`churndesk.services.import_parallel`),
  block by block, while this process writes; anything they cannot do exactly as one process
  would (a duplicate id, a stray quote) makes the import read the file again here.
* Valid rows go to a TEMP staging table (:mod:`~churndesk.services.import_writes`): COPY on
  PostgreSQL, executemany on SQLite. Extra columns are staged as text, because a column's type
  is a property of the whole column ("0012" in any row keeps an id-like column text), known
  only at the end of the file (:mod:`~churndesk.services.import_plan` infers it). The
  attributes JSON is then built in SQL from the inferred types, which also spares a JSON
  encode per row in Python.
* On SQLite ``INSERT ... SELECT ... ON CONFLICT (external_id) DO UPDATE`` statements move the
  staged rows into ``customers`` in batches after the whole file is read. On PostgreSQL each
  chunk is staged and upserted on a worker thread while the next one is read
  (``import_writes.ChunkSaver``): the server writes while Python validates. A first import into
  an empty table, read in this process, skips staging: its rows, attributes JSON built here
  from the types so far, go to ``customers`` by COPY. A column that turns out to hold text
  after chunks were saved with numbers in it makes the import start again the SQLite way. In
  either case updated rows bump ``version`` (optimistic locking sees imports) and
  ``updated_at``, and rows whose values did not change are left alone and counted as unchanged.
* Imports that bring mostly new customers drop the secondary indexes and rebuild them by
  sorting (:mod:`churndesk.db.bulk_indexes`); the progress bar gives that its share.
* Everything, staging included, happens in one transaction with one audit entry and one change
  event: a cancel, an error, a killed process or a lost connection leaves the database as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from churndesk.db.maintenance import refresh_statistics
from churndesk.errors import ChurndeskError, DatabaseUnavailable, ValidationError
from churndesk.plurals import counted
from churndesk.progress import ProgressFn, Throttled, check_cancel, stage
from churndesk.services import audit, import_parallel
from churndesk.services.changes import Changes, publish
from churndesk.services.collection import fewer_collections
from churndesk.services.csv_sniff import CsvFormat, CsvReader, RecordChunk, detect_format
from churndesk.services.customer_fields import (
    EMAIL_PATTERN,
    FIELDS,
    MAX_LENGTH,
    FieldError,
    check_email,
    check_external_id,
    parse_date,
    parse_money,
    parse_status,
    parse_timestamp,
    status_reader,
)
from churndesk.services.import_plan import AttributeColumn, ImportPlan, attributes_json
from churndesk.services.import_writes import (
    BULK_LOAD_MIN_ROWS,
    EMPTY_IS_NULL,
    ChunkSaver,
    TypesChanged,
    bulk_expected,
    create_staging,
    upsert,
    write_staging,
    write_staging_text,
)
from churndesk.services.indexes import finish_indexes
from churndesk.services.write_behind import WriteBehind

log = logging.getLogger(__name__)

__all__ = [
    "ATTRIBUTE_TYPES",
    "DEFAULT_CHUNK_SIZE",
    "ImportPreview",
    "ImportRejected",
    "ImportResult",
    "RowError",
    "automatic_mapping",
    "import_customers",
    "parse_mapping",
    "preview_import",
    "write_error_report",
]

DEFAULT_CHUNK_SIZE = 20_000
SQLITE_IMPORT_CACHE_KIB = 256 * 1024
#: Row errors kept in memory for the GUI; all of them go to the report file.
MAX_KEPT_ERRORS = 1_000
#: A value longer than this is cut in the error report (the report says how long it was).
REPORT_VALUE_LIMIT = 200
ERROR_REPORT_COLUMNS = ("row", "line", "column", "value", "reason")
ATTRIBUTE_TYPES = ("integer", "number", "boolean", "text", "empty")

# Synonyms for automatic mapping, compared after lower-casing and dropping everything but
# letters and digits ("Customer ID" -> "customerid"). The field's own name always comes first.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "external_id": ("customerid", "custid", "clientid", "accountid", "customernumber", "id"),
    "name": ("customername", "fullname", "clientname", "accountname"),
    "email": ("emailaddress", "mail"),
    "segment": ("customersegment",),
    "plan": ("planname", "tariff", "product"),
    "country": ("countrycode",),
    "signup_date": ("signup", "signupdate", "customersince", "startdate", "joindate"),
    "monthly_revenue": ("monthlycharges", "monthlycharge", "mrr", "monthlyfee"),
    "status": ("churn", "churned", "churnstatus"),
    "churned_at": ("churndate", "churnedon", "cancelledat", "canceledat"),
    "owner": ("accountowner", "assignedto", "csm"),
}
_TELCO_MARKERS = ("customerID", "MonthlyCharges", "Churn")

# The customer_fields e-mail rule, for many addresses at once (no address holds a newline).
_ALL_EMAILS = re.compile(f"{EMAIL_PATTERN}(?:\n{EMAIL_PATTERN})*")


@dataclass(frozen=True)
class RowError:
    """One problem with one row: where it is, which column, the value and why."""

    #: The row as a spreadsheet numbers it: the header is row 1, the first customer row 2.
    row: int
    #: The line of the file on which the row starts.
    line: int
    column: str
    value: str
    reason: str


@dataclass(frozen=True)
class ImportPreview:
    """What an import of ``path`` would do, for the wizard: format, mapping, first rows."""

    path: Path
    format: CsvFormat
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    #: Customer field -> CSV column.
    mapping: dict[str, str]
    #: Columns that would be kept as attributes.
    attributes: tuple[str, ...]
    ignored: tuple[str, ...]
    #: "telco", "churndesk" or "custom".
    layout: str
    #: Problems that would stop the import (e.g. no column for the customer ID).
    problems: tuple[str, ...]


@dataclass(frozen=True)
class ImportResult:
    """The outcome of an import; ``committed`` is False when nothing was written."""

    file: str
    format: CsvFormat
    mapping: dict[str, str]
    attribute_types: dict[str, str]
    rows: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    error_count: int
    #: The first MAX_KEPT_ERRORS row errors, in file order.
    errors: tuple[RowError, ...]
    errors_path: Path | None
    committed: bool
    seconds: float
    #: Problems after the commit that did not undo the import (an index not built).
    warnings: tuple[str, ...] = ()

    @property
    def imported(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "encoding": self.format.encoding,
            "delimiter": self.format.delimiter,
            "mapping": self.mapping,
            "attribute_types": self.attribute_types,
            "rows": self.rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "errors": self.error_count,
            "errors_path": str(self.errors_path) if self.errors_path else None,
            "committed": self.committed,
            "seconds": round(self.seconds, 3),
            "warnings": list(self.warnings),
        }


class ImportRejected(ValidationError):
    """An all-or-nothing import found bad rows and wrote nothing; ``result`` has the report."""

    def __init__(self, user_message: str, result: ImportResult) -> None:
        super().__init__(user_message)
        self.result = result


# --- Mapping ---------------------------------------------------------------------------------


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def automatic_mapping(columns: Sequence[str]) -> dict[str, str]:
    """Customer field -> column for the columns we recognise (own layout, Telco, synonyms)."""
    by_key: dict[str, str] = {}
    for column in columns:
        by_key.setdefault(_normalise(column), column)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    # Exact field names first (our own layout), so "status" wins over "Churn" for status.
    for candidates_of in (lambda f: (f,), lambda f: (_normalise(f), *_SYNONYMS[f])):
        for field_name in FIELDS:
            if field_name in mapping:
                continue
            for candidate in candidates_of(field_name):
                column = (
                    candidate
                    if candidate in columns and candidate == field_name
                    else by_key.get(candidate)
                )
                if column is not None and column not in used:
                    mapping[field_name] = column
                    used.add(column)
                    break
    return mapping


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``FIELD=COLUMN`` strings (from ``--map``) as a dict; an empty COLUMN unmaps the field.

    Raises ValidationError for a malformed item or an unknown field.
    """
    mapping: dict[str, str] = {}
    for item in items:
        field_name, sep, column = item.partition("=")
        field_name = field_name.strip()
        if not sep or not field_name:
            raise ValidationError(f"'{item}' is not FIELD=COLUMN (e.g. external_id=CustomerNo).")
        if field_name not in FIELDS:
            raise ValidationError(
                f"'{field_name}' is not a customer field; the fields are {', '.join(FIELDS)}."
            )
        mapping[field_name] = column
    return mapping


def _layout(columns: Sequence[str]) -> str:
    if all(marker in columns for marker in _TELCO_MARKERS):
        return "telco"
    if all(name in columns for name in FIELDS):
        return "churndesk"
    return "custom"


def _resolve_mapping(
    header: Sequence[str], explicit: Mapping[str, str] | None, ignore: Collection[str]
) -> tuple[dict[str, str], list[str]]:
    """The final field -> column mapping and the problems that prevent an import."""
    mapping = {f: c for f, c in automatic_mapping(header).items() if c not in ignore}
    problems: list[str] = []
    for field_name, column in (explicit or {}).items():
        if field_name not in FIELDS:
            problems.append(f"'{field_name}' is not a customer field.")
            continue
        mapping.pop(field_name, None)
        if not column:
            continue  # FIELD= : keep that field unmapped
        actual = _find_column(header, column)
        if actual is None:
            problems.append(
                f"The file has no column '{column}' (for {field_name}); its columns are "
                f"{', '.join(header)}."
            )
            continue
        # A column feeds one field: an explicit choice takes it away from an automatic one.
        for other, other_column in list(mapping.items()):
            if other_column == actual:
                del mapping[other]
        mapping[field_name] = actual
    if "external_id" not in mapping and not any(p.endswith("(for external_id).") for p in problems):
        problems.append(
            "No column holds the customer ID. Map one with --map external_id=COLUMN "
            f"(the columns are {', '.join(header)})."
        )
    return mapping, problems


def _find_column(header: Sequence[str], name: str) -> str | None:
    if name in header:
        return name
    folded = [c for c in header if c.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def _check_header(path: Path, header: list[str]) -> list[str]:
    """Name blank header cells and refuse duplicate names (they would be the same attribute)."""
    named = [cell if cell.strip() else f"column {i + 1}" for i, cell in enumerate(header)]
    seen: set[str] = set()
    for name in named:
        if name in seen:
            raise ValidationError(
                f"{path.name}: the column name '{name}' appears twice in the header; "
                "rename one of them."
            )
        seen.add(name)
    return named


def preview_import(
    path: str | os.PathLike[str],
    *,
    mapping: Mapping[str, str] | None = None,
    ignore: Collection[str] = (),
    rows: int = 20,
    delimiter: str | None = None,
) -> ImportPreview:
    """Read the start of ``path`` and work out the mapping an import would use; no database.

    Raises ValidationError when the file cannot be read as CSV at all (missing, empty, binary).
    """
    source = Path(path)
    fmt = detect_format(source, delimiter=delimiter)
    with CsvReader(source, fmt) as reader:
        raw_header = reader.read_header()
        if not raw_header:
            raise ValidationError(f"{source.name} is empty: there is nothing to import.")
        header = _check_header(source, raw_header)
        sample: list[tuple[str, ...]] = []
        for chunk in reader.chunks(rows):
            sample.extend(tuple(r) for r in chunk.records)
            break
    resolved, problems = _resolve_mapping(header, mapping, ignore)
    mapped = set(resolved.values())
    return ImportPreview(
        path=source,
        format=fmt,
        columns=tuple(header),
        rows=tuple(sample[:rows]),
        mapping=resolved,
        attributes=tuple(c for c in header if c not in mapped and c not in ignore),
        ignored=tuple(c for c in header if c in ignore and c not in mapped),
        layout=_layout(header),
        problems=tuple(problems),
    )


# --- Error report ----------------------------------------------------------------------------


def _report_value(value: str) -> str:
    if len(value) <= REPORT_VALUE_LIMIT:
        return value
    return f"{value[:REPORT_VALUE_LIMIT]}… ({len(value):,} characters)"


class _ErrorSink:
    """Collects row errors: counts them, keeps the first few, streams all to the report file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.kept: list[RowError] = []
        self.count = 0
        self.rejected_rows = 0
        self._partial = path.with_name(path.name + ".part") if path else None
        self._handle: Any = None
        self._writer: Any = None
        if self._partial is not None:
            try:
                self._handle = self._partial.open("w", encoding="utf-8", newline="")
            except OSError as exc:
                raise ValidationError(
                    f"Cannot write the error report {path}: {exc.strerror}."
                ) from exc
            self._writer = csv.writer(self._handle)
            self._writer.writerow(ERROR_REPORT_COLUMNS)

    def add(self, errors: list[RowError], rejected_rows: int) -> None:
        if not errors:
            return
        self.count += len(errors)
        self.rejected_rows += rejected_rows
        room = MAX_KEPT_ERRORS - len(self.kept)
        if room > 0:
            self.kept.extend(errors[:room])
        if self._writer is not None:
            self._writer.writerows(
                (e.row, e.line, e.column, _report_value(e.value), e.reason) for e in errors
            )

    def finish(self, keep: bool) -> Path | None:
        """Close the report; keep it (renamed into place) or delete it."""
        if self._handle is None or self._partial is None or self.path is None:
            return None
        self._handle.close()
        if keep:
            os.replace(self._partial, self.path)
            return self.path
        self._partial.unlink(missing_ok=True)
        return None


def write_error_report(path: str | os.PathLike[str], errors: Iterable[RowError]) -> Path:
    """Write row errors as the CSV report (row, line, column, value, reason)."""
    target = Path(path)
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ERROR_REPORT_COLUMNS)
        writer.writerows(
            (e.row, e.line, e.column, _report_value(e.value), e.reason) for e in errors
        )
    return target


# --- Per-chunk validation --------------------------------------------------------------------


@dataclass
class _PreparedChunk:
    rows: Iterator[tuple[Any, ...]] | list[tuple[Any, ...]]
    valid: int
    errors: list[RowError]
    rejected: int


def _emails(raw: Sequence[str]) -> tuple[list[Any], dict[str, str]]:
    """E-mail addresses, checked with one regex call over all distinct values when all pass."""
    stripped = list(map(str.strip, raw))
    distinct = set(stripped)
    distinct.discard("")
    if not distinct or (
        max(map(len, distinct)) <= MAX_LENGTH["email"]
        and _ALL_EMAILS.fullmatch("\n".join(distinct))
    ):
        return [v or None for v in stripped], {}
    return _distinct_map(raw, lambda v: check_email(v) if v.strip() else None)


def _distinct_map(
    values: Sequence[str], convert: Callable[[str], Any]
) -> tuple[list[Any], dict[str, str]]:
    """Convert each distinct value once; returns the converted list and value -> error reason."""
    table: dict[str, Any] = {}
    bad: dict[str, str] = {}
    for value in set(values):
        try:
            table[value] = convert(value)
        except FieldError as exc:
            bad[value] = str(exc)
    return list(map(table.get, values)), bad


class _ChunkValidator:
    """Turns a chunk of raw records into staging rows and row errors."""

    def __init__(self, plan: ImportPlan, dialect: str) -> None:
        self.plan = plan
        #: Rows for COPY straight into customers (``ChunkSaver.direct``) instead of the
        #: staging table: no row number, the attributes as one JSON document.
        self.direct = False
        self.width = len(plan.header)
        # external id -> the row it first appeared on, to report duplicates with their twin.
        self.seen_ids: dict[str, int] = {}
        #: How many rows repeated an id seen before (import_parallel reads again if any).
        self.duplicates = 0
        self.today = plan.today
        # Staging takes dates and times as text: rendered once per distinct value, together
        # with the parse, instead of once per value by the driver.
        self.renderers: dict[str, Callable[[Any], str]] = {
            "signup_date": dt.date.isoformat,
            "churned_at": _sqlite_timestamp if dialect == "sqlite" else dt.datetime.isoformat,
        }

    def prepare(self, chunk: RecordChunk, previous_end_line: int) -> _PreparedChunk:
        plan = self.plan
        records = chunk.records
        n = len(records)
        first_row = chunk.first_index + 2
        errors: list[tuple[int, str, str, str]] = []  # (index, column, value, reason)

        width = self.width
        ragged = [i for i, r in enumerate(records) if len(r) != width]
        ok = np.ones(n, dtype=bool)
        for i in ragged:
            record = records[i]
            if len(record) > width and not any(c.strip() for c in record[width:]):
                records[i] = record[:width]  # trailing empty cells (spreadsheet exports)
                continue
            ok[i] = False
            errors.append(
                (
                    i,
                    "",
                    plan.delimiter.join(record),
                    f"The row has {len(record)} fields but the header has {width}.",
                )
            )
            records[i] = (record + [""] * width)[:width]  # keep the rows rectangular
        cells = list(zip(*records, strict=True))  # column by column: cells[j][i]

        columns: dict[str, Sequence[Any]] = {}
        for field_name in plan.staged_fields:
            if field_name == "status" and plan.derive_status:
                continue
            j = plan.field_index[field_name]
            raw = cells[j]
            values, bad = self._convert(field_name, raw)
            columns[field_name] = values
            if bad:
                for i, value in enumerate(raw):
                    reason = bad.get(value)
                    if reason is not None and ok[i]:
                        errors.append((i, plan.header[j], value, reason))
        self._check_external_ids(columns, errors, first_row)
        self._check_status(columns, cells, errors)

        distinct_values: list[set[str]] = []
        for attribute in plan.attributes:
            raw = cells[attribute.index]
            distinct = set(raw)
            blanks = {v for v in distinct if not v or v.isspace()}
            if blanks:
                distinct -= blanks
                raw = [None if v in blanks else v for v in raw]
            attribute.observe(distinct)
            columns[attribute.staged] = raw
            distinct_values.append(distinct)

        failed = np.zeros(n, dtype=bool)
        for i, *_ in errors:
            failed[i] = True
        keep = ~failed
        ordered = (
            self._direct_columns(columns, n, distinct_values)
            if self.direct
            else self._staged_columns(columns, first_row, n)
        )
        valid = int(keep.sum())
        rows: Iterator[tuple[Any, ...]] | list[tuple[Any, ...]]
        if valid == n:
            rows = zip(*ordered, strict=True)
        else:
            picked = np.flatnonzero(keep)
            rows = [tuple(column[i] for column in ordered) for i in picked]
        errors.sort(key=lambda e: e[0])
        row_errors = [
            RowError(
                first_row + i,
                chunk.end_lines[i - 1] + 1 if i else previous_end_line + 1,
                column,
                value,
                reason,
            )
            for i, column, value, reason in errors
        ]
        return _PreparedChunk(rows, valid, row_errors, n - valid)

    def _staged_columns(
        self, columns: dict[str, Sequence[Any]], first_row: int, n: int
    ) -> list[Sequence[Any]]:
        plan = self.plan
        ordered: list[Sequence[Any]] = [range(first_row, first_row + n)]
        ordered += [columns[f] for f in plan.staged_fields]
        ordered += [columns[a.staged] for a in plan.attributes]
        return ordered

    def _direct_columns(
        self, columns: dict[str, Sequence[Any]], n: int, distinct: list[set[str]]
    ) -> list[Sequence[Any]]:
        """Rows for ``import_writes._copy_customers``: empty optional text is NULL, as the
        upsert's SELECT makes it; the attributes as one JSON document per row (``distinct``:
        each extra column's values other than blanks)."""
        plan = self.plan
        ordered: list[Sequence[Any]] = [
            [v or None for v in columns[f]] if f in EMPTY_IS_NULL else columns[f]
            for f in plan.staged_fields
        ]
        if plan.attributes:
            raw = [columns[a.staged] for a in plan.attributes]
            ordered.append(attributes_json(plan.attributes, raw, distinct))
        else:
            ordered.append(["{}"] * n)
        return ordered

    def _convert(self, field_name: str, raw: Sequence[str]) -> tuple[Sequence[Any], dict[str, str]]:
        plan = self.plan
        today = self.today
        if field_name == "external_id":
            stripped = list(map(str.strip, raw))
            if "" not in stripped and max(map(len, stripped)) <= MAX_LENGTH["external_id"]:
                return stripped, {}  # the common case, checked by C loops only
            return _distinct_map(raw, check_external_id)
        if field_name in ("name", "segment", "plan", "country", "owner"):
            limit = MAX_LENGTH[field_name]
            # Empty optional text becomes NULL in SQL (NULLIF), sparing a pass here.
            if max(map(len, raw)) <= limit:
                return raw, {}
            label = field_name.capitalize()
            bad = {
                v: f"{label} is {len(v):,} characters long; at most {limit:,} fit."
                for v in raw
                if len(v) > limit
            }
            return raw, bad
        if field_name == "email":
            return _emails(raw)
        if field_name == "signup_date":
            day = self.renderers[field_name]
            return _distinct_map(
                raw, lambda v: day(parse_date(v, today=today)) if v.strip() else None
            )
        if field_name == "churned_at":
            stamp = self.renderers[field_name]
            return _distinct_map(
                raw, lambda v: stamp(parse_timestamp(v, today=today)) if v.strip() else None
            )
        if field_name == "monthly_revenue":
            comma = plan.decimal_comma
            return _distinct_map(
                raw, lambda v: parse_money(v, decimal_comma=comma) if v.strip() else None
            )
        if field_name == "status":
            churned, active = plan.churned_values, plan.active_values
            return _distinct_map(raw, lambda v: parse_status(v, churned, active))
        raise AssertionError(field_name)

    def _check_external_ids(
        self,
        columns: dict[str, Sequence[Any]],
        errors: list[tuple[int, str, str, str]],
        first_row: int,
    ) -> None:
        ids = columns["external_id"]
        bad_rows = {e[0] for e in errors}
        column = self.plan.mapping["external_id"]
        seen = self.seen_ids
        if (
            not bad_rows
            and None not in ids
            and len(set(ids)) == len(ids)
            and seen.keys().isdisjoint(ids)
        ):
            # The common case, in C loops only.
            seen.update(zip(ids, range(first_row, first_row + len(ids)), strict=True))
            return
        for i, value in enumerate(ids):
            if value is None or i in bad_rows:
                continue
            row = first_row + i
            first = seen.setdefault(value, row)
            if first != row:
                self.duplicates += 1
                errors.append(
                    (i, column, value, f"The customer ID {value} already appeared on row {first}.")
                )

    def _check_status(
        self,
        columns: dict[str, Sequence[Any]],
        cells: list[tuple[str, ...]],
        errors: list[tuple[int, str, str, str]],
    ) -> None:
        plan = self.plan
        if "churned_at" not in columns:
            return
        churned_at = columns["churned_at"]
        if plan.derive_status:
            columns["status"] = ["churned" if v is not None else "active" for v in churned_at]
            return
        status = columns["status"]
        j = plan.field_index["churned_at"]
        for i, (state, when) in enumerate(zip(status, churned_at, strict=True)):
            if when is not None and state == "active":
                errors.append(
                    (
                        i,
                        plan.header[j],
                        cells[j][i],
                        "A churn date is given but the status says the customer is active.",
                    )
                )


def _sqlite_timestamp(value: dt.datetime) -> str:
    # The text SQLAlchemy's SQLite DateTime writes and parses: naive UTC with microseconds.
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# --- The import ------------------------------------------------------------------------------

#: Share of the progress bar for reading the file, by database and whether the import is a bulk
#: load; the rest is for writing. From where 1M-row imports spend their time (PostgreSQL saves
#: while reading and then rebuilds the indexes for about as long; SQLite writes after reading).
_READ_SHARE = {
    ("postgresql", False): 0.9,
    ("postgresql", True): 0.5,
    ("sqlite", False): 0.6,
    ("sqlite", True): 0.3,
}
#: Share of the bar for the commit (and the statistics after it). SQLite's bulk load ends with
#: a WAL checkpoint of everything it wrote: 7-8 s of a 73 s import of 1M rows.
_COMMIT_SHARE = {("sqlite", True): 0.1}
#: Share of the bar for building the indexes after the commit: a PostgreSQL bulk load's
#: (churndesk.db.pending_indexes), 26 s of a 60 s import of 1M rows.
_AFTER_COMMIT_SHARE = {("postgresql", True): 0.43}


def _actor(connection: Connection, actor: str | None) -> str | None:
    if actor:
        return actor
    if connection.dialect.name == "postgresql":
        # On PostgreSQL "who did it" is the login, whatever the client claims.
        return str(connection.exec_driver_sql("SELECT session_user").scalar_one())
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@fewer_collections()
def import_customers(
    engine: Engine,
    path: str | os.PathLike[str],
    *,
    mapping: Mapping[str, str] | None = None,
    churn_values: Iterable[str] | None = None,
    all_or_nothing: bool = False,
    errors_out: str | os.PathLike[str] | None = None,
    ignore: Collection[str] = (),
    delimiter: str | None = None,
    actor: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    today: dt.date | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ImportResult:
    """Import (upsert by external id) the customers in the CSV file at ``path``.

    ``mapping`` (customer field -> CSV column) overrides the automatic mapping; an empty column
    unmaps a field. ``churn_values`` lists the status values meaning churned (default yes, true,
    1, churned). Columns that are neither mapped nor in ``ignore`` are kept as attributes. Bad
    rows are reported (``errors_out`` gets the full CSV report) and skipped, or with
    ``all_or_nothing`` make the whole import fail. ``delimiter`` overrides the sniffed one;
    ``today`` fixes the date that "in the future" is judged against (tests). ``progress`` gets
    (fraction, text) with "Committing" just before COMMIT; ``cancel`` is checked between chunks
    and once more after the upsert.

    Commits once, at the end, with one audit entry; otherwise writes nothing. Raises
    ValidationError for an unreadable file or mapping, ImportRejected (a ValidationError with
    ``.result``) for an all-or-nothing import with bad rows, Cancelled on cancel and
    DatabaseUnavailable when the connection is lost.
    """
    started = time.perf_counter()
    source = Path(path)
    report = Throttled(progress)
    report(0.0, f"Reading {source.name}")
    fmt = detect_format(source, delimiter=delimiter)
    churned_values, active_values = status_reader(
        list(churn_values) if churn_values is not None else None
    )
    pipelined = True
    parallel = True
    while True:
        sink = _ErrorSink(Path(errors_out) if errors_out is not None else None)
        keep_report = False
        try:
            with CsvReader(source, fmt) as reader:
                raw_header = reader.read_header()
                if not raw_header:
                    raise ValidationError(f"{source.name} is empty: there is nothing to import.")
                header = _check_header(source, raw_header)
                resolved, problems = _resolve_mapping(header, mapping, ignore)
                if problems:
                    raise ValidationError(" ".join(problems))
                plan = _make_plan(
                    header, resolved, ignore, churned_values, active_values, fmt, today
                )
                result = _run(
                    engine,
                    source,
                    fmt,
                    reader,
                    plan,
                    sink,
                    all_or_nothing,
                    actor,
                    chunk_size,
                    report,
                    cancel,
                    started,
                    pipelined,
                    parallel,
                )
            keep_report = True
            result = _with_report(result, sink.finish(keep=True))
            report(1.0, "Import finished")
            return result
        except TypesChanged as exc:
            # Rolled back. Rare (a column numeric for a whole chunk, then text): read the file
            # again, saving only once every column's type is known.
            log.info("import: column %r holds text after numbers; reading again", exc.key)
            pipelined = False
            report = Throttled(progress)
            report(0.0, f"Reading {source.name} again: column {exc.key} holds text")
        except import_parallel.ReadAgain as exc:
            # Rolled back: read in one process what the workers could not (see import_parallel).
            log.info("import: reading %s in one process: %s", source.name, exc.reason)
            parallel = False
            report = Throttled(progress)
            report(0.0, f"Reading {source.name} again")
        except ImportRejected as exc:
            keep_report = True
            exc.result = _with_report(exc.result, sink.finish(keep=True))
            raise
        finally:
            if not keep_report:
                sink.finish(keep=False)


def _with_report(result: ImportResult, path: Path | None) -> ImportResult:
    return ImportResult(**{**result.__dict__, "errors_path": path})


def _make_plan(
    header: list[str],
    mapping: dict[str, str],
    ignore: Collection[str],
    churned_values: frozenset[str],
    active_values: frozenset[str],
    fmt: CsvFormat,
    today: dt.date | None,
) -> ImportPlan:
    index = {name: i for i, name in enumerate(header)}
    field_index = {f: index[c] for f, c in mapping.items()}
    mapped = set(mapping.values())
    attributes = [
        AttributeColumn(key=name, index=i, staged=f"a{k}")
        for k, (i, name) in enumerate(
            (i, name) for i, name in enumerate(header) if name not in mapped and name not in ignore
        )
    ]
    return ImportPlan(
        header=header,
        mapping=mapping,
        field_index=field_index,
        attributes=attributes,
        churned_values=churned_values,
        active_values=active_values,
        decimal_comma=fmt.delimiter != ",",
        derive_status="churned_at" in field_index and "status" not in field_index,
        delimiter=fmt.delimiter,
        today=(today or dt.date.today()),
    )


@dataclass
class _Chunk:
    """Rows read and validated, one way or the other: what the writing loop of ``_run`` needs.

    ``first_key`` is the row key of the first record (its row number when read in one process);
    the valid rows come as ``rows`` to stage, or as COPY CSV text from a worker process.
    """

    records: int
    first_key: int
    valid: int
    rejected: int
    errors: list[RowError]
    bytes_read: int
    rows: Iterable[tuple[Any, ...]] = ()
    text: str | None = None


def _sequential_chunks(
    reader: CsvReader,
    validator: _ChunkValidator,
    saver: ChunkSaver | None,
    chunk_size: int,
    total_bytes: int,
    cancel: threading.Event | None,
) -> Iterator[_Chunk]:
    """Read and validate the file in this process."""
    previous_end = reader.header_line
    for chunk in reader.chunks(chunk_size, cancel):
        if saver is not None and chunk.first_index == 0:
            saver.begin(len(chunk.records) * total_bytes // max(chunk.bytes_read, 1))
            validator.direct = saver.direct
        prepared = validator.prepare(chunk, previous_end)
        previous_end = chunk.end_lines[-1]
        yield _Chunk(
            len(chunk.records),
            chunk.first_index + 2,
            prepared.valid,
            prepared.rejected,
            prepared.errors,
            chunk.bytes_read,
            rows=prepared.rows,
        )


def _parallel_chunks(
    source: Path,
    fmt: CsvFormat,
    plan: ImportPlan,
    dialect: str,
    header_line: int,
    cancel: threading.Event | None,
) -> Iterator[_Chunk]:
    """Read and validate the file in worker processes (:mod:`import_parallel`), and put
    together here what only the whole file knows: duplicates, types, row and line numbers."""
    start = import_parallel.data_start(source, fmt, header_line)
    seen: set[str] = set()
    rows_before = 0
    lines_before = previous_end = header_line
    with import_parallel.ParallelReader(source, fmt, plan, dialect, start) as workers:
        for block in workers.blocks(cancel):
            if block.duplicates or not seen.isdisjoint(block.ids):
                raise import_parallel.ReadAgain("a customer ID appears more than once")
            seen.update(block.ids)
            for attribute, (allowed, had_value) in zip(plan.attributes, block.types, strict=True):
                attribute.candidates &= allowed
                attribute.seen_value = attribute.seen_value or had_value
            errors = import_parallel.absolute_errors(block, rows_before, lines_before, previous_end)
            if block.records:
                previous_end = lines_before + block.last_end_line
            lines_before += block.lines
            rows_before += block.records
            payload = block.payload
            yield _Chunk(
                block.records,
                block.first_key,
                block.valid,
                block.rejected,
                errors,
                block.end_byte,
                rows=payload if isinstance(payload, list) else (),
                text=payload if isinstance(payload, str) else None,
            )


def _run(
    engine: Engine,
    source: Path,
    fmt: CsvFormat,
    reader: CsvReader,
    plan: ImportPlan,
    sink: _ErrorSink,
    all_or_nothing: bool,
    actor: str | None,
    chunk_size: int,
    report: ProgressFn,
    cancel: threading.Event | None,
    started: float,
    pipelined: bool,
    parallel: bool,
) -> ImportResult:
    dialect = engine.dialect.name
    validator = _ChunkValidator(plan, dialect)
    total_bytes = max(fmt.size_bytes, 1)
    rows_read = 0
    staged = 0
    columns = plan.staging_columns()

    def result(inserted: int, updated: int, committed: bool) -> ImportResult:
        return ImportResult(
            file=str(source),
            format=fmt,
            mapping=dict(plan.mapping),
            attribute_types={a.key: a.type for a in plan.attributes},
            rows=rows_read,
            inserted=inserted,
            updated=updated,
            unchanged=staged - inserted - updated if committed else 0,
            rejected=sink.rejected_rows,
            error_count=sink.count,
            errors=tuple(sink.kept),
            errors_path=None,
            committed=committed,
            seconds=time.perf_counter() - started,
        )

    saved: tuple[int, int] | None = None
    try:
        with (
            engine.begin() as connection,
            _import_cache(connection),
            ExitStack() as bulk,
            WriteBehind[tuple[int, int]]("import-save") as pipeline,
        ):
            create_staging(connection, plan)
            saver = (
                ChunkSaver(connection, plan, columns, pipeline, bulk, cancel)
                if pipelined and dialect == "postgresql"
                else None
            )
            # The bar's share for reading, until the first saved chunk tells whether this is a
            # bulk load, which spends much of its time after reading.
            read_share = _READ_SHARE[dialect, False]
            commit_share = 0.01
            after_share = 0.0
            laid_out = False
            if parallel and import_parallel.eligible(fmt):
                chunks = _parallel_chunks(source, fmt, plan, dialect, reader.header_line, cancel)
            else:
                chunks = _sequential_chunks(
                    reader, validator, saver, chunk_size, total_bytes, cancel
                )
            with closing(chunks):
                for chunk in chunks:
                    rows_read += chunk.records
                    sink.add(chunk.errors, chunk.rejected)
                    if chunk.valid and not (all_or_nothing and sink.count):
                        estimate = rows_read * total_bytes // max(chunk.bytes_read, 1)
                        last_key = chunk.first_key + chunk.records - 1
                        if saver is None and chunk.text is not None:
                            write_staging_text(connection, columns, chunk.text)
                        elif saver is None:
                            write_staging(connection, columns, chunk.rows)
                        elif chunk.text is not None:
                            saver.save_text(chunk.text, chunk.first_key, last_key, estimate)
                        else:
                            saver.save(chunk.rows, chunk.first_key, last_key, estimate)
                        staged += chunk.valid
                        if not laid_out:
                            laid_out = True
                            bulk_load = (
                                saver.mostly_new
                                if saver is not None
                                else bulk_expected(connection, estimate)
                            )
                            read_share = _READ_SHARE[dialect, bulk_load]
                            commit_share = _COMMIT_SHARE.get((dialect, bulk_load), commit_share)
                            after_share = _AFTER_COMMIT_SHARE.get((dialect, bulk_load), after_share)
                    report(
                        read_share * chunk.bytes_read / total_bytes,
                        f"Reading {source.name}: {rows_read:,} rows "
                        f"({sink.rejected_rows:,} rejected)",
                    )
            check_cancel(cancel)
            writing = stage(report, read_share, 0.99 - commit_share - after_share)
            if saver is not None and not (all_or_nothing and sink.count):
                writing(0.0, f"Saving {staged:,} customers")
                saved = saver.finish(stage(writing, 0.05, 1.0))
            if rows_read == 0:
                raise ValidationError(
                    f"{source.name} has a header but no customer rows: there is nothing to import."
                )
            if all_or_nothing and sink.count:
                raise ImportRejected(
                    f"{sink.rejected_rows:,} of {counted(rows_read, 'row')} "
                    f"{'has' if sink.rejected_rows == 1 else 'have'} errors; nothing was "
                    "imported (all-or-nothing).",
                    result(0, 0, committed=False),
                )
            who = _actor(connection, actor)
            if saved is None:
                writing(0.0, f"Saving {staged:,} customers")
                saved = upsert(connection, plan, staged, writing, cancel)
            inserted, updated = saved
            check_cancel(cancel)
            outcome = result(inserted, updated, committed=True)
            audit.record(
                connection,
                actor=who,
                action="import",
                entity="customers",
                changes={
                    "file": source.name,
                    "rows": rows_read,
                    "inserted": inserted,
                    "updated": updated,
                    "unchanged": outcome.unchanged,
                    "rejected": sink.rejected_rows,
                    "encoding": fmt.encoding,
                    "mapping": plan.mapping,
                },
            )
            publish(connection, Changes(customers=True))
            report(1.0 - commit_share - after_share, f"Committing {staged:,} customers")
            check_cancel(cancel)
    except DBAPIError as exc:
        raise _database_error(engine, exc) from exc
    # A bulk load's own indexes, or those an earlier import left (then without a share).
    warnings = finish_indexes(engine, stage(report, 0.99 - after_share, 0.99))
    if inserted or updated:
        # After many rows, also mark their pages all-visible (PostgreSQL): counts of filtered
        # views read the filter indexes alone only then (migration 0009).
        refresh_statistics(engine, "customers", vacuum=inserted + updated >= BULK_LOAD_MIN_ROWS)
    return ImportResult(
        **{
            **outcome.__dict__,
            "warnings": warnings,
            "seconds": time.perf_counter() - started,
        }
    )


@contextmanager
def _import_cache(connection: Connection) -> Iterator[None]:
    """On SQLite, a page cache big enough for the customer indexes while the import runs.

    The default 2 MB cache makes every insert into the 14 indexes of a large table read and
    write pages through the OS; 256 MB keeps them in memory. Restored afterwards because the
    connection goes back to the pool.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    previous = int(connection.exec_driver_sql("PRAGMA cache_size").scalar_one())
    connection.exec_driver_sql(f"PRAGMA cache_size = {-SQLITE_IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {previous}")


def _database_error(engine: Engine, exc: DBAPIError) -> ChurndeskError:
    if exc.connection_invalidated or "connection" in str(exc.orig).lower():
        return DatabaseUnavailable(
            "The connection to the database was lost during the import; nothing was imported.",
            details=str(exc),
        )
    if "locked" in str(exc.orig).lower():
        return DatabaseUnavailable(
            "The database is busy with another program's changes; nothing was imported. "
            "Try again in a moment.",
            details=str(exc),
        )
    return ChurndeskError(
        "The database refused the import; nothing was imported.", details=str(exc)
    )

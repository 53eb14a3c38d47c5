"""Customers as pandas DataFrames for training and scoring, read in id-ordered chunks.

Attributes are pulled out of the JSON column by the database (``json_extract`` on SQLite,
``->>`` on PostgreSQL), one column per key the model needs, so Python never parses a million
JSON documents. Chunks are keyset pages on the primary key: constant cost at any depth.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine, func, select

from churndesk.db.models import Customer
from churndesk.progress import ProgressFn, check_cancel
from churndesk.services.customer_fields import FIELDS

if TYPE_CHECKING:
    import pandas as pd

# The id, every customer field as the import and the editor know them, and when it was created.
BASE_COLUMNS: tuple[str, ...] = ("id", *FIELDS, "created_at")
DATE_COLUMNS = ("signup_date",)
TIMESTAMP_COLUMNS = ("churned_at", "created_at")
DEFAULT_CHUNK = 100_000


def customer_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(Customer)) or 0)


def attribute_keys(engine: Engine, *, sample: int = 20_000) -> list[str]:
    """The attribute names found in the first ``sample`` customers, sorted."""
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            if engine.dialect.name == "postgresql":
                cursor.execute(
                    "SELECT DISTINCT jsonb_object_keys(attributes) FROM "
                    "(SELECT attributes FROM customers ORDER BY id LIMIT %s) AS s",
                    (sample,),
                )
            else:
                cursor.execute(
                    "SELECT DISTINCT j.key FROM (SELECT attributes FROM customers ORDER BY id "
                    "LIMIT ?) AS s, json_each(s.attributes) AS j",
                    (sample,),
                )
            return sorted(str(row[0]) for row in cursor.fetchall())
        finally:
            cursor.close()


def _select_sql(dialect: str, columns: Sequence[str], attributes: Sequence[str], chunk: int) -> str:
    if dialect == "postgresql":
        # COPY ... TO STDOUT (FORMAT csv): the chunk arrives as one block of CSV that pandas'
        # C parser reads, instead of 20-odd Python objects per row made by the driver and
        # collected into a frame; a third of the time at a million customers.
        extracted = ["attributes ->> %s" for _ in attributes]
        return (
            f"COPY (SELECT {', '.join([*columns, *extracted])} FROM customers WHERE id > %s "
            f"ORDER BY id LIMIT {int(chunk)}) TO STDOUT (FORMAT csv)"
        )
    extracted = ["json_extract(attributes, ?)" for _ in attributes]
    return (
        f"SELECT {', '.join([*columns, *extracted])} FROM customers WHERE id > ? "
        f"ORDER BY id LIMIT {int(chunk)}"
    )


def _copy_frame(raw: Any, sql: str, params: Sequence[Any], names: list[str]) -> pd.DataFrame:
    """One chunk read with COPY as CSV, every value text (or NaN for NULL), ids as integers.

    CSV cannot tell NULL from an empty string: both become NaN, which is what every consumer
    makes of a blank value anyway (``features.to_text``, the numeric check below).
    """
    import io

    import pandas as pd

    buffer = io.BytesIO()
    with raw.cursor() as cursor, cursor.copy(sql, params) as copy:
        for block in copy:
            buffer.write(block)
    if not buffer.tell():
        return pd.DataFrame(columns=names)
    buffer.seek(0)
    return pd.read_csv(
        buffer,
        header=None,
        names=names,
        dtype={name: (np.int64 if name == "id" else object) for name in names},
        keep_default_na=False,
        na_values=[""],
        encoding="utf-8",
    )


def _json_path(key: str) -> str:
    # SQLite JSON paths quote a key with double quotes; a quote inside the key is escaped.
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def iter_customer_frames(
    engine: Engine,
    attributes: Sequence[str],
    *,
    columns: Sequence[str] = BASE_COLUMNS,
    chunk_size: int = DEFAULT_CHUNK,
    total: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield every customer, ``chunk_size`` at a time in id order, with the named attributes.

    Frames have ``columns`` (a subset of BASE_COLUMNS; the id is always read) plus one column
    per attribute (missing → NaN/None). An attribute named like a base column is skipped (the
    base column wins). Does not write.
    """
    import pandas as pd

    dialect = engine.dialect.name
    base = ["id", *(c for c in BASE_COLUMNS if c in columns and c != "id")]
    wanted = [a for a in attributes if a not in BASE_COLUMNS]
    sql = _select_sql(dialect, base, wanted, chunk_size)
    names = base + wanted
    keys: list[Any] = wanted if dialect == "postgresql" else [_json_path(a) for a in wanted]
    last_id = 0
    done = 0
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        while True:
            check_cancel(cancel)
            if dialect == "postgresql":
                frame = _copy_frame(raw, sql, (*keys, last_id), names)
            else:
                cursor = raw.cursor()
                try:
                    cursor.execute(sql, (*keys, last_id))
                    frame = pd.DataFrame.from_records(cursor.fetchall(), columns=names)
                finally:
                    cursor.close()
            if frame.empty:
                return
            last_id = int(frame["id"].iloc[-1])
            done += len(frame)
            rows = len(frame)
            yield normalise_frame(frame, wanted)
            if progress is not None and total:
                progress(min(done / total, 1.0), "Reading customers")
            if rows < chunk_size:
                return


def normalise_frame(frame: pd.DataFrame, attributes: Sequence[str]) -> pd.DataFrame:
    """Same dtypes whichever database the rows came from: dates as datetimes, numbers as floats.

    PostgreSQL's ``->>`` returns every attribute as text, SQLite's ``json_extract`` keeps JSON
    numbers as numbers; an attribute column whose values all read as numbers becomes numeric
    on both, so a model trained on one database scores the same on the other.
    """
    import pandas as pd

    for column in DATE_COLUMNS:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], errors="coerce", format="ISO8601")
    for column in TIMESTAMP_COLUMNS:
        if column in frame:
            frame[column] = pd.to_datetime(
                frame[column], errors="coerce", utc=True, format="ISO8601"
            )
    if "monthly_revenue" in frame:
        frame["monthly_revenue"] = pd.to_numeric(frame["monthly_revenue"], errors="coerce")
    for column in attributes:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            continue
        if pd.api.types.is_numeric_dtype(values):
            frame[column] = values.astype(np.float64)
            continue
        if not _looks_numeric(values):
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        # Numeric if every value that is not blank parsed. Only the values that did not parse
        # are stripped (usually a few blanks): stripping every value cost as much as parsing.
        unparsed = values[numbers.isna() & values.notna()]
        if not (unparsed.astype(str).str.strip() == "").all():
            continue
        if len(unparsed) < values.notna().sum():
            frame[column] = numbers.astype(np.float64)
    return frame


def _looks_numeric(values: pd.Series, sample: int = 200) -> bool:
    """Cheap pre-check on a few values: most text attributes fail on the first one.

    Looks at the first values only (finding the distinct values of a whole chunk cost more
    than the check saves); a column that passes is still checked in full by the caller.
    """
    for value in values.iloc[: sample * 10].dropna().unique()[:sample]:
        text = str(value).strip()
        if not text:
            continue
        try:
            float(text)
        except ValueError:
            return False
    return True


def load_customer_frame(
    engine: Engine,
    attributes: Sequence[str] | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> pd.DataFrame:
    """Every customer in one frame (training needs them all at once)."""
    import pandas as pd

    keys = attribute_keys(engine) if attributes is None else list(attributes)
    total = customer_count(engine)
    frames = list(iter_customer_frames(engine, keys, total=total, progress=progress, cancel=cancel))
    if not frames:
        return pd.DataFrame(columns=list(BASE_COLUMNS) + keys)
    return pd.concat(frames, ignore_index=True)

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


def _select_sql(dialect: str, attributes: Sequence[str], chunk: int) -> str:
    if dialect == "postgresql":
        base = [
            "CAST(monthly_revenue AS DOUBLE PRECISION)" if c == "monthly_revenue" else c
            for c in BASE_COLUMNS
        ]
        extracted = ["attributes ->> %s" for _ in attributes]
        return (
            f"SELECT {', '.join(base + extracted)} FROM customers WHERE id > %s "
            f"ORDER BY id LIMIT {int(chunk)}"
        )
    extracted = ["json_extract(attributes, ?)" for _ in attributes]
    return (
        f"SELECT {', '.join(list(BASE_COLUMNS) + extracted)} FROM customers WHERE id > ? "
        f"ORDER BY id LIMIT {int(chunk)}"
    )


def _json_path(key: str) -> str:
    # SQLite JSON paths quote a key with double quotes; a quote inside the key is escaped.
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def iter_customer_frames(
    engine: Engine,
    attributes: Sequence[str],
    *,
    chunk_size: int = DEFAULT_CHUNK,
    total: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield every customer, ``chunk_size`` at a time in id order, with the named attributes.

    Frames have BASE_COLUMNS plus one column per attribute (missing → NaN/None). An attribute
    named like a base column is skipped (the base column wins). Does not write.
    """
    import pandas as pd

    dialect = engine.dialect.name
    wanted = [a for a in attributes if a not in BASE_COLUMNS]
    sql = _select_sql(dialect, wanted, chunk_size)
    names = list(BASE_COLUMNS) + wanted
    keys: list[Any] = wanted if dialect == "postgresql" else [_json_path(a) for a in wanted]
    last_id = 0
    done = 0
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        while True:
            check_cancel(cancel)
            cursor = raw.cursor()
            try:
                cursor.execute(sql, (*keys, last_id))
                rows = cursor.fetchall()
            finally:
                cursor.close()
            if not rows:
                return
            frame = pd.DataFrame.from_records(rows, columns=names)
            last_id = int(frame["id"].iloc[-1])
            done += len(frame)
            yield normalise_frame(frame, wanted)
            if progress is not None and total:
                progress(min(done / total, 1.0), "Reading customers")
            if len(rows) < chunk_size:
                return


def normalise_frame(frame: pd.DataFrame, attributes: Sequence[str]) -> pd.DataFrame:
    """Same dtypes whichever database the rows came from: dates as datetimes, numbers as floats.

    PostgreSQL's ``->>`` returns every attribute as text, SQLite's ``json_extract`` keeps JSON
    numbers as numbers; an attribute column whose values all read as numbers becomes numeric
    on both, so a model trained on one database scores the same on the other.
    """
    import pandas as pd

    for column in DATE_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], errors="coerce")
    for column in TIMESTAMP_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], errors="coerce", utc=True)
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
        present = values.notna() & (values.astype(str).str.strip() != "")
        if present.any() and numbers[present].notna().all():
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

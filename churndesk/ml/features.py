"""Feature schema inference and the deterministic customer-frame → model-matrix transform."""

# ruff: noqa: N803 (X is scikit-learn's name for the feature matrix)

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churndesk.errors import ValidationError

SCHEMA_VERSION = 1

#: Category that stands for every level not kept in the schema (rare or unseen at scoring).
OTHER = "other"
#: Category for a missing or blank value; kept as a level because missingness often carries signal.
MISSING = "(missing)"

LABEL_SOURCE = "status"
CHURNED = "churned"
ACTIVE = "active"

MIN_LABELLED = 400
MIN_PER_CLASS = 100

#: Never features: direct identifiers of a person or record.
IDENTIFIER_COLUMNS = ("external_id", "name", "email")
#: Never features: the label, its timestamp, our own scoring output and bookkeeping columns.
#: ``owner`` is here because analysts assign owners to customers flagged as at risk, so it
#: encodes the previous model's output; ``created_at`` is the import time, not customer data.
LEAK_COLUMNS = (
    "status",
    "churned_at",
    "risk_score",
    "risk_band",
    "revenue_at_risk",
    "risk_score_prev",
    "scored_at",
    "version",
    "updated_at",
    "id",
    "owner",
    "created_at",
)
#: Standard customer columns in the order their features appear (attributes follow, sorted).
STANDARD_FEATURE_COLUMNS = ("segment", "plan", "country", "monthly_revenue", "signup_date")
REVENUE_COLUMN = "monthly_revenue"
SIGNUP_COLUMN = "signup_date"

#: Schema inference looks at a seeded sample of at most this many customers.
INFER_SAMPLE_ROWS = 100_000
#: One-hot width and HGB's native categorical limit (255) both argue for a modest cap.
MAX_LEVELS = 30
#: A single column that separates the classes this well on its own is a leak in churn data
#: (e.g. a "cancellation reason" filled only for churned customers), not a lucky feature.
LEAK_AUC = 0.98

DAYS_PER_MONTH = 30.4375
TENURE_BUCKET_EDGES = (6.0, 12.0, 24.0, 48.0)
TENURE_BUCKET_LEVELS = ("0-6m", "6-12m", "12-24m", "24-48m", "48m+")

# "customer_id", "Account Number", "row_no"; and camelCase "customerID" / "CustomerId", but not
# "paid" or "valid"; a "zip code" of distinct integers is not a feature either.
_ID_WORD = re.compile(r"(?:^|[^a-z])(?:id|uuid|guid|key|number|no|num|code)$", re.IGNORECASE)
_ID_CAMEL = re.compile(r"[a-z](?:ID|Id|Number|No|Num|Key|Code|Uuid|UUID)$")
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class FeatureSpec:
    """One column of the model matrix: where it comes from and how it is computed.

    ``transform`` is one of ``number`` (numeric, numeric-looking text), ``bool`` (0/1),
    ``category`` (text with ``levels`` kept, the rest → ``other``), ``days_before_reference``
    (a date column as its age in days), ``tenure_months``, ``revenue_per_tenure_month`` and
    ``tenure_bucket`` (the three derived features).
    """

    name: str
    kind: str  # "numeric" or "categorical"
    transform: str
    sources: tuple[str, ...]
    levels: tuple[str, ...] = ()

    @property
    def derived(self) -> bool:
        return self.transform in ("tenure_months", "revenue_per_tenure_month", "tenure_bucket")

    @property
    def categories(self) -> tuple[str, ...]:
        """Every value a categorical feature can take in the model matrix, in code order."""
        return (*self.levels, OTHER, MISSING) if self.kind == "categorical" else ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "transform": self.transform,
            "sources": list(self.sources),
            "levels": list(self.levels),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            transform=str(data["transform"]),
            sources=tuple(str(s) for s in data["sources"]),
            levels=tuple(str(v) for v in data.get("levels", ())),
        )


@dataclass(frozen=True)
class FeatureSchema:
    """What the model expects: its features in order, their sources and levels, and exclusions."""

    features: tuple[FeatureSpec, ...]
    reference_date: str | None  # ISO date that date-derived features are measured against
    excluded: tuple[tuple[str, str], ...] = ()  # (column, reason), for the UI to explain
    label_source: str = LABEL_SOURCE
    version: int = SCHEMA_VERSION

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def numeric(self) -> tuple[FeatureSpec, ...]:
        return tuple(f for f in self.features if f.kind == "numeric")

    @property
    def categorical(self) -> tuple[FeatureSpec, ...]:
        return tuple(f for f in self.features if f.kind == "categorical")

    @property
    def derived(self) -> tuple[FeatureSpec, ...]:
        return tuple(f for f in self.features if f.derived)

    @property
    def source_columns(self) -> tuple[str, ...]:
        """The customer-frame columns a frame to be scored must have."""
        seen: dict[str, None] = {}
        for spec in self.features:
            for source in spec.sources:
                seen.setdefault(source, None)
        return tuple(seen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "label_source": self.label_source,
            "reference_date": self.reference_date,
            "features": [f.to_dict() for f in self.features],
            "excluded": [[c, r] for c, r in self.excluded],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSchema:
        version = int(data.get("version", 0))
        if version != SCHEMA_VERSION:
            raise ValidationError(
                f"This model's feature schema has version {version}; this program reads "
                f"version {SCHEMA_VERSION}. Retrain the model."
            )
        return cls(
            features=tuple(FeatureSpec.from_dict(f) for f in data["features"]),
            reference_date=data.get("reference_date"),
            excluded=tuple((str(c), str(r)) for c, r in data.get("excluded", ())),
            label_source=str(data.get("label_source", LABEL_SOURCE)),
            version=version,
        )

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON form; equal schemas have equal fingerprints."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @classmethod
    def from_matrix(cls, X: pd.DataFrame) -> FeatureSchema:
        """A minimal schema describing an existing model matrix (categoricals from dtypes)."""
        specs = []
        for name in X.columns:
            dtype = X[name].dtype
            if isinstance(dtype, pd.CategoricalDtype):
                levels = tuple(str(c) for c in dtype.categories if c not in (OTHER, MISSING))
                specs.append(
                    FeatureSpec(str(name), "categorical", "category", (str(name),), levels)
                )
            else:
                specs.append(FeatureSpec(str(name), "numeric", "number", (str(name),)))
        return cls(features=tuple(specs), reference_date=None)


# --------------------------------------------------------------------------- value coercion


_NUMERIC_KINDS = ("integer", "floating", "mixed-integer-float", "decimal")
_DATE_KINDS = ("datetime", "datetime64", "date")


def to_text(series: pd.Series) -> pd.Series:
    """Stripped text of a column (pandas string dtype); missing and blank values are NA.

    CSVs and JSON attributes use "" or " " for missing (Telco's TotalCharges), so blanks count
    as missing. Vectorised: no Python call per value, which matters at a million rows.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    # Strip each distinct value once, not each row: churn attributes have a handful of levels,
    # and stripping a million strings was the largest single cost of scoring a million rows.
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    levels = pd.Series(uniques, dtype=object).astype("str").str.strip()
    values = np.append(levels.mask(levels == "").to_numpy(dtype=object), np.nan)
    # Code -1 (missing) picks the NaN appended at the end.
    return pd.Series(values[codes], index=series.index, dtype=object).astype("str")


def _object_kind(series: pd.Series) -> str:
    """pandas' C-level guess of what an object column holds ("string", "boolean", ...)."""
    return str(pd.api.types.infer_dtype(series, skipna=True))


def to_numeric(series: pd.Series) -> np.ndarray:
    """Float64 values of a numeric, bool or numeric-looking column; anything else → NaN.

    Text "true"/"false" become 1/0 so a yes/no flag exported as text stays usable.
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return series.astype("float64").to_numpy()
    if pd.api.types.is_numeric_dtype(dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return np.full(len(series), np.nan)
    if pd.api.types.is_object_dtype(dtype) and _object_kind(series) in (
        *_NUMERIC_KINDS,
        "boolean",
        "empty",
    ):
        return np.array(pd.to_numeric(series, errors="coerce"), dtype="float64")
    text = to_text(series)
    values = np.array(pd.to_numeric(text, errors="coerce"), dtype="float64")
    lowered = text.str.lower()
    values[(lowered == "true").to_numpy(dtype=bool, na_value=False)] = 1.0
    values[(lowered == "false").to_numpy(dtype=bool, na_value=False)] = 0.0
    return values


def to_datetime(series: pd.Series) -> pd.Series:
    """Datetimes of a date column (tz dropped) with unparseable values as NaT."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = series
    elif pd.api.types.is_object_dtype(series.dtype) and _object_kind(series) in _DATE_KINDS:
        values = pd.to_datetime(series, errors="coerce", utc=True)
    else:
        # ISO 8601 text only: guessing day/month order silently would corrupt dates.
        values = pd.to_datetime(to_text(series), format="ISO8601", errors="coerce", utc=True)
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.astype("datetime64[ns]")


def _classify(column: pd.Series) -> str:
    """What a column holds: ``empty``, ``date``, ``bool``, ``numeric`` or ``text``."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        if not column.notna().any():
            return "empty"
        return "date" if pd.api.types.is_datetime64_any_dtype(dtype) else "numeric"
    if pd.api.types.is_object_dtype(dtype):
        kind = _object_kind(column)
        if kind == "empty":
            return "empty"
        if kind == "boolean":
            return "bool"
        if kind in _NUMERIC_KINDS:
            return "numeric"
        if kind in _DATE_KINDS:
            return "date"
    present = to_text(column).dropna()
    if present.empty:
        return "empty"
    if present.str.lower().isin(["true", "false"]).all():
        return "bool"
    # Look at the first values before parsing every one: words rarely need the full pass.
    head = present.iloc[:1000]
    if (
        pd.to_numeric(head, errors="coerce").notna().mean() >= 0.95
        and pd.to_numeric(present, errors="coerce").notna().mean() >= 0.95
    ):
        return "numeric"
    if (
        head.str.match(_DATE_LIKE.pattern).mean() >= 0.95
        and to_datetime(present).notna().mean() >= 0.95
    ):
        return "date"
    return "text"


# --------------------------------------------------------------------------- labels


def label_from(frame: pd.DataFrame) -> np.ndarray:
    """The churn label (1 = churned, 0 = active) as int8, from the ``status`` column.

    Raises ValidationError if the column is missing or holds any other value.
    """
    if LABEL_SOURCE not in frame.columns:
        raise ValidationError(
            "The customer data has no status column, so there is nothing to learn from.",
            field_errors={LABEL_SOURCE: "missing"},
        )
    status = to_text(frame[LABEL_SOURCE]).str.lower()
    bad = status[~status.isin([CHURNED, ACTIVE])]
    if len(bad):
        examples = ", ".join(sorted({str(v) for v in bad.head(50)})[:5])
        raise ValidationError(
            f"{len(bad)} customers have a status other than 'active' or 'churned' "
            f"(e.g. {examples}); fix them before training.",
            field_errors={LABEL_SOURCE: "unknown value"},
        )
    return (status == CHURNED).to_numpy().astype(np.int8)


def check_training_data(y: np.ndarray) -> None:
    """Raise ValidationError unless there are enough labelled customers of both classes."""
    labels = np.asarray(y)
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValidationError("Churn labels must be 1 (churned) or 0 (active).")
    n = int(labels.size)
    if n < MIN_LABELLED:
        raise ValidationError(
            f"Training needs at least {MIN_LABELLED} customers with a known status; "
            f"only {n} are available.",
            field_errors={LABEL_SOURCE: "too few labelled customers"},
        )
    churned = int(np.count_nonzero(labels == 1))
    active = n - churned
    if churned < MIN_PER_CLASS or active < MIN_PER_CLASS:
        raise ValidationError(
            f"Training needs at least {MIN_PER_CLASS} churned and {MIN_PER_CLASS} active "
            f"customers; the data has {churned} churned and {active} active.",
            field_errors={LABEL_SOURCE: "too few of one class"},
        )


# --------------------------------------------------------------------------- schema inference


def _single_column_auc(values: np.ndarray, y: np.ndarray) -> float:
    """Rank AUC of one score column, symmetric (max(auc, 1 - auc)); 0.5 if undefined."""
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return 0.5
    ranks = pd.Series(values).rank(method="average").to_numpy()
    auc = (ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    return float(max(auc, 1.0 - auc))


def _leak_auc(spec: FeatureSpec, column: pd.Series, y: np.ndarray) -> float:
    """How well this feature alone separates churned from active customers."""
    if spec.kind == "categorical":
        codes = np.asarray(column.cat.codes)
        # In-sample churn rate per level; levels are already capped to frequent ones.
        rates = pd.Series(y, dtype="float64").groupby(codes).mean()
        return _single_column_auc(rates.reindex(codes).to_numpy(), y)
    values = np.asarray(column, dtype="float64")
    missing = np.isnan(values)
    scores = [_single_column_auc(missing.astype("float64"), y)]
    if (~missing).any():
        low = np.nanmin(values) - 1.0
        scores.append(_single_column_auc(np.where(missing, low, values), y))
    return max(scores)


def _category_levels(text: pd.Series) -> tuple[str, ...]:
    counts = text.value_counts(dropna=True)
    min_count = max(5, math.ceil(0.005 * len(text)))
    kept = counts[counts >= min_count]
    # Deterministic order: most frequent first, ties by name.
    ordered = sorted(kept.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    return tuple(str(k) for k, _ in ordered[:MAX_LEVELS] if str(k) not in (OTHER, MISSING))


def _looks_like_identifier(name: str, values: np.ndarray) -> bool:
    """Integer, (almost) all distinct, and named like an id or laid out as a row counter."""
    present = values[~np.isnan(values)]
    if present.size < 20 or not np.all(np.mod(present, 1) == 0):
        return False
    distinct = np.unique(present)
    if distinct.size < 0.99 * present.size:
        return False
    steps = np.diff(distinct)
    named_like_id = bool(_ID_WORD.search(name.strip()) or _ID_CAMEL.search(name.strip()))
    return named_like_id or bool(np.all(steps == steps[0]))


def _unique_name(base: str, taken: set[str]) -> str:
    name = base
    while name in taken:
        name = f"{name}_derived"
    taken.add(name)
    return name


def infer_schema(
    frame: pd.DataFrame, *, reference_date: str | pd.Timestamp | None = None
) -> FeatureSchema:
    """Infer the feature schema from a training frame (one row per customer).

    Identifier-like, constant, all-missing and leaky columns are excluded with a reason.
    A column is leaky if it is the label or its timestamp, one of our own scoring or
    bookkeeping columns, its name mentions churn, or it alone separates the classes
    (single-column AUC >= 0.98) when ``status`` is present. Types, levels and leaks are
    judged on a seeded sample of at most 100,000 rows. ``reference_date`` defaults to the
    latest date in the frame's date columns (or ``churned_at``, else ``created_at``).
    Raises ValidationError if no usable feature is left.
    """
    full_frame = frame
    if len(frame) > INFER_SAMPLE_ROWS:
        # Types, levels and leaks are as clear in a 100,000-row sample as in a million rows,
        # at a tenth of the time; the seeded sample keeps the schema deterministic.
        rows = np.random.default_rng(0).choice(len(frame), INFER_SAMPLE_ROWS, replace=False)
        frame = frame.iloc[np.sort(rows)]
    y = None
    if LABEL_SOURCE in frame.columns:
        try:
            y = label_from(frame)
        except ValidationError:
            y = None  # label problems are reported by the training call, not here
    excluded: list[tuple[str, str]] = []
    specs: list[FeatureSpec] = []
    date_columns: list[str] = []

    standard = [c for c in STANDARD_FEATURE_COLUMNS if c in frame.columns]
    attributes = sorted(
        (str(c) for c in frame.columns if c not in STANDARD_FEATURE_COLUMNS),
        key=lambda c: (c.lower(), c),
    )
    taken: set[str] = {str(c) for c in frame.columns}
    for name in [*standard, *attributes]:
        if name in IDENTIFIER_COLUMNS:
            excluded.append((name, "identifier"))
            continue
        if name in LEAK_COLUMNS:
            excluded.append((name, "label, score or bookkeeping column (would leak)"))
            continue
        if "churn" in name.lower():
            excluded.append((name, "name mentions churn (would leak)"))
            continue
        column = frame[name]
        kind = _classify(column)
        if kind == "empty":
            excluded.append((name, "all values missing"))
        elif kind == "date":
            date_columns.append(name)
        elif kind in ("bool", "numeric"):
            values = to_numeric(column)
            present = values[~np.isnan(values)]
            if present.size == values.size and np.all(present == present[0]):
                excluded.append((name, "constant"))
            elif (
                kind == "numeric"
                and name != REVENUE_COLUMN
                and _looks_like_identifier(name, values)
            ):
                excluded.append((name, "identifier-like (distinct integers)"))
            else:
                specs.append(
                    FeatureSpec(name, "numeric", kind if kind == "bool" else "number", (name,))
                )
        else:
            text = to_text(column)
            present_text = text.dropna()
            distinct = present_text.nunique()
            if distinct <= 1 and len(present_text) == len(text):
                excluded.append((name, "constant"))
            elif distinct > max(50, 0.5 * len(present_text)):
                excluded.append((name, "identifier-like (nearly every value distinct)"))
            elif not (levels := _category_levels(text)):
                excluded.append((name, "every value is rare"))
            else:
                specs.append(FeatureSpec(name, "categorical", "category", (name,), levels))

    ref = _reference_date(full_frame, date_columns, reference_date)
    if ref is not None:
        for name in date_columns:
            if name == SIGNUP_COLUMN:
                continue
            feature = _unique_name(f"{name}_days_before_reference", taken)
            specs.append(FeatureSpec(feature, "numeric", "days_before_reference", (name,)))
        if SIGNUP_COLUMN in date_columns:
            tenure = _unique_name("tenure_months", taken)
            specs.append(FeatureSpec(tenure, "numeric", "tenure_months", (SIGNUP_COLUMN,)))
            if any(s.name == REVENUE_COLUMN for s in specs):
                specs.append(
                    FeatureSpec(
                        _unique_name("revenue_per_tenure_month", taken),
                        "numeric",
                        "revenue_per_tenure_month",
                        (REVENUE_COLUMN, SIGNUP_COLUMN),
                    )
                )
            specs.append(
                FeatureSpec(
                    _unique_name("tenure_bucket", taken),
                    "categorical",
                    "tenure_bucket",
                    (SIGNUP_COLUMN,),
                    TENURE_BUCKET_LEVELS,
                )
            )
    elif date_columns:
        excluded.extend((c, "no reference date for date features") for c in date_columns)

    schema = FeatureSchema(
        features=tuple(specs),
        reference_date=None if ref is None else ref.date().isoformat(),
        excluded=tuple(excluded),
    )
    if y is not None and specs:
        schema = _drop_leaks(frame, schema, y)
    schema = _drop_constant_outputs(frame, schema)
    if not schema.features:
        raise ValidationError(
            "None of the customer columns can be used as a model feature "
            "(all are identifiers, constant, empty or leak the outcome).",
            details="; ".join(f"{c}: {r}" for c, r in schema.excluded),
        )
    return schema


def _reference_date(
    frame: pd.DataFrame, date_columns: Sequence[str], given: str | pd.Timestamp | None
) -> pd.Timestamp | None:
    if given is not None:
        return pd.Timestamp(given).normalize()
    # The latest date in the data approximates when the snapshot was taken; churned_at and
    # created_at only set this one number, never a per-customer value.
    candidates = [*date_columns, "churned_at"]
    latest: list[pd.Timestamp] = []
    for name in candidates:
        if name in frame.columns:
            value = to_datetime(frame[name]).max()
            if pd.notna(value):
                latest.append(value)
    if not latest and "created_at" in frame.columns:
        value = to_datetime(frame["created_at"]).max()
        if pd.notna(value):
            latest.append(value)
    return max(latest).normalize() if latest else None


def _drop_leaks(frame: pd.DataFrame, schema: FeatureSchema, y: np.ndarray) -> FeatureSchema:
    matrix = build_features(frame, schema)
    keep: list[FeatureSpec] = []
    excluded = list(schema.excluded)
    leaked_sources: set[str] = set()
    for spec in schema.features:
        if spec.derived:
            continue
        auc = _leak_auc(spec, matrix[spec.name], y)
        if auc >= LEAK_AUC:
            excluded.append((spec.sources[0], f"alone separates churned customers (AUC {auc:.3f})"))
            leaked_sources.update(spec.sources)
    for spec in schema.features:
        if not leaked_sources.intersection(spec.sources):
            keep.append(spec)
    return FeatureSchema(tuple(keep), schema.reference_date, tuple(excluded))


def _drop_constant_outputs(frame: pd.DataFrame, schema: FeatureSchema) -> FeatureSchema:
    """Derived and date features can still come out constant or empty; drop those."""
    if not schema.features:
        return schema
    matrix = build_features(frame, schema)
    keep: list[FeatureSpec] = []
    excluded = list(schema.excluded)
    for spec in schema.features:
        column = matrix[spec.name]
        if spec.kind == "numeric":
            values = column.to_numpy(dtype="float64")
            if np.isnan(values).all():
                excluded.append((spec.name, "all values missing"))
                continue
            if np.nanmin(values) == np.nanmax(values) and not np.isnan(values).any():
                excluded.append((spec.name, "constant"))
                continue
        elif column.nunique(dropna=False) <= 1:
            excluded.append((spec.name, "constant"))
            continue
        keep.append(spec)
    return FeatureSchema(tuple(keep), schema.reference_date, tuple(excluded))


# --------------------------------------------------------------------------- model matrix


def build_features(
    frame: pd.DataFrame, schema: FeatureSchema, *, as_of: str | pd.Timestamp | None = None
) -> pd.DataFrame:
    """The model matrix for ``frame``: one column per schema feature, in schema order.

    Numeric features are float64 (missing → NaN); categorical features are pandas
    Categoricals whose categories are the schema levels plus ``other`` and ``(missing)``, so
    unseen values become ``other``. Date features are measured against ``as_of`` (default:
    the schema's reference date). The index is kept. Raises ValidationError naming the
    columns the frame lacks.
    """
    missing = [c for c in schema.source_columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            "The customer data lacks columns this model needs: " + ", ".join(missing) + ".",
            field_errors={c: "missing column" for c in missing},
        )
    reference = as_of if as_of is not None else schema.reference_date
    ref = _point_in_time(frame, None if reference is None else pd.Timestamp(reference).normalize())
    columns: dict[str, Any] = {}
    tenure_cache: dict[str, np.ndarray] = {}

    def tenure_of(source: str) -> np.ndarray:
        if source not in tenure_cache:
            tenure_cache[source] = _months_before(frame[source], ref)
        return tenure_cache[source]

    for spec in schema.features:
        if spec.transform in ("number", "bool"):
            columns[spec.name] = to_numeric(frame[spec.sources[0]])
        elif spec.transform == "category":
            columns[spec.name] = _categorical(to_text(frame[spec.sources[0]]), spec)
        elif spec.transform == "days_before_reference":
            columns[spec.name] = _months_before(frame[spec.sources[0]], ref) * DAYS_PER_MONTH
        elif spec.transform == "tenure_months":
            columns[spec.name] = np.clip(tenure_of(spec.sources[0]), 0.0, None)
        elif spec.transform == "revenue_per_tenure_month":
            revenue = to_numeric(frame[spec.sources[0]])
            tenure = np.clip(tenure_of(spec.sources[1]), 0.0, None)
            # A customer in their first month has paid about one month, hence the floor of 1.
            columns[spec.name] = revenue / np.maximum(tenure, 1.0)
        elif spec.transform == "tenure_bucket":
            tenure = np.clip(tenure_of(spec.sources[0]), 0.0, None)
            codes = np.searchsorted(np.asarray(TENURE_BUCKET_EDGES), tenure, side="right")
            text = pd.Series(np.asarray(spec.levels, dtype=object)[np.minimum(codes, 4)])
            text[np.isnan(tenure)] = np.nan
            columns[spec.name] = _categorical(text, spec)
        else:
            raise ValidationError(f"Unknown feature transform {spec.transform!r} in the schema.")
    return pd.DataFrame(columns, index=frame.index, columns=list(schema.feature_names))


def _point_in_time(frame: pd.DataFrame, ref: pd.Timestamp | None) -> pd.Series | None:
    """Per customer, the date their date features are measured at.

    A customer who left stopped ageing when they left: measured at the reference date, their
    signup-based tenure would keep growing while a stored tenure stays frozen, and the gap
    between the two would tell the model who churned and how long ago (the synthetic demo
    reached ROC-AUC 0.97 that way). So churned customers are measured at their churn date.
    """
    if ref is None:
        return None
    at = pd.Series(ref, index=frame.index, dtype="datetime64[ns]")
    if "churned_at" in frame.columns:
        left = to_datetime(frame["churned_at"]).dt.normalize()
        earlier = left.notna() & (left < ref)
        at = at.mask(earlier, left)
    return at


def _months_before(column: pd.Series, ref: pd.Series | None) -> np.ndarray:
    if ref is None:
        return np.full(len(column), np.nan)
    dates = to_datetime(column)
    days = (ref - dates).dt.total_seconds().to_numpy(dtype="float64", na_value=np.nan) / 86400.0
    return days / DAYS_PER_MONTH


def _categorical(text: pd.Series, spec: FeatureSpec) -> pd.Categorical:
    categories = list(spec.categories)
    missing = np.asarray(pd.isna(text), dtype=bool)
    codes = pd.Index(categories).get_indexer(text).astype(np.int16)
    codes[(codes < 0) & ~missing] = categories.index(OTHER)
    codes[missing] = categories.index(MISSING)
    return pd.Categorical.from_codes(codes, categories=categories)


__all__ = [
    "MISSING",
    "OTHER",
    "FeatureSchema",
    "FeatureSpec",
    "build_features",
    "check_training_data",
    "infer_schema",
    "label_from",
]

"""Vectorised scoring maths: probabilities, 0–100 risk scores, bands and top drivers."""

# ruff: noqa: N803 (X is scikit-learn's name for the feature matrix)

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churndesk.errors import ValidationError
from churndesk.ml.threads import limited_threads

BAND_NAMES = ("low", "medium", "high", "critical")
#: low < 40 <= medium < 60 <= high < 80 <= critical
DEFAULT_BAND_CUTOFFS = (40.0, 60.0, 80.0)
PROBABILITY_CHUNK_ROWS = 200_000
DRIVER_CHUNK_ROWS = 100_000  # 100k × 30 columns × float32 ≈ 12 MB of contributions at once


def probabilities(
    model: Any,
    X: pd.DataFrame,
    *,
    chunk_rows: int = PROBABILITY_CHUNK_ROWS,
    threads: int | None = None,
) -> np.ndarray:
    """Churn probability of each row of the model matrix ``X`` (float64), in chunks.

    ``model`` is a :class:`~churndesk.ml.train.TrainedModel` or a fitted estimator;
    ``threads`` caps gradient boosting's OpenMP threads (default: all cores but one).
    """
    # Imported here: scikit-learn takes over a second to import, and this module does not need
    # it for bands and drivers.
    from churndesk.ml.fast_transform import predict_proba

    estimator = getattr(model, "estimator", model)
    out = np.empty(len(X), dtype="float64")
    with limited_threads(threads):
        for start in range(0, len(X), chunk_rows):
            part = X.iloc[start : start + chunk_rows]
            out[start : start + len(part)] = predict_proba(estimator, part)[:, 1]
    return out


def risk_score(p: np.ndarray | Sequence[float]) -> np.ndarray:
    """Risk score 0–100 (float64, one decimal) from churn probabilities; NaN stays NaN."""
    values = np.asarray(p, dtype="float64")
    # One decimal keeps 1,001 distinct scores, so ranking a million customers stays meaningful.
    return np.round(np.clip(values, 0.0, 1.0) * 100.0, 1)


def band(
    score: np.ndarray | Sequence[float],
    cutoffs: Sequence[float] = DEFAULT_BAND_CUTOFFS,
    names: Sequence[str] = BAND_NAMES,
) -> np.ndarray:
    """Band name of each score (object array; None for NaN). A score equal to a cut-off
    belongs to the higher band. Raises ValidationError for unsorted or mismatched cut-offs.
    """
    edges = np.asarray(cutoffs, dtype="float64")
    if len(names) != edges.size + 1:
        raise ValidationError(f"{len(names)} band names need {len(names) - 1} cut-offs.")
    if edges.size and np.any(np.diff(edges) <= 0):
        raise ValidationError("Band cut-offs must be strictly increasing.")
    values = np.asarray(score, dtype="float64")
    labels = np.asarray([*names, None], dtype=object)
    index = np.searchsorted(edges, values, side="right")
    index[np.isnan(values)] = len(names)
    return labels[index]


@dataclass(frozen=True)
class Drivers:
    """The k strongest drivers of each customer's score.

    ``index`` (rows × k, int16) points into ``features``; ``contribution`` (rows × k,
    float32) is the change in log-odds versus an average training customer: positive raises
    the risk, negative lowers it. Drivers are ordered by magnitude, largest first.
    """

    features: tuple[str, ...]
    index: np.ndarray
    contribution: np.ndarray
    method: str

    @property
    def names(self) -> np.ndarray:
        return np.asarray(self.features, dtype=object)[self.index]

    @property
    def direction(self) -> np.ndarray:
        """+1 raises risk, -1 lowers it (0: no effect)."""
        return np.sign(self.contribution).astype(np.int8)

    @property
    def magnitude(self) -> np.ndarray:
        return np.abs(self.contribution)

    def row(self, i: int) -> list[dict[str, Any]]:
        """One customer's drivers as JSON-ready dicts: feature, direction ("+"/"−"), magnitude."""
        return [
            {
                "feature": self.features[int(j)],
                "direction": "+" if c > 0 else ("-" if c < 0 else "0"),
                "magnitude": round(float(abs(c)), 4),
            }
            for j, c in zip(self.index[i], self.contribution[i], strict=True)
        ]


def top_drivers(
    model: Any, X: pd.DataFrame, k: int = 3, *, chunk_rows: int = DRIVER_CHUNK_ROWS
) -> Drivers:
    """The k input columns that move each customer's log-odds the most, with direction.

    Method: at training time each input column j gets an additive lookup table ``c_j(v)``
    (see :func:`churndesk.ml.explain.fit_driver_tables`); here a customer's contribution of
    column j is ``c_j(x_j)``, computed for all rows and columns with vectorised NumPy lookups
    (``take`` for categories, ``interp`` or a line for numbers) in chunks, followed by an
    ``argpartition`` for the top k. No model prediction is made: 1,000,000 Telco-shaped rows
    took 0.6–1.8 s on a shared 2-core machine (k=3, 19 columns).

    - Logistic regression (uncalibrated): exact. ``c_j`` is coefficient × (encoded x − training
      mean) summed over the column's encoded pieces (one-hot levels, missing flag), so the
      contributions of all columns add up to the log-odds minus a constant.
    - Gradient boosting or calibrated models: an approximation. ``c_j`` is the centred
      partial dependence of the log-odds on column j (averaged over 200 training customers,
      linearly interpolated between up to 33 quantile grid points), which ignores
      interactions between columns.

    Columns are reported by their model-matrix names, i.e. the original customer columns
    (or a derived feature such as ``tenure_months``), never one-hot pieces.
    """
    tables = model.drivers
    features = tables.features
    missing = [f for f in features if f not in X.columns]
    if missing:
        raise ValidationError("The data lacks columns this model needs: " + ", ".join(missing))
    width = len(features)
    k = max(0, min(k, width))
    index = np.empty((len(X), k), dtype=np.int16)
    contribution = np.empty((len(X), k), dtype=np.float32)
    for start in range(0, len(X) if k else 0, chunk_rows):
        part = X.iloc[start : start + chunk_rows]
        values = tables.contributions(part)
        strength = np.abs(values)
        if k < width:
            top = np.argpartition(-strength, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(width), (len(part), width))
        order = np.argsort(-np.take_along_axis(strength, top, axis=1), axis=1, kind="stable")
        chosen = np.take_along_axis(top, order, axis=1)
        stop = start + len(part)
        index[start:stop] = chosen
        contribution[start:stop] = np.take_along_axis(values, chosen, axis=1)
    return Drivers(features, index, contribution, tables.method)


__all__ = [
    "BAND_NAMES",
    "DEFAULT_BAND_CUTOFFS",
    "Drivers",
    "band",
    "probabilities",
    "risk_score",
    "top_drivers",
]

"""Out-of-fold evaluation of churn probabilities: metrics, curves and threshold choice."""

# ruff: noqa: N803 (X is scikit-learn's name for the feature matrix)

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    roc_curve,
)
from sklearn.model_selection import StratifiedKFold

from churndesk.progress import ProgressFn, check_cancel, no_progress

CALIBRATION_BINS = 10
CURVE_POINTS = 101  # ROC and cost curves are downsampled to at most this many points


@dataclass(frozen=True)
class CostInputs:
    """What a retention offer costs and earns, for the business threshold."""

    offer_cost: float = 10.0  # currency per customer contacted
    success_rate: float = 0.3  # share of would-be churners the offer keeps
    horizon_months: float = 12.0  # months of revenue a kept customer is worth

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class ThresholdChoice:
    """A probability cut-off (customers with p >= threshold are flagged) and why it was chosen."""

    rule: str  # "f1" or "cost"
    threshold: float
    precision: float
    recall: float
    f1: float
    flagged: int
    expected_value: float | None = None  # only for the cost rule


@dataclass(frozen=True)
class Evaluation:
    """Cross-validated quality of one model, JSON-serialisable through :meth:`to_dict`."""

    n: int
    n_churned: int
    prevalence: float
    folds: int
    roc_auc: float  # mean over folds
    roc_auc_std: float
    roc_auc_folds: tuple[float, ...]
    roc_auc_pooled: float  # over all out-of-fold predictions at once
    pr_auc: float
    brier: float
    log_loss: float
    calibration: tuple[
        dict[str, float | None], ...
    ]  # bin_low/high, mean_predicted, observed, count
    deciles: tuple[dict[str, float], ...]  # decile, customers, churned, rate, lift, gain
    roc_points: tuple[tuple[float, float, float], ...]  # (fpr, tpr, threshold)
    threshold_f1: ThresholdChoice
    threshold_cost: ThresholdChoice | None
    cost_curve: tuple[tuple[float, float], ...]  # (threshold, expected value)
    cost_inputs: CostInputs
    chosen: str  # which rule gives :attr:`threshold`
    confusion: dict[str, int]  # tn, fp, fn, tp at the chosen threshold

    @property
    def threshold(self) -> float:
        if self.chosen == "cost" and self.threshold_cost is not None:
            return self.threshold_cost.threshold
        return self.threshold_f1.threshold

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["threshold"] = self.threshold
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        fields = dict(data)
        fields.pop("threshold", None)
        fields["roc_auc_folds"] = tuple(fields["roc_auc_folds"])
        fields["calibration"] = tuple(dict(b) for b in fields["calibration"])
        fields["deciles"] = tuple(dict(d) for d in fields["deciles"])
        fields["roc_points"] = tuple(tuple(p) for p in fields["roc_points"])
        fields["cost_curve"] = tuple(tuple(p) for p in fields["cost_curve"])
        fields["threshold_f1"] = ThresholdChoice(**fields["threshold_f1"])
        cost = fields["threshold_cost"]
        fields["threshold_cost"] = None if cost is None else ThresholdChoice(**cost)
        fields["cost_inputs"] = CostInputs(**fields["cost_inputs"])
        fields["confusion"] = {k: int(v) for k, v in fields["confusion"].items()}
        return cls(**fields)


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold probabilities and what the last fold left behind for permutation importance."""

    probabilities: np.ndarray
    fold_roc_auc: tuple[float, ...]
    last_model: Any  # fitted on every fold but the last
    last_validation: np.ndarray  # row positions of the last fold


def stratified_folds(y: np.ndarray, folds: int, random_state: int) -> list[np.ndarray]:
    """Validation row positions of each stratified fold (shuffled with a fixed seed)."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    return [val for _, val in splitter.split(np.zeros(len(y)), y)]


def out_of_fold(
    estimator: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    folds: int,
    random_state: int,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    fit: Callable[[Any, pd.DataFrame, np.ndarray], Any] | None = None,
) -> OutOfFold:
    """Fit a clone of ``estimator`` per stratified fold and predict the held-out rows.

    Raises Cancelled (checked before each fold).
    """
    report = progress or no_progress
    fit_fn = fit or (lambda est, data, target: est.fit(data, target))
    oof = np.zeros(len(y), dtype="float64")
    scores: list[float] = []
    model: Any = None
    validation = np.zeros(0, dtype=np.intp)
    splits = stratified_folds(y, folds, random_state)
    for i, validation in enumerate(splits):
        check_cancel(cancel)
        report(i / folds, f"Fold {i + 1} of {folds}")
        train_rows = np.setdiff1d(np.arange(len(y)), validation, assume_unique=True)
        model = fit_fn(clone(estimator), X.iloc[train_rows], y[train_rows])
        oof[validation] = model.predict_proba(X.iloc[validation])[:, 1]
        scores.append(float(roc_auc_score(y[validation], oof[validation])))
    report(1.0, "Folds done")
    return OutOfFold(oof, tuple(scores), model, validation)


def evaluate(
    y: np.ndarray,
    p: np.ndarray,
    *,
    fold_roc_auc: tuple[float, ...] = (),
    revenue: np.ndarray | None = None,
    cost: CostInputs | None = None,
    rule: str = "f1",
) -> Evaluation:
    """Metrics, curves and thresholds for out-of-fold probabilities ``p`` of labels ``y``.

    ``revenue`` is each customer's monthly revenue (NaN → median); without it the cost
    threshold is not computed and ``rule`` falls back to ``f1``.
    """
    y = np.asarray(y, dtype=np.int8)
    p = np.clip(np.asarray(p, dtype="float64"), 0.0, 1.0)
    cost = cost or CostInputs()
    pooled = float(roc_auc_score(y, p))
    folds = fold_roc_auc or (pooled,)
    f1_choice = choose_threshold_f1(y, p)
    cost_choice: ThresholdChoice | None = None
    curve: tuple[tuple[float, float], ...] = ()
    if revenue is not None:
        cost_choice, curve = choose_threshold_cost(y, p, revenue, cost)
    chosen = "cost" if rule == "cost" and cost_choice is not None else "f1"
    threshold = cost_choice.threshold if chosen == "cost" and cost_choice else f1_choice.threshold
    flagged = p >= threshold
    return Evaluation(
        n=int(y.size),
        n_churned=int(y.sum()),
        prevalence=float(y.mean()),
        folds=len(folds),
        roc_auc=float(np.mean(folds)),
        roc_auc_std=float(np.std(folds)),
        roc_auc_folds=tuple(float(s) for s in folds),
        roc_auc_pooled=pooled,
        pr_auc=float(average_precision_score(y, p)),
        brier=float(brier_score_loss(y, p)),
        log_loss=float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        calibration=calibration_bins(y, p),
        deciles=lift_by_decile(y, p),
        roc_points=_roc_points(y, p),
        threshold_f1=f1_choice,
        threshold_cost=cost_choice,
        cost_curve=curve,
        cost_inputs=cost,
        chosen=chosen,
        confusion={
            "tn": int(np.sum(~flagged & (y == 0))),
            "fp": int(np.sum(flagged & (y == 0))),
            "fn": int(np.sum(~flagged & (y == 1))),
            "tp": int(np.sum(flagged & (y == 1))),
        },
    )


def calibration_bins(
    y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS
) -> tuple[dict[str, float | None], ...]:
    """Uniform probability bins with their mean prediction and observed churn rate.

    Empty bins carry None (JSON has no NaN) for the mean prediction and observed rate.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    out = []
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        out.append(
            {
                "bin_low": float(edges[b]),
                "bin_high": float(edges[b + 1]),
                "mean_predicted": float(p[members].mean()) if count else None,
                "observed": float(y[members].mean()) if count else None,
                "count": count,
            }
        )
    return tuple(out)


def lift_by_decile(y: np.ndarray, p: np.ndarray) -> tuple[dict[str, float], ...]:
    """Customers ranked by risk, split into tenths: churn rate, lift and cumulative gain."""
    order = np.argsort(-p, kind="stable")
    ranked = y[order]
    total = max(int(y.sum()), 1)
    base = float(y.mean()) or 1.0
    out = []
    caught = 0
    for d, part in enumerate(np.array_split(ranked, 10), start=1):
        churned = int(part.sum())
        caught += churned
        rate = churned / len(part) if len(part) else 0.0
        out.append(
            {
                "decile": d,
                "customers": len(part),
                "churned": churned,
                "rate": rate,
                "lift": rate / base,
                "cumulative_gain": caught / total,
            }
        )
    return tuple(out)


def _roc_points(y: np.ndarray, p: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=True)
    keep = _downsample(len(fpr))
    # roc_curve's first threshold is +inf (nothing flagged); JSON has no inf, so cap at 1.
    return tuple((float(fpr[i]), float(tpr[i]), float(min(thresholds[i], 1.0))) for i in keep)


def _downsample(n: int, points: int = CURVE_POINTS) -> np.ndarray:
    if n <= points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, points).round().astype(int))


def _cuts(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Descending order and the positions where the flagged set can change (ties kept whole)."""
    order = np.argsort(-p, kind="stable")
    ranked = p[order]
    # k customers flagged is a valid cut only if the (k+1)-th has a strictly lower p.
    ends = np.flatnonzero(np.r_[ranked[1:] < ranked[:-1], True]) + 1
    return order, ranked, ends


def choose_threshold_f1(y: np.ndarray, p: np.ndarray) -> ThresholdChoice:
    """The cut-off with the best F1 score (ties → higher threshold, fewer customers flagged)."""
    order, ranked, ends = _cuts(p)
    tp = np.cumsum(y[order])[ends - 1].astype("float64")
    flagged = ends.astype("float64")
    positives = max(float(y.sum()), 1.0)
    precision = tp / flagged
    recall = tp / positives
    f1 = np.where(tp > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    best = int(np.argmax(f1))
    return ThresholdChoice(
        rule="f1",
        threshold=float(ranked[ends[best] - 1]),
        precision=float(precision[best]),
        recall=float(recall[best]),
        f1=float(f1[best]),
        flagged=int(ends[best]),
    )


def choose_threshold_cost(
    y: np.ndarray, p: np.ndarray, revenue: np.ndarray, cost: CostInputs
) -> tuple[ThresholdChoice, tuple[tuple[float, float], ...]]:
    """The cut-off with the highest expected value of a retention campaign.

    Flagging a customer costs ``offer_cost``; a flagged customer who would have churned is
    kept with probability ``success_rate`` and is then worth ``monthly revenue ×
    horizon_months``. The value is summed over the customers flagged at each cut-off, using
    their known outcomes (out of fold). Returns the best choice and the downsampled curve.
    """
    rev = np.asarray(revenue, dtype="float64")
    fill = np.nanmedian(rev) if np.isfinite(rev).any() else 0.0
    rev = np.where(np.isfinite(rev), rev, fill)
    gain = y * cost.success_rate * rev * cost.horizon_months - cost.offer_cost
    order, ranked, ends = _cuts(p)
    value = np.cumsum(gain[order])[ends - 1]
    tp = np.cumsum(y[order])[ends - 1].astype("float64")
    best = int(np.argmax(value))
    positives = max(float(y.sum()), 1.0)
    if value[best] <= 0.0:
        # No cut-off pays: flag nobody. A threshold above every probability says so.
        choice = ThresholdChoice("cost", 1.0, 0.0, 0.0, 0.0, int(np.sum(p >= 1.0)), 0.0)
    else:
        precision = tp[best] / ends[best]
        recall = tp[best] / positives
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        choice = ThresholdChoice(
            rule="cost",
            threshold=float(ranked[ends[best] - 1]),
            precision=float(precision),
            recall=float(recall),
            f1=float(f1),
            flagged=int(ends[best]),
            expected_value=float(value[best]),
        )
    keep = _downsample(len(ends))
    curve = tuple((float(ranked[ends[i] - 1]), float(value[i])) for i in keep)
    return choice, curve


__all__ = [
    "CostInputs",
    "Evaluation",
    "OutOfFold",
    "ThresholdChoice",
    "choose_threshold_cost",
    "choose_threshold_f1",
    "evaluate",
    "out_of_fold",
]

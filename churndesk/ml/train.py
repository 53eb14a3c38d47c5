"""Training: the two candidate pipelines, cross-validated choice between them, and the final fit."""

# ruff: noqa: N803, N806 (X is scikit-learn's name for the feature matrix)

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from churndesk.errors import ValidationError
from churndesk.ml.evaluate import CostInputs, Evaluation, evaluate, out_of_fold
from churndesk.ml.explain import (
    DriverTables,
    FeatureImportance,
    fit_driver_tables,
    permutation_importances,
)
from churndesk.ml.features import REVENUE_COLUMN, FeatureSchema, check_training_data
from churndesk.ml.threads import limited_threads
from churndesk.progress import ProgressFn, Throttled, check_cancel, stage

ALGORITHMS = ("auto", "hgb", "logreg")
#: Isotonic calibration needs enough rows per calibration fold; below this, Platt scaling.
ISOTONIC_MIN_ROWS = 2000


@dataclass(frozen=True)
class TrainParams:
    """Training options; :meth:`from_dict` rejects unknown keys so a typo is not ignored."""

    algorithm: str = "auto"  # "auto" picks by cross-validated ROC-AUC
    calibrate: bool = False
    folds: int = 5
    random_state: int = 0
    offer_cost: float = 10.0
    success_rate: float = 0.3
    horizon_months: float = 12.0
    threshold_rule: str = "f1"  # "f1" or "cost": which threshold the model flags with
    hgb_max_iter: int = 200
    importance_repeats: int = 3

    def __post_init__(self) -> None:
        problems: dict[str, str] = {}
        if self.algorithm not in ALGORITHMS:
            problems["algorithm"] = f"must be one of {', '.join(ALGORITHMS)}"
        if not 2 <= self.folds <= 20:
            problems["folds"] = "must be between 2 and 20"
        if self.offer_cost < 0:
            problems["offer_cost"] = "must not be negative"
        if not 0.0 <= self.success_rate <= 1.0:
            problems["success_rate"] = "must be between 0 and 1"
        if self.horizon_months <= 0:
            problems["horizon_months"] = "must be positive"
        if self.threshold_rule not in ("f1", "cost"):
            problems["threshold_rule"] = "must be 'f1' or 'cost'"
        if self.hgb_max_iter < 1 or self.importance_repeats < 1:
            problems["hgb_max_iter"] = "must be at least 1"
        if problems:
            raise ValidationError(
                "Invalid training settings: "
                + "; ".join(f"{k} {v}" for k, v in problems.items())
                + ".",
                field_errors=problems,
            )

    @property
    def cost(self) -> CostInputs:
        return CostInputs(self.offer_cost, self.success_rate, self.horizon_months)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainParams:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationError(
                "Unknown training settings: " + ", ".join(unknown) + ".",
                field_errors={k: "unknown setting" for k in unknown},
            )
        return cls(**dict(data))


@dataclass(frozen=True)
class CandidateScore:
    """Cross-validated scores of one algorithm considered by ``auto``."""

    algorithm: str
    roc_auc: float
    roc_auc_std: float
    pr_auc: float
    brier: float
    log_loss: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A fitted pipeline with everything needed to score, explain and audit it."""

    estimator: Any  # Pipeline, or CalibratedClassifierCV around one
    algorithm: str  # "hgb" or "logreg": what was actually fitted
    params: TrainParams
    schema: FeatureSchema
    evaluation: Evaluation  # out-of-fold, for the algorithm used
    candidates: tuple[CandidateScore, ...]
    thresholds: dict[str, float]  # "f1" and (with revenue) "cost"
    threshold: float  # the one flagging customers, per params.threshold_rule
    importance: tuple[FeatureImportance, ...]
    drivers: DriverTables
    n_train: int
    sklearn_version: str

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.schema.feature_names

    def metadata(self) -> dict[str, Any]:
        """Everything but the estimator, as JSON-serialisable data."""
        return {
            "algorithm": self.algorithm,
            "params": self.params.to_dict(),
            "schema": self.schema.to_dict(),
            "evaluation": self.evaluation.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "thresholds": dict(self.thresholds),
            "threshold": self.threshold,
            "importance": [i.to_dict() for i in self.importance],
            "drivers": self.drivers.to_dict(),
            "n_train": self.n_train,
            "sklearn_version": self.sklearn_version,
        }

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any], estimator: Any) -> TrainedModel:
        return cls(
            estimator=estimator,
            algorithm=str(meta["algorithm"]),
            params=TrainParams.from_dict(meta["params"]),
            schema=FeatureSchema.from_dict(meta["schema"]),
            evaluation=Evaluation.from_dict(meta["evaluation"]),
            candidates=tuple(CandidateScore(**c) for c in meta["candidates"]),
            thresholds={str(k): float(v) for k, v in meta["thresholds"].items()},
            threshold=float(meta["threshold"]),
            importance=tuple(FeatureImportance(**i) for i in meta["importance"]),
            drivers=DriverTables.from_dict(meta["drivers"]),
            n_train=int(meta["n_train"]),
            sklearn_version=str(meta["sklearn_version"]),
        )


# --------------------------------------------------------------------------- pipelines


def _split_columns(X: pd.DataFrame) -> tuple[list[str], list[str], list[list[Any]]]:
    numeric, categorical, categories = [], [], []
    for name in X.columns:
        dtype = X[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            categorical.append(str(name))
            categories.append(list(dtype.categories))
        else:
            numeric.append(str(name))
    return numeric, categorical, categories


def hgb_pipeline(X: pd.DataFrame, *, random_state: int = 0, max_iter: int = 200) -> Pipeline:
    """Gradient boosting with native categorical splits on ordinal codes (no one-hot)."""
    numeric, categorical, categories = _split_columns(X)
    encoder = OrdinalEncoder(
        categories=categories,
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        dtype=np.float64,
    )
    prep = ColumnTransformer(
        [("numeric", "passthrough", numeric), ("categorical", encoder, categorical)],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    mask = [False] * len(numeric) + [True] * len(categorical)
    # Moderate depth, a slower learning rate and L2 make a steadier default across data sets
    # than sklearn's defaults (Telco: 0.834 → ~0.84 ROC-AUC); early stopping stays "auto".
    model = HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=max_iter,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        categorical_features=mask if any(mask) else None,
        random_state=random_state,
    )
    return Pipeline([("prep", prep), ("model", model)])


def logreg_pipeline(X: pd.DataFrame) -> Pipeline:
    """Logistic regression on median-imputed, scaled numerics (+ missing flags) and one-hot."""
    numeric, categorical, categories = _split_columns(X)
    numeric_steps = Pipeline(
        [
            (
                "impute",
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            ),
            ("scale", StandardScaler()),
        ]
    )
    onehot = OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False)
    prep = ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", onehot, categorical)],
        remainder="drop",
    )
    return Pipeline([("prep", prep), ("model", LogisticRegression(C=1.0, max_iter=5000))])


def make_estimator(algorithm: str, X: pd.DataFrame, params: TrainParams, n_rows: int) -> Any:
    """The unfitted estimator for ``algorithm``, wrapped for calibration if asked."""
    if algorithm == "hgb":
        base = hgb_pipeline(X, random_state=params.random_state, max_iter=params.hgb_max_iter)
    elif algorithm == "logreg":
        base = logreg_pipeline(X)
    else:
        raise ValidationError(f"Unknown algorithm {algorithm!r}.")
    if not params.calibrate:
        return base
    method = "isotonic" if n_rows >= ISOTONIC_MIN_ROWS else "sigmoid"
    # cv=3 (unshuffled stratified folds) keeps calibration deterministic and affordable.
    return CalibratedClassifierCV(base, method=method, cv=3)


# --------------------------------------------------------------------------- training


def train(
    X: pd.DataFrame,
    y: np.ndarray,
    params: TrainParams | Mapping[str, Any] | None = None,
    *,
    schema: FeatureSchema | None = None,
    revenue: np.ndarray | None = None,
    threads: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> TrainedModel:
    """Cross-validate, choose and fit a churn model on the model matrix ``X`` (from
    :func:`~churndesk.ml.features.build_features`) and labels ``y`` (1 = churned).

    ``auto`` cross-validates both pipelines with the same stratified folds and keeps the one
    with the higher mean ROC-AUC (ties → logistic regression). Permutation importance is
    measured on the last held-out fold; the final model is refitted on all rows.
    ``revenue`` (monthly, per row) feeds the business threshold; by default the
    ``monthly_revenue`` column of ``X`` if there is one. Same data and ``random_state`` →
    identical results. ``threads`` caps gradient boosting's OpenMP threads (default: all
    cores but one). Raises ValidationError (too little data, bad settings) and Cancelled.
    """
    with limited_threads(threads):
        return _train(
            X, y, params, schema=schema, revenue=revenue, progress=progress, cancel=cancel
        )


def _train(
    X: pd.DataFrame,
    y: np.ndarray,
    params: TrainParams | Mapping[str, Any] | None,
    *,
    schema: FeatureSchema | None,
    revenue: np.ndarray | None,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> TrainedModel:
    settings = params if isinstance(params, TrainParams) else TrainParams.from_dict(params or {})
    labels = np.asarray(y).astype(np.int8)
    if len(X) != labels.size:
        raise ValidationError(f"{len(X)} feature rows but {labels.size} labels.")
    check_training_data(labels)
    if X.shape[1] == 0:
        raise ValidationError("There are no feature columns to train on.")
    schema = schema or FeatureSchema.from_matrix(X)
    if tuple(X.columns) != schema.feature_names:
        raise ValidationError("The feature matrix does not match the feature schema.")
    if revenue is None and REVENUE_COLUMN in X.columns:
        revenue = X[REVENUE_COLUMN].to_numpy(dtype="float64")
    X = X.reset_index(drop=True)
    report = Throttled(progress)
    candidates = ["logreg", "hgb"] if settings.algorithm == "auto" else [settings.algorithm]

    cv_share = 0.7
    results = {}
    for i, algorithm in enumerate(candidates):
        span = cv_share / len(candidates)
        name = "gradient boosting" if algorithm == "hgb" else "logistic regression"
        sub = stage(report, i * span, (i + 1) * span)
        estimator = make_estimator(algorithm, X, settings, len(labels))
        results[algorithm] = out_of_fold(
            estimator,
            X,
            labels,
            folds=settings.folds,
            random_state=settings.random_state,
            progress=lambda f, t, sub=sub, name=name: sub(f, f"Cross-validating {name}: {t}"),
            cancel=cancel,
        )
    scored = {
        algorithm: evaluate(
            labels,
            oof.probabilities,
            fold_roc_auc=oof.fold_roc_auc,
            revenue=revenue,
            cost=settings.cost,
            rule=settings.threshold_rule,
        )
        for algorithm, oof in results.items()
    }
    # Strictly better to displace logistic regression: it is simpler to explain exactly.
    chosen = max(candidates, key=lambda a: (scored[a].roc_auc, a == "logreg"))
    evaluation = scored[chosen]

    check_cancel(cancel)
    report(cv_share, "Measuring feature importance")
    fold = results[chosen]
    importance = permutation_importances(
        fold.last_model,
        X.iloc[fold.last_validation],
        labels[fold.last_validation],
        n_repeats=settings.importance_repeats,
        random_state=settings.random_state,
    )

    check_cancel(cancel)
    report(0.8, "Fitting the final model on all customers")
    final = make_estimator(chosen, X, settings, len(labels)).fit(X, labels)

    check_cancel(cancel)
    report(0.93, "Preparing per-customer drivers")
    drivers = fit_driver_tables(
        final,
        X,
        linear=chosen == "logreg" and not settings.calibrate,
        random_state=settings.random_state,
    )
    thresholds = {"f1": evaluation.threshold_f1.threshold}
    if evaluation.threshold_cost is not None:
        thresholds["cost"] = evaluation.threshold_cost.threshold
    report(1.0, "Training finished")
    return TrainedModel(
        estimator=final,
        algorithm=chosen,
        params=settings,
        schema=schema,
        evaluation=evaluation,
        candidates=tuple(
            CandidateScore(
                algorithm=a,
                roc_auc=scored[a].roc_auc,
                roc_auc_std=scored[a].roc_auc_std,
                pr_auc=scored[a].pr_auc,
                brier=scored[a].brier,
                log_loss=scored[a].log_loss,
            )
            for a in candidates
        ),
        thresholds=thresholds,
        threshold=evaluation.threshold,
        importance=importance,
        drivers=drivers,
        n_train=int(labels.size),
        sklearn_version=sklearn.__version__,
    )


__all__ = [
    "CandidateScore",
    "TrainParams",
    "TrainedModel",
    "hgb_pipeline",
    "logreg_pipeline",
    "train",
]

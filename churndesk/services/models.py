"""Churn model registry: train from the database, version, promote, roll back, compare, load.

Training reads every customer whose outcome is known (status active or churned), hands the
frame to ``churndesk.ml`` and stores the artifact with its sha256, feature schema, parameters,
metrics, a fingerprint of the training data, who trained it and when. Exactly one version is
active at a time; the first model of a database becomes active by itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from churndesk.db.engine import session_factory, write_unit_of_work
from churndesk.db.models import ModelVersion
from churndesk.errors import ChurndeskError, NotFoundError, ValidationError
from churndesk.progress import ProgressFn, Throttled, check_cancel, stage
from churndesk.services import audit
from churndesk.services.changes import Changes, publish
from churndesk.services.customer_frames import load_customer_frame

if TYPE_CHECKING:
    import pandas as pd

MODEL_NAME = "churn"
ARTIFACT_FORMAT = "skops"
#: Score bins for the population stability index (scores 0-100 in ten equal bins).
PSI_BINS = tuple(float(x) for x in np.linspace(0, 100, 11))
#: Metrics listed side by side by ``compare_models``; higher is better unless noted.
COMPARED_METRICS: tuple[tuple[str, bool], ...] = (
    ("roc_auc", True),
    ("pr_auc", True),
    ("brier", False),
    ("log_loss", False),
    ("threshold", True),
)


@dataclass(frozen=True)
class ModelSummary:
    id: int
    name: str
    version: int
    algorithm: str
    status: str
    roc_auc: float | None
    pr_auc: float | None
    brier: float | None
    training_rows: int | None
    trained_at: dt.datetime | None
    trained_by: str | None
    sha256: str

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "algorithm": self.algorithm,
            "status": self.status,
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "brier": self.brier,
            "training_rows": self.training_rows,
            "trained_at": self.trained_at.isoformat() if self.trained_at else None,
            "trained_by": self.trained_by,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class ModelDetail:
    summary: ModelSummary
    params: dict[str, Any]
    metrics: dict[str, Any]
    feature_schema: dict[str, Any]
    training_fingerprint: str | None


@dataclass(frozen=True)
class Comparison:
    a: ModelSummary
    b: ModelSummary
    #: (metric, value of a, value of b, b - a, whether b is better)
    rows: tuple[tuple[str, float | None, float | None, float | None, bool | None], ...]


@dataclass(frozen=True)
class LoadedModel:
    """An active model ready to score: the registry row and the verified, loaded model."""

    summary: ModelSummary
    model: Any  # churndesk.ml.train.TrainedModel
    score_distribution: tuple[float, ...]


def _summary(row: ModelVersion) -> ModelSummary:
    metrics = row.metrics or {}
    return ModelSummary(
        id=row.id,
        name=row.name,
        version=row.version,
        algorithm=row.algorithm,
        status=row.status,
        roc_auc=metrics.get("roc_auc"),
        pr_auc=metrics.get("pr_auc"),
        brier=metrics.get("brier"),
        training_rows=row.training_rows,
        trained_at=row.trained_at,
        trained_by=row.trained_by,
        sha256=row.sha256,
    )


def training_fingerprint(frame: pd.DataFrame, y: np.ndarray, schema_fingerprint: str) -> str:
    """A hash of exactly what the model learned from: ids, labels, features' sources, schema."""
    import pandas as pd

    digest = hashlib.sha256(schema_fingerprint.encode())
    ordered = frame.sort_values("external_id", kind="stable")
    digest.update(pd.util.hash_pandas_object(ordered["external_id"], index=False).values)
    digest.update(np.asarray(y)[ordered.index.to_numpy()].astype(np.int8).tobytes())
    return digest.hexdigest()


def score_histogram(scores: np.ndarray) -> tuple[float, ...]:
    """Share of customers per PSI bin (sums to 1)."""
    counts, _ = np.histogram(np.clip(scores, 0, 100), bins=np.array(PSI_BINS))
    total = max(int(counts.sum()), 1)
    return tuple(float(c) / total for c in counts)


def population_stability(expected: tuple[float, ...], actual: tuple[float, ...]) -> float:
    """PSI = Σ (a − e)·ln(a / e); 0.1 is a shift worth a look, 0.2 a significant one."""
    e = np.clip(np.asarray(expected, dtype=float), 1e-4, None)
    a = np.clip(np.asarray(actual, dtype=float), 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def train_model(
    engine: Engine,
    params: Mapping[str, Any] | None = None,
    *,
    actor: str | None = None,
    promote: bool = False,
    max_rows: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ModelSummary:
    """Train a new version on every customer with a known outcome and store it.

    ``max_rows`` trains on a seeded random sample of that many customers instead (a model of
    a million customers learns little more from all of them than from 200,000).

    The new version is active if ``promote`` or if the database has no active model yet;
    otherwise a candidate. Commits once, at the end. Raises ValidationError (too little
    labelled data, bad parameters) and Cancelled; a cancelled or failed training stores
    nothing.
    """
    from churndesk.ml import artifacts, features, scoring_math, train

    report = Throttled(progress)
    options = train.TrainParams.from_dict(dict(params or {}))
    frame = load_customer_frame(engine, progress=stage(report, 0.0, 0.15), cancel=cancel)
    labelled = frame[frame["status"].isin(("active", "churned"))].reset_index(drop=True)
    if max_rows is not None and len(labelled) > max_rows:
        labelled = labelled.sample(n=max_rows, random_state=options.random_state)
        labelled = labelled.sort_values("id").reset_index(drop=True)
    if labelled.empty:
        raise ValidationError(
            "There are no customers to learn from yet. Import customers (with a status column "
            "saying who churned) first."
        )
    check_cancel(cancel)
    report(0.16, "Preparing features")
    y = features.label_from(labelled)
    features.check_training_data(y)
    schema = features.infer_schema(labelled)
    matrix = features.build_features(labelled, schema)
    check_cancel(cancel)
    model = train.train(
        matrix,
        y,
        options,
        schema=schema,
        revenue=labelled["monthly_revenue"].to_numpy(dtype=float),
        progress=stage(report, 0.2, 0.92),
        cancel=cancel,
    )
    check_cancel(cancel)
    report(0.93, "Scoring the training data and saving the model")
    scores = scoring_math.risk_score(scoring_math.probabilities(model, matrix))
    blob = artifacts.dump_model(model)
    evaluation = model.evaluation.to_dict()
    metrics: dict[str, Any] = {
        key: evaluation.get(key) for key in ("roc_auc", "pr_auc", "brier", "log_loss")
    }
    metrics.update(
        {
            "threshold": model.threshold,
            "thresholds": dict(model.thresholds),
            "evaluation": evaluation,
            "candidates": [c.to_dict() for c in model.candidates],
            "importance": [i.to_dict() for i in model.importance],
            "score_distribution": list(score_histogram(scores)),
            "churn_rate": float(np.mean(y)),
        }
    )
    fingerprint = training_fingerprint(labelled, y, schema.fingerprint())
    with write_unit_of_work(session_factory(engine)) as session:
        version = (
            session.scalar(
                select(func.max(ModelVersion.version)).where(ModelVersion.name == MODEL_NAME)
            )
            or 0
        ) + 1
        has_active = session.scalar(
            select(func.count()).select_from(ModelVersion).where(ModelVersion.status == "active")
        )
        activate = promote or not has_active
        now = dt.datetime.now(dt.UTC)
        if activate:
            _retire_active(session)
        row = ModelVersion(
            name=MODEL_NAME,
            version=version,
            algorithm=model.algorithm,
            params=options.to_dict(),
            feature_schema=schema.to_dict(),
            metrics=_jsonable(metrics),
            artifact=blob,
            artifact_format=ARTIFACT_FORMAT,
            sha256=artifacts.sha256_of(blob),
            training_fingerprint=fingerprint,
            training_rows=len(labelled),
            status="active" if activate else "candidate",
            trained_at=now,
            trained_by=actor,
            promoted_at=now if activate else None,
            promoted_by=actor if activate else None,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="train",
            entity="model_version",
            entity_id=row.id,
            changes={"version": version, "status": row.status, "roc_auc": metrics["roc_auc"]},
        )
        publish(session.connection(), Changes(models=True))
        summary = _summary(row)
    report(1.0, "Model trained")
    return summary


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _retire_active(session: Session) -> None:
    session.execute(
        update(ModelVersion).where(ModelVersion.status == "active").values(status="retired")
    )


def list_models(engine: Engine) -> list[ModelSummary]:
    """Every version, newest first."""
    with session_factory(engine)() as session:
        rows = session.scalars(
            select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version.desc())
        ).all()
        return [_summary(r) for r in rows]


def _find(session: Session, version: int | str) -> ModelVersion:
    number = _version_number(version)
    row = session.scalar(
        select(ModelVersion).where(ModelVersion.name == MODEL_NAME, ModelVersion.version == number)
    )
    if row is None:
        raise NotFoundError(f"There is no model version {number}.")
    return row


def _version_number(version: int | str) -> int:
    text = str(version).strip().lower().removeprefix(f"{MODEL_NAME} ").lstrip("v")
    try:
        return int(text)
    except ValueError:
        raise ValidationError(
            f"'{version}' is not a model version (use a number like 3)."
        ) from None


def get_model(engine: Engine, version: int | str) -> ModelDetail:
    with session_factory(engine)() as session:
        row = _find(session, version)
        return ModelDetail(
            summary=_summary(row),
            params=dict(row.params or {}),
            metrics=dict(row.metrics or {}),
            feature_schema=dict(row.feature_schema or {}),
            training_fingerprint=row.training_fingerprint,
        )


def active_model(engine: Engine) -> ModelSummary | None:
    with session_factory(engine)() as session:
        row = session.scalar(select(ModelVersion).where(ModelVersion.status == "active"))
        return _summary(row) if row else None


def promote_model(engine: Engine, version: int | str, *, actor: str | None = None) -> ModelSummary:
    """Make ``version`` the active model (the previous one is retired). Commits."""
    with write_unit_of_work(session_factory(engine)) as session:
        row = _find(session, version)
        if row.status == "active":
            return _summary(row)
        _retire_active(session)
        row.status = "active"
        row.promoted_at = dt.datetime.now(dt.UTC)
        row.promoted_by = actor
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="promote",
            entity="model_version",
            entity_id=row.id,
            changes={"version": row.version},
        )
        publish(session.connection(), Changes(models=True))
        return _summary(row)


def rollback_model(engine: Engine, *, actor: str | None = None) -> ModelSummary:
    """Re-activate the version that was active before the current one. Commits.

    Raises ChurndeskError when there is nothing to roll back to.
    """
    with session_factory(engine)() as session:
        current = session.scalar(select(ModelVersion).where(ModelVersion.status == "active"))
        previous = session.scalar(
            select(ModelVersion)
            .where(ModelVersion.status == "retired", ModelVersion.promoted_at.is_not(None))
            .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())
            .limit(1)
        )
    if previous is None:
        raise ChurndeskError(
            "There is no earlier active model to roll back to."
            + (f" {current.name} v{current.version} stays active." if current else "")
        )
    return promote_model(engine, previous.version, actor=actor)


def compare_models(engine: Engine, a: int | str, b: int | str) -> Comparison:
    """Metric by metric, version ``b`` against version ``a``."""
    first, second = get_model(engine, a), get_model(engine, b)
    rows = []
    for metric, higher_is_better in COMPARED_METRICS:
        va, vb = first.metrics.get(metric), second.metrics.get(metric)
        if va is None or vb is None:
            rows.append((metric, va, vb, None, None))
            continue
        delta = float(vb) - float(va)
        better = None if delta == 0 else (delta > 0) == higher_is_better
        rows.append((metric, float(va), float(vb), delta, better))
    return Comparison(first.summary, second.summary, tuple(rows))


def load_active_model(engine: Engine, version: int | str | None = None) -> LoadedModel:
    """Load (and verify) the active model, or ``version``. Raises NotFoundError if none."""
    from churndesk.ml import artifacts
    from churndesk.ml.features import FeatureSchema

    with session_factory(engine)() as session:
        if version is None:
            row = session.scalar(select(ModelVersion).where(ModelVersion.status == "active"))
            if row is None:
                raise NotFoundError(
                    "No model is active yet. Train one first (churndesk train, or Models ▸ Train)."
                )
        else:
            row = _find(session, version)
        blob, sha, schema_dict = row.artifact, row.sha256, row.feature_schema
        summary = _summary(row)
        distribution = tuple(float(x) for x in (row.metrics or {}).get("score_distribution", ()))
    model = artifacts.load_model(blob, sha, FeatureSchema.from_dict(schema_dict))
    return LoadedModel(summary, model, distribution)

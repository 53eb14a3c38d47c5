"""The Models page: versions and metrics; train in the background, promote, roll back, score."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from churndesk.errors import ChurndeskError
from churndesk.progress import ProgressFn
from churndesk.ui.errors import user_message
from churndesk.ui.jobs import JobRunner

if TYPE_CHECKING:
    # Loaded by the page's jobs on first use; they import pandas and scikit-learn only inside
    # training and scoring (tests/unit/test_boundaries.py keeps it so).
    from churndesk.services.models import ModelSummary
    from churndesk.services.scoring import RunSummary

HEADERS = ("Version", "Status", "Algorithm", "ROC-AUC", "PR-AUC", "Brier", "Customers", "Trained")


def _cell(text: str, *, numeric: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if numeric:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _metric(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


class ModelsPane(QWidget):
    """Every action is a job; results and errors come back as messages on this page."""

    models_changed = Signal()

    def __init__(self, engine: Any, jobs: JobRunner, actor: str, parent: QWidget | None = None):
        super().__init__(parent)
        self._engine = engine
        self._jobs = jobs
        self._actor = actor
        self._models: list[ModelSummary] = []

        self.table = QTableWidget(0, len(HEADERS))
        self.table.setObjectName("models_table")
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.algorithm = QComboBox()
        self.algorithm.addItem("Best by cross-validation", "auto")
        self.algorithm.addItem("Gradient boosting", "hgb")
        self.algorithm.addItem("Logistic regression", "logreg")
        self.train_button = QPushButton("Train a new model")
        self.train_button.setToolTip("Trains on every customer whose outcome is known")
        self.promote_button = QPushButton("Make active")
        self.rollback_button = QPushButton("Roll back")
        self.score_button = QPushButton("Score all customers")
        self.train_button.clicked.connect(self.train)
        self.promote_button.clicked.connect(self.promote_selected)
        self.rollback_button.clicked.connect(self.rollback)
        self.score_button.clicked.connect(self.score)
        self.message = QLabel(
            "No model yet. Train one on the customers whose outcome is known; it becomes the "
            "active model and scores every customer."
        )
        self.message.setObjectName("models_message")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)

        actions = QHBoxLayout()
        for widget in (
            self.algorithm,
            self.train_button,
            self.promote_button,
            self.rollback_button,
            self.score_button,
        ):
            actions.addWidget(widget)
        actions.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(actions)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)
        self._update_buttons()

    # -- reading -----------------------------------------------------------------------------

    def refresh(self) -> None:
        engine = self._engine

        def load(progress: ProgressFn, cancel: threading.Event) -> list[ModelSummary]:
            from churndesk.services.models import list_models

            return list_models(engine)

        worker = self._jobs.start("_models", load, lane="read")
        worker.succeeded.connect(self._on_models_loaded)
        worker.failed.connect(self._on_job_failed)

    @Slot(object)
    def _on_models_loaded(self, models: list[ModelSummary]) -> None:
        self._models = models
        self.table.setRowCount(len(models))
        for row, m in enumerate(models):
            trained = m.trained_at.strftime("%Y-%m-%d %H:%M") if m.trained_at else ""
            values = (
                (m.label, False),
                (m.status, False),
                (m.algorithm, False),
                (_metric(m.roc_auc), True),
                (_metric(m.pr_auc), True),
                (_metric(m.brier), True),
                (f"{m.training_rows:,}" if m.training_rows else "", True),
                (f"{trained} {m.trained_by or ''}".strip(), False),
            )
            for column, (text, numeric) in enumerate(values):
                self.table.setItem(row, column, _cell(text, numeric=numeric))
        if models and self.message.text().startswith("No model yet"):
            self.message.setText("")
        self._update_buttons()

    def _selected(self) -> ModelSummary | None:
        rows = self.table.selectionModel().selectedRows()
        return self._models[rows[0].row()] if rows else None

    def _update_buttons(self) -> None:
        has_models = bool(self._models)
        self.promote_button.setEnabled(has_models)
        self.rollback_button.setEnabled(len(self._models) > 1)
        self.score_button.setEnabled(any(m.status == "active" for m in self._models))

    # -- actions -----------------------------------------------------------------------------

    def _run(self, title: str, fn: Any, on_success: Any) -> None:
        try:
            worker = self._jobs.start(title, fn)
        except ChurndeskError as exc:
            self.message.setText(exc.user_message)
            return
        self.message.setText(f"{title}…")
        worker.succeeded.connect(on_success)
        worker.failed.connect(self._on_job_failed)
        worker.cancelled.connect(self._on_job_cancelled)

    @Slot()
    def train(self) -> None:
        engine, actor, algorithm = self._engine, self._actor, self.algorithm.currentData()

        def run(progress: ProgressFn, cancel: threading.Event) -> ModelSummary:
            from churndesk.services.models import train_model

            return train_model(
                engine, {"algorithm": algorithm}, actor=actor, progress=progress, cancel=cancel
            )

        self._run("Training a churn model", run, self._on_trained)

    @Slot(object)
    def _on_trained(self, summary: ModelSummary) -> None:
        self.message.setText(
            f"Trained {summary.label} ({summary.algorithm}): ROC-AUC {_metric(summary.roc_auc)}, "
            f"Brier {_metric(summary.brier)}, {summary.status}."
        )
        self._after_change()

    @Slot()
    def promote_selected(self) -> None:
        selected = self._selected()
        if selected is None:
            self.message.setText("Select the version to make active.")
            return
        engine, actor, version = self._engine, self._actor, selected.version

        def run(progress: ProgressFn, cancel: threading.Event) -> ModelSummary:
            from churndesk.services.models import promote_model

            return promote_model(engine, version, actor=actor)

        self._run(f"Activating {selected.label}", run, self._on_activated)

    @Slot()
    def rollback(self) -> None:
        engine, actor = self._engine, self._actor

        def run(progress: ProgressFn, cancel: threading.Event) -> ModelSummary:
            from churndesk.services.models import rollback_model

            return rollback_model(engine, actor=actor)

        self._run("Rolling back", run, self._on_activated)

    @Slot(object)
    def _on_activated(self, summary: ModelSummary) -> None:
        self.message.setText(f"{summary.label} is the active model. Score to apply it.")
        self._after_change()

    @Slot()
    def score(self) -> None:
        engine, actor = self._engine, self._actor

        def run(progress: ProgressFn, cancel: threading.Event) -> RunSummary:
            from churndesk.services.scoring import score_all

            return score_all(engine, actor=actor, progress=progress, cancel=cancel)

        self._run("Scoring every customer", run, self._on_scored)

    @Slot(object)
    def _on_scored(self, run: RunSummary) -> None:
        bands = ", ".join(f"{k} {v:,}" for k, v in sorted(run.band_counts.items()))
        drift = "" if run.psi is None else f" Drift (PSI) {run.psi:.3f}."
        self.message.setText(
            f"Scored {run.customers_scored:,} customers with {run.model_label}: {bands}.{drift}"
        )

    def _after_change(self) -> None:
        self.refresh()
        self.models_changed.emit()

    @Slot(object)
    def _on_job_failed(self, exc: object) -> None:
        text = user_message(exc) if isinstance(exc, BaseException) else str(exc)
        self.message.setText(text)

    @Slot()
    def _on_job_cancelled(self) -> None:
        self.message.setText("Cancelled. Nothing was changed.")

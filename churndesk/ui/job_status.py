"""The status-bar widget that shows the running job's progress with a cancel button."""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from churndesk.ui.jobs import JobRunner, JobWorker


class JobStatusWidget(QWidget):
    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._current: JobWorker | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.bar.setMaximumWidth(180)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Cancel the running job (Esc)")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        for widget in (self.label, self.bar, self.cancel_button):
            layout.addWidget(widget)
        runner.job_started.connect(self._on_runner_job_started)
        runner.job_finished.connect(self._on_runner_job_finished)
        self.setVisible(False)

    @Slot(object)
    def _on_runner_job_started(self, worker: JobWorker) -> None:
        if worker.title.startswith("_"):  # quiet background reads
            return
        self._current = worker
        worker.progressed.connect(self._on_worker_progressed)
        self.label.setText(worker.title)
        self.bar.setValue(0)
        self.setVisible(True)

    @Slot(float, str)
    def _on_worker_progressed(self, fraction: float, text: str) -> None:
        self.bar.setValue(int(fraction * 100))
        if text:
            self.label.setText(text)

    @Slot(object)
    def _on_runner_job_finished(self, worker: JobWorker) -> None:
        if worker is self._current:
            self._current = None
            self.setVisible(False)

    @Slot()
    def _on_cancel_clicked(self) -> None:
        if self._current is not None:
            self._current.cancel_event.set()
            self.label.setText("Cancelling…")

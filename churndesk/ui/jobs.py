"""Run service calls off the GUI thread: one QThread per job, progress, cancel, errors as signals.

Services take ``progress(fraction, text)`` and a ``cancel`` event; :class:`JobWorker` adapts
them to Qt signals. Receivers must be ``@Slot`` methods of GUI-thread QObjects so that
AutoConnection queues the call onto the GUI thread (a lambda has no thread affinity and
PySide6 may run it on the worker).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from churndesk.errors import Cancelled, ConflictError

log = logging.getLogger(__name__)

JobFn = Callable[..., Any]


class JobWorker(QObject):
    """Runs one callable as ``fn(progress=..., cancel=...)`` and reports by signals."""

    progressed = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, title: str, fn: JobFn) -> None:
        super().__init__()
        self.title = title
        self._fn = fn
        self.cancel_event = threading.Event()
        self._last_percent = -1

    def _report(self, fraction: float, text: str) -> None:
        # Only whole-percent changes cross threads, so a 1M-row job cannot flood the GUI.
        percent = int(fraction * 100)
        if percent != self._last_percent:
            self._last_percent = percent
            self.progressed.emit(fraction, text)

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(progress=self._report, cancel=self.cancel_event)
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:  # a job's error must never kill the app
            log.exception("job %r failed", self.title)
            self.failed.emit(exc)
        else:
            self.succeeded.emit(result)
        finally:
            self.finished.emit()


@dataclass
class _Running:
    thread: QThread
    worker: JobWorker
    lane: str


class JobRunner(QObject):
    """Owns the running jobs; the GUI-thread face of background work.

    Lanes: ``write`` runs one job at a time (SQLite has one writer), ``read`` jobs run beside
    it so opening a customer never waits behind a million-row scoring run.
    """

    job_started = Signal(object)
    job_finished = Signal(object)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[JobWorker, _Running] = {}

    def start(self, title: str, fn: JobFn, *, lane: str = "write") -> JobWorker:
        """Start ``fn`` on a new thread; connect to the returned worker's signals first thing.

        Signals are emitted only after the thread starts, which happens on the next event-loop
        turn, so connections made right after ``start`` returns are never missed.
        """
        if lane == "write" and self.busy("write"):
            running = next(r.worker.title for r in self._running.values() if r.lane == "write")
            raise ConflictError(f"'{running}' is still running; wait for it or cancel it first.")
        worker = JobWorker(title, fn)
        thread = QThread(self)
        thread.setObjectName(f"job: {title}")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._running[worker] = _Running(thread, worker, lane)
        was_busy = len(self._running) > 1
        QTimer.singleShot(0, thread.start)
        self.job_started.emit(worker)
        if not was_busy:
            self.busy_changed.emit(True)
        return worker

    def busy(self, lane: str | None = None) -> bool:
        return any(lane is None or r.lane == lane for r in self._running.values())

    def workers(self) -> list[JobWorker]:
        return list(self._running)

    @Slot()
    def _on_thread_finished(self) -> None:
        thread = self.sender()
        for worker, running in list(self._running.items()):
            if running.thread is thread:
                del self._running[worker]
                self.job_finished.emit(worker)
                worker.deleteLater()
                thread.deleteLater()
        if not self._running:
            self.busy_changed.emit(False)

    def cancel_all(self) -> None:
        for running in self._running.values():
            running.worker.cancel_event.set()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel every job and wait (bounded) for its thread; True if all stopped."""
        self.cancel_all()
        stopped = True
        for running in list(self._running.values()):
            running.thread.quit()
            stopped = running.thread.wait(timeout_ms) and stopped
        return stopped

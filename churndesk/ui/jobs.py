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

from churndesk.errors import Cancelled, ChurndeskError
from churndesk.progress import Throttled

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
        self.done = False
        # Only whole-percent changes and new steps cross threads, so a 1M-row job cannot flood
        # the GUI. The throttle holds no reference back to this object: a reference cycle
        # through a QObject lets the garbage collector free it later on whatever thread it
        # runs on, and a QObject freed off its own thread crashes Qt.
        self._throttle = Throttled(None)

    def _report(self, fraction: float, text: str) -> None:
        if self._throttle.passes(fraction, text):
            self.progressed.emit(fraction, text)

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(progress=self._report, cancel=self.cancel_event)
        except Cancelled:
            self.cancelled.emit()
        except ChurndeskError as exc:  # a user error: the message is shown, no traceback needed
            log.info("job %r: %s", self.title, exc.user_message)
            self.failed.emit(exc)
        except Exception as exc:  # a job's error must never kill the app
            log.exception("job %r failed", self.title)
            self.failed.emit(exc)
        else:
            self.succeeded.emit(result)
        finally:
            self.done = True
            self.finished.emit()


@dataclass
class _Running:
    thread: QThread | None
    worker: JobWorker
    lane: str


class JobRunner(QObject):
    """Owns the running jobs; the GUI-thread face of background work.

    Lanes: ``write`` runs one job at a time (SQLite has one writer) and queues the rest in
    order; ``read`` jobs run at once beside it, so opening a customer never waits behind a
    million-row scoring run.
    """

    job_started = Signal(object)
    job_finished = Signal(object)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[JobWorker, _Running] = {}
        self._queued: list[JobWorker] = []
        self._closed = False

    def start(self, title: str, fn: JobFn, *, lane: str = "write") -> JobWorker:
        """Run ``fn`` on a new thread, or queue it behind the running write job.

        Connect to the returned worker's signals right away: nothing is emitted before the next
        event-loop turn, so those connections never miss a signal.
        """
        worker = JobWorker(title, fn)
        if self._closed:
            # After shutdown (the window is closing) a late signal may still ask for work, such
            # as a page of rows; a thread started now would outlive the app and abort it.
            worker.cancel_event.set()
            worker.deleteLater()
            return worker
        was_busy = self.busy()
        self._running[worker] = _Running(None, worker, lane)
        if lane == "write" and self._write_thread_active():
            self._queued.append(worker)
        else:
            self._launch(worker)
        self.job_started.emit(worker)
        if not was_busy:
            self.busy_changed.emit(True)
        return worker

    def _write_thread_active(self) -> bool:
        return any(
            r.lane == "write" and r.thread is not None and not r.worker.done
            for r in self._running.values()
        )

    def _launch(self, worker: JobWorker) -> None:
        thread = QThread(self)
        thread.setObjectName(f"job: {worker.title}")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit)
        worker.finished.connect(self._on_worker_finished)
        thread.finished.connect(self._on_thread_finished)
        self._running[worker].thread = thread
        QTimer.singleShot(0, lambda: None if self._closed else thread.start())

    def busy(self, lane: str | None = None) -> bool:
        return any(lane is None or r.lane == lane for r in self._running.values())

    def workers(self) -> list[JobWorker]:
        return list(self._running)

    @Slot()
    def _on_worker_finished(self) -> None:
        # The next write job may start as soon as the previous one has reported, without
        # waiting for its thread to wind down.
        if self._queued and not self._write_thread_active():
            self._launch(self._queued.pop(0))

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
        for worker in self._queued:
            worker.cancel_event.set()
        for running in self._running.values():
            running.worker.cancel_event.set()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel every job, drop the queued ones, wait (bounded) for the threads, and refuse
        new jobs from then on."""
        self._closed = True
        self.cancel_all()
        for worker in self._queued:
            self._running.pop(worker, None)
            worker.deleteLater()
        self._queued.clear()
        stopped = True
        for running in list(self._running.values()):
            if running.thread is not None:
                running.thread.quit()
                stopped = running.thread.wait(timeout_ms) and stopped
        return stopped

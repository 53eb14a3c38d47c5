"""JobRunner: results, errors and cancellation come back to the GUI thread as signals."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QThread, Slot

from churndesk.errors import Cancelled, ChurndeskError
from churndesk.progress import ProgressFn, check_cancel
from churndesk.ui.jobs import JobRunner


def test_no_job_starts_after_shutdown(qtbot) -> None:
    runner = JobRunner()
    ran: list[str] = []
    runner.start("before", lambda progress, cancel: ran.append("before"))
    # Shut down before the event loop turns: the job above had no thread running yet.
    assert runner.shutdown(timeout_ms=10_000)
    late = runner.start("late page", lambda progress, cancel: ran.append("late"))
    assert late.cancel_event.is_set()
    qtbot.wait(50)
    assert ran == []
    assert all(not t.isRunning() for t in runner.findChildren(QThread))


class Receiver(QObject):
    """A GUI-thread receiver, as real panes are: records which thread ran each slot."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[object] = []
        self.errors: list[object] = []
        self.progress: list[float] = []
        self.threads: list[QThread] = []

    @Slot(object)
    def on_succeeded(self, result: object) -> None:
        self.results.append(result)
        self.threads.append(QThread.currentThread())

    @Slot(object)
    def on_failed(self, exc: object) -> None:
        self.errors.append(exc)
        self.threads.append(QThread.currentThread())

    @Slot()
    def on_cancelled(self) -> None:
        self.errors.append("cancelled")
        self.threads.append(QThread.currentThread())

    @Slot(float, str)
    def on_progressed(self, fraction: float, text: str) -> None:
        self.progress.append(fraction)


def test_result_and_progress_arrive_on_the_gui_thread(qtbot) -> None:
    runner = JobRunner()
    receiver = Receiver()

    def work(progress: ProgressFn, cancel: threading.Event) -> int:
        for i in range(1, 501):
            progress(i / 500, "working")
        return 42

    worker = runner.start("answer", work)
    worker.succeeded.connect(receiver.on_succeeded)
    worker.progressed.connect(receiver.on_progressed)
    with qtbot.waitSignal(runner.job_finished, timeout=10_000):
        pass
    assert receiver.results == [42]
    assert receiver.threads == [QThread.currentThread()]
    # Throttled to whole percentages (0 % to 100 %): 101 updates, not 500.
    assert len(receiver.progress) == 101
    assert receiver.progress[-1] == 1.0
    assert not runner.busy()


def test_an_error_in_a_job_is_reported_not_raised(qtbot) -> None:
    runner = JobRunner()
    receiver = Receiver()

    def broken(progress: ProgressFn, cancel: threading.Event) -> None:
        raise ChurndeskError("The file could not be read.")

    worker = runner.start("broken", broken)
    worker.failed.connect(receiver.on_failed)
    with qtbot.waitSignal(runner.job_finished, timeout=10_000):
        pass
    assert [str(e) for e in receiver.errors] == ["The file could not be read."]
    assert receiver.threads == [QThread.currentThread()]


def test_cancel_stops_a_job_between_chunks(qtbot) -> None:
    runner = JobRunner()
    started = threading.Event()
    chunks: list[int] = []

    def long_job(progress: ProgressFn, cancel: threading.Event) -> None:
        started.set()
        for chunk in range(10_000):
            # Wait for the cancel instead of sleeping: deterministic, no timing assumptions.
            cancel.wait(timeout=5)
            check_cancel(cancel)
            chunks.append(chunk)

    receiver = Receiver()
    worker = runner.start("long", long_job)
    # pytest-qt's waitSignal must not listen to a worker-thread signal directly: its callback
    # is no slot and would run on the worker. Wait for the GUI-thread job_finished instead.
    worker.cancelled.connect(receiver.on_cancelled)
    with qtbot.waitSignal(runner.job_finished, timeout=10_000):
        qtbot.waitUntil(started.is_set, timeout=5_000)
        worker.cancel_event.set()
    assert receiver.errors == ["cancelled"]
    assert receiver.threads == [QThread.currentThread()]
    assert chunks == []


def test_write_jobs_queue_in_order_while_reads_run_beside(qtbot) -> None:
    runner = JobRunner()
    release = threading.Event()
    order: list[str] = []

    def blocker(progress: ProgressFn, cancel: threading.Event) -> None:
        release.wait(timeout=10)
        order.append("import")

    def second(progress: ProgressFn, cancel: threading.Event) -> None:
        order.append("score")

    runner.start("import customers", blocker)
    queued = runner.start("score", second)
    reader = runner.start("_read", lambda progress, cancel: order.append("read"), lane="read")
    qtbot.waitUntil(lambda: "read" in order, timeout=10_000)
    assert order == ["read"]  # the read ran while the write lane was blocked
    assert queued is not reader
    release.set()
    qtbot.waitUntil(lambda: not runner.busy(), timeout=10_000)
    assert order == ["read", "import", "score"]


def test_shutdown_cancels_and_waits(qtbot) -> None:
    runner = JobRunner()
    outcome: list[str] = []
    running = threading.Event()

    def job(progress: ProgressFn, cancel: threading.Event) -> None:
        running.set()
        cancel.wait(timeout=30)
        try:
            check_cancel(cancel)
        except Cancelled:
            outcome.append("cancelled")
            raise

    runner.start("job", job)
    qtbot.waitUntil(running.is_set, timeout=10_000)
    assert runner.shutdown(timeout_ms=10_000)
    qtbot.waitUntil(lambda: outcome == ["cancelled"], timeout=10_000)

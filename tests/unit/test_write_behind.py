"""WriteBehind runs steps in order on one worker thread, at most one step queued behind."""

from __future__ import annotations

import threading

import pytest

from churndesk.services.write_behind import WriteBehind


def test_steps_run_in_order_on_one_other_thread() -> None:
    threads: list[str] = []
    with WriteBehind[int]("probe") as pipeline:
        for i in range(5):
            pipeline.submit(lambda i=i: threads.append(threading.current_thread().name) or i)
        assert pipeline.finish() == [0, 1, 2, 3, 4]
    assert len(set(threads)) == 1
    assert threads[0].startswith("probe") and threads[0] != threading.current_thread().name


def test_submit_waits_while_two_steps_are_unfinished() -> None:
    release = threading.Event()
    third_submitted = threading.Event()
    with WriteBehind[int]() as pipeline:
        pipeline.submit(lambda: release.wait(timeout=60) and 1)
        pipeline.submit(lambda: 2)  # queued behind the blocked first step

        def submit_third() -> None:
            pipeline.submit(lambda: 3)
            third_submitted.set()

        submitter = threading.Thread(target=submit_third)
        submitter.start()
        # The third submit is held back until the first step finishes.
        assert not third_submitted.wait(timeout=0.2)
        release.set()
        assert third_submitted.wait(timeout=60)
        submitter.join()
        assert pipeline.finish() == [1, 2, 3]


def test_a_failed_step_is_raised_to_the_submitter() -> None:
    def broken() -> int:
        raise RuntimeError("the server went away")

    with WriteBehind[int]() as pipeline:
        pipeline.submit(broken)
        pipeline.submit(lambda: 2)
        with pytest.raises(RuntimeError, match="went away"):
            pipeline.submit(lambda: 3)  # the oldest result is collected here


def test_leaving_on_an_error_waits_for_the_running_step() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        release.wait(timeout=60)
        finished.set()
        return 1

    with pytest.raises(KeyError), WriteBehind[int]() as pipeline:
        pipeline.submit(slow)
        assert started.wait(timeout=60)
        threading.Timer(0.05, release.set).start()
        raise KeyError("the reader failed")
    assert finished.is_set()  # the connection was idle again before the caller went on

"""The garbage collector runs less often during bulk work and as before afterwards."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from churndesk.services.collection import BULK_THRESHOLD, fewer_collections


@pytest.fixture(autouse=True)
def default_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_thresholds_are_raised_for_the_body_and_restored() -> None:
    with fewer_collections():
        assert gc.get_threshold() == (BULK_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_nested_uses_restore_only_when_the_outermost_ends() -> None:
    with fewer_collections():
        with fewer_collections():
            pass
        assert gc.get_threshold()[0] == BULK_THRESHOLD
    assert gc.get_threshold()[0] == 700


def test_an_error_in_the_body_restores_the_thresholds() -> None:
    with pytest.raises(ZeroDivisionError), fewer_collections():
        1 / 0  # noqa: B018
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_threads_leave_the_original_thresholds() -> None:
    """Two imports on two threads, the first ending before the second."""
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []

    def first() -> None:
        with fewer_collections():
            first_in.set()
            second_in.wait()
        first_out.set()

    def second() -> None:
        first_in.wait()
        with fewer_collections():
            second_in.set()
            first_out.wait()
            seen.append(gc.get_threshold()[0])

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [BULK_THRESHOLD]  # still raised after the first one ended
    assert gc.get_threshold() == (700, 10, 10)


def test_a_larger_threshold_set_by_the_application_is_kept() -> None:
    gc.set_threshold(BULK_THRESHOLD * 2, 10, 10)
    with fewer_collections():
        assert gc.get_threshold()[0] == BULK_THRESHOLD * 2

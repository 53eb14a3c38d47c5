"""prefetch: the same items in the same order, errors where they happened, clean early stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from churndesk.services.prefetch import prefetch


def test_yields_every_item_in_order_computed_on_another_thread() -> None:
    threads: list[str] = []

    def numbers() -> Iterator[int]:
        for n in range(100):
            threads.append(threading.current_thread().name)
            yield n

    assert list(prefetch(numbers(), depth=3, name="reader")) == list(range(100))
    assert set(threads) == {"reader"}


def test_an_error_in_the_source_is_raised_at_its_item() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("row 3 is broken")

    seen = []
    with pytest.raises(ValueError, match="row 3 is broken"):
        for item in prefetch(failing()):
            seen.append(item)
    assert seen == [1, 2]


def test_stopping_early_closes_the_source_on_its_own_thread() -> None:
    closed_on: list[str] = []
    produced: list[int] = []

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                produced.append(n)
                yield n
                n += 1
        finally:
            closed_on.append(threading.current_thread().name)

    for item in prefetch(endless(), depth=2, name="reader"):
        if item == 5:
            break
    assert closed_on == ["reader"]
    # The producer ran at most depth + 1 items ahead of the consumer before it stopped.
    assert len(produced) <= 6 + 2 + 1


def test_an_error_in_the_consumer_stops_the_producer() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            while True:
                yield 0
        finally:
            closed.set()

    with pytest.raises(RuntimeError):
        for _ in prefetch(endless()):
            raise RuntimeError("consumer failed")
    assert closed.is_set()

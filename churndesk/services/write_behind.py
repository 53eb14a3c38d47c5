"""Run a connection's writes on one worker thread, one step behind the code that prepares them.

An import parses and validates a chunk in Python while the database server saves the chunk
before it: on two cores the two overlap instead of taking turns. Steps run in the order they
were submitted, one at a time, so the connection is only ever used by one thread at once; at
most one step waits behind the running one, which bounds the memory held by prepared chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")


class WriteBehind(Generic[T]):
    """Submit steps with :meth:`submit`, collect their results with :meth:`finish`.

    Use as a context manager: leaving it, on success or on an error, waits for the steps still
    running, so the caller's transaction is idle before it commits or rolls back. A step's
    exception is raised again by the next :meth:`submit` or by :meth:`finish`.
    """

    def __init__(self, name: str = "write-behind") -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: list[Future[T]] = []
        self._results: list[T] = []

    def __enter__(self) -> WriteBehind[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, step: Callable[[], T]) -> None:
        """Queue ``step``; first waits until at most one earlier step is unfinished."""
        while len(self._pending) > 1:
            self._results.append(self._pending.pop(0).result())
        self._pending.append(self._pool.submit(step))

    def finish(self) -> list[T]:
        """Wait for every step; their results in submission order."""
        while self._pending:
            self._results.append(self._pending.pop(0).result())
        return self._results

    def close(self) -> None:
        """Wait for running steps, dropping queued ones, and stop the worker thread."""
        for future in self._pending:
            future.cancel()
        for future in self._pending:
            if not future.cancelled():
                future.exception()  # waits; the error, if any, was or will be reported
        self._pending.clear()
        self._pool.shutdown(wait=True)

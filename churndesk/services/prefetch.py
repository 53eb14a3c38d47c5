"""Compute the next item of an iterator on a background thread while the caller uses this one.

Scoring reads customers and computes their scores in turns; the database does much of the
reading in C with the GIL released (SQLite's ``sqlite3_step``, PostgreSQL in its own process),
so reading chunk k+1 while chunk k is scored uses the second core instead of waiting.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_END = object()
_POLL_S = 0.05  # how often a blocked producer looks whether the consumer has gone


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(items: Iterator[T], *, depth: int = 1, name: str = "prefetch") -> Iterator[T]:
    """Yield what ``items`` yields, in order, with up to ``depth`` items computed ahead.

    An exception raised by ``items`` is raised here, at the item where it happened. When the
    caller stops early (break, an exception, or closing this generator) the producer stops
    after the item it is computing and ``items`` is closed on the producer's thread, so a
    generator holding a database connection releases it where it was opened.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()

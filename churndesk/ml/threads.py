"""How many OpenMP threads scikit-learn's gradient boosting may use while we train or score."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def default_threads() -> int:
    """All cores but one (at least one): the GUI thread and other jobs keep a core.

    Measured on a loaded 2-core machine: one 3-fold HGB training took 64 s with OpenMP's
    default two busy-waiting threads competing with other processes, and 6 s with one thread.
    """
    return max(1, (os.cpu_count() or 2) - 1)


@contextmanager
def limited_threads(threads: int | None) -> Iterator[int]:
    """Limit OpenMP threads (HistGradientBoosting's fit and predict) inside the block.

    The limit is process-wide while the block runs (threadpoolctl has no per-thread limit).
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    count = default_threads() if threads is None else max(1, int(threads))
    with threadpool_limits(limits=count, user_api="openmp"):
        yield count

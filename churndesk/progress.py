"""Progress reporting and cancellation for long computations, with no Qt.

Services and ML functions take ``progress(fraction, text)`` and a ``cancel`` token
(a ``threading.Event``); they call :func:`check_cancel` between chunks. Stages split one bar,
as Orange's ``wrap_callback`` does, so a job shows one smooth progress bar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from churndesk.errors import Cancelled

ProgressFn = Callable[[float, str], None]


def no_progress(fraction: float, text: str) -> None:
    """The default progress callback: ignore."""


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise :class:`Cancelled` if the user asked to stop."""
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def stage(progress: ProgressFn | None, start: float, end: float) -> ProgressFn:
    """Map a stage's own 0..1 progress onto ``start..end`` of the parent bar."""
    parent = progress or no_progress
    span = end - start

    def report(fraction: float, text: str) -> None:
        parent(start + span * min(max(fraction, 0.0), 1.0), text)

    return report


def step_name(text: str) -> str:
    """The step a progress text belongs to: its first word ("Reading", "Saving", ...). The
    texts of one step start with the same word and say how far it got after it."""
    return text.split(" ", 1)[0]


class Throttled:
    """Forward progress only when the whole percentage changes (Orange's TaskState), or the
    step does: a text starting with another word ("Reading", then "Saving") always gets through.
    """

    def __init__(self, progress: ProgressFn | None) -> None:
        self._progress = progress or no_progress
        self._last = -1
        self._step = ""

    def __call__(self, fraction: float, text: str) -> None:
        if self.passes(fraction, text):
            self._progress(fraction, text)

    def passes(self, fraction: float, text: str) -> bool:
        """Whether this update is one to forward; records it if so."""
        percent = int(fraction * 100)
        step = step_name(text)
        if percent == self._last and step == self._step:
            return False
        self._last = percent
        self._step = step
        return True

"""Live updates: one app-wide ``data_changed`` signal fed by this process and other desktops.

On PostgreSQL a listener thread LISTENs for other desktops' NOTIFYs; on every backend the
services' in-process announcements arrive too. Bursts are coalesced into one signal so a
thousand quick edits cause one refresh, not a thousand.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import fields
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from churndesk.services import changes as change_feed
from churndesk.services.changes import Changes

log = logging.getLogger(__name__)

COALESCE_MS = 300


def merge(a: Changes, b: Changes) -> Changes:
    """One Changes that says everything either of ``a`` and ``b`` says."""
    ids = tuple(sorted(set(a.customer_ids) | set(b.customer_ids)))
    flags = {
        f.name: getattr(a, f.name) or getattr(b, f.name)
        for f in fields(Changes)
        if f.type in ("bool", bool)
    }
    return Changes(customer_ids=ids, initiator=b.initiator, **flags)


class LiveUpdates(QObject):
    """Emits ``data_changed(Changes)`` on the GUI thread, at most every COALESCE_MS."""

    data_changed = Signal(object)
    _arrived = Signal(object)

    def __init__(self, engine: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine = engine
        self._pending: Changes | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(COALESCE_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        # Emitted from any thread; Qt queues it to this GUI-thread object.
        self._arrived.connect(self._on_arrived)
        self._stop = threading.Event()
        self.listening = threading.Event()
        self._thread: threading.Thread | None = None
        change_feed.add_listener(self._on_changes_any_thread)
        if engine.dialect.name == "postgresql":
            self._thread = threading.Thread(
                target=change_feed.listen_postgres,
                args=(engine, self._on_changes_any_thread, self._stop),
                kwargs={"ready": self.listening},
                name="churndesk-listen",
                daemon=True,
            )
            self._thread.start()

    def _on_changes_any_thread(self, changes: Changes) -> None:
        self._arrived.emit(changes)

    @Slot(object)
    def _on_arrived(self, changes: Changes) -> None:
        self._pending = changes if self._pending is None else merge(self._pending, changes)
        if not self._timer.isActive():
            self._timer.start()

    @Slot()
    def _on_timer_timeout(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self.data_changed.emit(pending)

    def stop(self) -> None:
        change_feed.remove_listener(self._on_changes_any_thread)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

"""What changed, announced to every open desktop: NOTIFY on PostgreSQL, in-process on SQLite.

Services call :func:`publish` inside their write transaction. PostgreSQL delivers a NOTIFY only
when that transaction commits, so listeners never hear of a change that was rolled back; on
SQLite the in-process listeners are called after commit via a session/connection hook.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from sqlalchemy import Connection, Engine, event, text

log = logging.getLogger(__name__)

CHANNEL = "churndesk_changes"
# NOTIFY payloads are limited to 8000 bytes; beyond a few ids a "many changed" flag is enough.
MAX_IDS_IN_PAYLOAD = 200
# Tells this process's own NOTIFYs apart: it has already heard them in-process.
PROCESS_ID = uuid.uuid4().hex


@dataclass(frozen=True)
class Changes:
    """Which kinds of data changed; panes refresh what they show of these."""

    customers: bool = False
    customer_ids: tuple[int, ...] = ()
    models: bool = False
    scores: bool = False
    alerts: bool = False
    notifications: bool = False
    settings: bool = False
    initiator: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        if len(self.customer_ids) > MAX_IDS_IN_PAYLOAD:
            data["customer_ids"] = []
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, payload: str) -> Changes:
        data = json.loads(payload)
        data["customer_ids"] = tuple(data.get("customer_ids") or ())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


Listener = Callable[[Changes], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def add_listener(listener: Listener) -> None:
    """Hear about changes made in this process (all backends) once they are committed."""
    with _lock:
        _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def _deliver(changes: Changes) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(changes)
        except Exception:  # one broken listener must not stop the others
            log.exception("change listener failed")


_PENDING = "churndesk_pending_changes"
_hooked_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def publish(connection: Connection, changes: Changes) -> None:
    """Announce ``changes`` when the current transaction of ``connection`` commits.

    Does not commit. On PostgreSQL other desktops LISTENing on CHANNEL get the payload; in this
    process listeners hear it after commit on every backend, and never after a rollback.
    """
    if not changes.initiator:
        changes = replace(changes, initiator=PROCESS_ID)
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": changes.to_json()},
        )
    _hook(connection.engine)
    connection.info.setdefault(_PENDING, []).append(changes)


def _hook(engine: Engine) -> None:
    with _lock:
        if engine in _hooked_engines:
            return
        _hooked_engines.add(engine)
    event.listen(engine, "commit", _on_commit)
    event.listen(engine, "rollback", _on_rollback)


def _on_commit(connection: Connection) -> None:
    for changes in connection.info.pop(_PENDING, []):
        _deliver(changes)


def _on_rollback(connection: Connection) -> None:
    if connection.invalidated:
        # The server connection was lost; asking for its info would raise, and the changes
        # pending on it are stale at worst (a needless refresh).
        return
    connection.info.pop(_PENDING, None)


def listen_postgres(
    engine: Engine,
    on_changes: Listener,
    stop: threading.Event,
    *,
    poll_s: float = 0.5,
    retry_s: float = 2.0,
    ready: threading.Event | None = None,
) -> None:
    """Deliver changes announced by other processes until ``stop`` is set (blocks).

    Runs on a thread of its own with a dedicated autocommit connection. A dropped connection
    is re-opened after ``retry_s``; changes made meanwhile are missed, so callers refresh
    fully after a reconnect (``Changes(customers=True, ...)`` is delivered then).
    """
    import psycopg  # only PostgreSQL desktops listen; SQLite ones never pay for the import

    url = engine.url.set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    first = True
    while not stop.is_set():
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                if ready is not None:
                    ready.set()
                if not first:
                    on_changes(Changes(customers=True, scores=True, alerts=True, models=True))
                first = False
                while not stop.is_set():
                    for notify in conn.notifies(timeout=poll_s):
                        try:
                            changes = Changes.from_json(notify.payload)
                        except (ValueError, TypeError):
                            log.warning("ignoring malformed change notice %r", notify.payload)
                            continue
                        if changes.initiator != PROCESS_ID:
                            on_changes(changes)
        except psycopg.Error as exc:
            log.warning("change listener lost its connection (%s); retrying", exc)
            stop.wait(retry_s)

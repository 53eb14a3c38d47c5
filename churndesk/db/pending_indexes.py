"""Indexes a PostgreSQL bulk load leaves to build after its commit, and the sessions building them.

Rebuilding the 13 secondary indexes of a million customers one after the other inside the
load's transaction took about 40 s on a 2-core machine, with the table locked against every
other desktop's reads all along. One CREATE INDEX uses one core (GIN builds never run in
parallel before PostgreSQL 18), and only another session could use the second, but another
session cannot see rows before they are committed. So the load commits its rows with the
indexes it dropped recorded in ``pending_indexes`` (same transaction), and :func:`build_pending`
then builds them in two sessions at once: about 26 s. Meanwhile other desktops read the new
rows (slower, without the indexes); their writes wait for each build's SHARE lock.

Each build deletes its row in the transaction that creates the index, so a crash, a lost
connection or a closed app leaves every dropped index either built or still listed; whoever
runs :func:`build_pending` next (the next import, or the desktop app at start) finishes them.
Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so builders in several processes share the
work instead of building an index twice. Building needs the table's owner, as dropping did.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from churndesk.db.locks import owns_table
from churndesk.errors import Cancelled, ChurndeskError
from churndesk.progress import ProgressFn, no_progress

log = logging.getLogger(__name__)

#: CREATE INDEX sessions at once. The machines churndesk is measured on have 2 cores; a third
#: session made the million-customer rebuild slower (30.6 s against 26.1 s).
BUILD_SESSIONS = 2
#: PostgreSQL sorts for CREATE INDEX in this much memory (the server default is 64 MB); a GIN
#: build accumulates its entries in it too. Per session.
PG_BUILD_MEMORY = "256MB"
#: Rough cost of building an index of each kind relative to a B-tree (a trigram GIN index of a
#: million e-mail addresses takes 10 s, a B-tree 1-2 s): biggest first, and weights for progress.
BUILD_WEIGHTS = {"gin": 4.0}
BUILD_TEXT = "Rebuilding the customer indexes"


@dataclass(frozen=True)
class PendingIndex:
    name: str
    table: str
    definition: str

    @property
    def weight(self) -> float:
        return BUILD_WEIGHTS.get(index_method(self.definition), 1.0)


def index_method(definition: str) -> str:
    """The access method of a CREATE INDEX statement ("btree" when it names none)."""
    words = definition.lower().split()
    return words[words.index("using") + 1] if "using" in words else "btree"


def defer(connection: Connection, table: str, indexes: Sequence[tuple[str, str]]) -> None:
    """Record (name, definition) of indexes dropped from ``table``, in the caller's transaction.

    An index listed already (built by hand while its row stayed) keeps its row.
    """
    if indexes:
        connection.execute(
            text(
                "INSERT INTO pending_indexes (name, table_name, definition) "
                "VALUES (:name, :table, :definition) ON CONFLICT (name) DO NOTHING"
            ),
            [{"name": n, "table": table, "definition": d} for n, d in indexes],
        )


def pending(engine: Engine, *, owned: bool = False) -> list[PendingIndex]:
    """The indexes waiting to be built (none on SQLite, whose loads rebuild before commit);
    with ``owned`` only those of tables this login owns, which it alone may build."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        listed = _listed(connection)
        if owned:
            mine = {t for t in {p.table for p in listed} if owns_table(connection, t)}
            listed = [p for p in listed if p.table in mine]
        return listed


def _listed(connection: Connection) -> list[PendingIndex]:
    rows = connection.exec_driver_sql(
        "SELECT name, table_name, definition FROM pending_indexes ORDER BY name"
    ).all()
    return [PendingIndex(*row) for row in rows]


def build_pending(
    engine: Engine,
    *,
    sessions: int = BUILD_SESSIONS,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Build the pending indexes of tables this login owns, ``sessions`` at a time.

    Returns how many this call built. ``progress`` gets (share, text) from this thread as
    indexes finish; ``cancel`` stops taking new indexes (those being built finish) and raises
    Cancelled. Raises ChurndeskError when a build fails; that index stays pending.
    """
    report = progress or no_progress
    if engine.dialect.name != "postgresql":
        return 0
    todo = pending(engine, owned=True)
    if not todo:
        return 0
    total = sum(p.weight for p in todo)
    report(0.0, BUILD_TEXT)
    events: queue.SimpleQueue[PendingIndex | BaseException | None] = queue.SimpleQueue()
    stop = threading.Event()
    tables = sorted({p.table for p in todo})
    workers = [
        threading.Thread(
            target=_builder, args=(engine, tables, events, stop, cancel), name=f"index-build-{i}"
        )
        for i in range(max(1, min(sessions, len(todo))))
    ]
    for worker in workers:
        worker.start()
    running, built, done = len(workers), 0, 0.0
    failure: BaseException | None = None
    while running:
        event = events.get()
        if event is None:
            running -= 1
        elif isinstance(event, PendingIndex):
            built += 1
            done += event.weight
            report(min(done / total, 1.0), BUILD_TEXT)
        else:
            failure = failure or event
            stop.set()  # the others finish the index they are on and stop
    for worker in workers:
        worker.join()
    if failure is not None:
        raise failure
    check_cancelled(cancel)
    return built


def check_cancelled(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("Stopped; the remaining indexes are built next time.")


def _builder(
    engine: Engine,
    tables: list[str],
    events: queue.SimpleQueue[PendingIndex | BaseException | None],
    stop: threading.Event,
    cancel: threading.Event | None,
) -> None:
    """One session: claim the biggest unclaimed index, build it, delete its row; repeat."""
    try:
        with engine.connect() as connection:
            while not stop.is_set() and not (cancel is not None and cancel.is_set()):
                with connection.begin():
                    claimed = _claim(connection, tables)
                    if claimed is None:
                        return
                    _build(connection, claimed)
                events.put(claimed)
    except BaseException as exc:  # reported to the calling thread, which raises it
        events.put(exc)
    finally:
        events.put(None)


def _claim(connection: Connection, tables: list[str]) -> PendingIndex | None:
    row = connection.execute(
        text(
            "SELECT name, table_name, definition FROM pending_indexes "
            "WHERE table_name = ANY(:tables) "
            "ORDER BY lower(definition) LIKE '% using gin %' DESC, name "
            "LIMIT 1 FOR UPDATE SKIP LOCKED"
        ),
        {"tables": tables},
    ).first()
    return PendingIndex(*row) if row is not None else None


def _build(connection: Connection, index: PendingIndex) -> None:
    connection.execute(
        text("SELECT set_config('maintenance_work_mem', :v, true)"), {"v": PG_BUILD_MEMORY}
    )
    exists = connection.execute(
        text("SELECT to_regclass(:name) IS NOT NULL"),
        {"name": connection.dialect.identifier_preparer.quote(index.name)},
    ).scalar_one()
    try:
        if not exists:  # built by hand meanwhile: only the row is left to remove
            connection.exec_driver_sql(index.definition)
    except DBAPIError as exc:
        log.warning("building index %s failed: %s", index.name, exc.orig)
        raise ChurndeskError(
            f"The index {index.name} of the {index.table} table could not be built; searches "
            "and sorting on it stay slow until it is. It is tried again the next time churndesk "
            "opens this database or imports customers.",
            details=str(exc.orig),
        ) from exc
    connection.execute(text("DELETE FROM pending_indexes WHERE name = :name"), {"name": index.name})
    log.info("built pending index %s", index.name)

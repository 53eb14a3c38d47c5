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
from churndesk.errors import ChurndeskError
from churndesk.progress import ProgressFn, check_cancel, no_progress

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
    events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
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
    watch = _Watch(engine)
    try:
        while running:
            try:
                event = events.get(timeout=PROGRESS_POLL_SECONDS)
            except queue.Empty:
                if watch.poll():
                    report(min((done + watch.partial()) / total, 0.999), BUILD_TEXT)
                continue
            if event is None:
                running -= 1
            elif isinstance(event, _Started):
                watch.started(event.pid, event.index)
            elif isinstance(event, PendingIndex):
                watch.finished(event)
                built += 1
                done += event.weight
                report(min((done + watch.partial()) / total, 1.0), BUILD_TEXT)
            else:
                failure = failure or event
                stop.set()  # the others finish the index they are on and stop
    finally:
        watch.close()
    for worker in workers:
        worker.join()
    if failure is not None:
        raise failure
    check_cancel(cancel)  # the indexes not begun stay listed for next time
    return built


@dataclass(frozen=True)
class _Started:
    """A builder session (backend ``pid``) claimed ``index`` and is building it."""

    pid: int
    index: PendingIndex


#: From builders to the calling thread: started, built (the index), failed (the exception),
#: or None when a builder stops.
_Event = _Started | PendingIndex | BaseException | None

#: While indexes are being built, how often the calling thread reads how far they are.
PROGRESS_POLL_SECONDS = 1.0


def build_share(
    phase: str, blocks_done: int, blocks_total: int, tuples_done: int, tuples_total: int
) -> float:
    """How far one CREATE INDEX is (0-0.99), from its row in pg_stat_progress_create_index.

    A B-tree build scans the table, sorts, then loads the sorted tuples into the tree (about
    70 % of its time is the scan and the sort at a million customers); a GIN build reports
    only its scan, which is nearly all of it.
    """
    blocks = blocks_done / blocks_total if blocks_total > 0 else 0.0
    if "loading tuples" in phase:
        return 0.7 + 0.29 * (tuples_done / tuples_total if tuples_total > 0 else 0.0)
    if "sorting" in phase:
        return 0.7
    if "scanning table" in phase:
        return 0.7 * blocks
    return 0.95 * blocks


class _Watch:
    """Reads the server's progress of the builds under way, for a bar that moves during a
    long one (a trigram index of a million e-mail addresses: 10 s). Gives up quietly if the
    server does not tell (progress only; the builds are not affected)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._building: dict[int, PendingIndex] = {}
        self._shares: dict[str, float] = {}
        self._broken = False

    def started(self, pid: int, index: PendingIndex) -> None:
        self._building[pid] = index
        self._shares[index.name] = 0.0

    def finished(self, index: PendingIndex) -> None:
        self._building = {p: i for p, i in self._building.items() if i.name != index.name}
        self._shares.pop(index.name, None)

    def partial(self) -> float:
        """The weight of the indexes under way, each by its share done."""
        return sum(i.weight * self._shares.get(i.name, 0.0) for i in self._building.values())

    def poll(self) -> bool:
        """Read the builds' progress; whether there was any to read."""
        if self._broken or not self._building:
            return False
        try:
            if self._connection is None:
                # Autocommit: each read is its own transaction, else the server would show the
                # same snapshot of its backends every time.
                self._connection = self._engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                )
            rows = self._connection.execute(
                text(
                    "SELECT pid, phase, blocks_done, blocks_total, tuples_done, tuples_total "
                    "FROM pg_stat_progress_create_index WHERE pid = ANY(:pids)"
                ),
                {"pids": list(self._building)},
            ).all()
        except DBAPIError as exc:
            log.info("index build progress unavailable: %s", exc.orig)
            self._broken = True
            return False
        for pid, phase, blocks_done, blocks_total, tuples_done, tuples_total in rows:
            index = self._building.get(int(pid))
            if index is not None:
                share = build_share(
                    str(phase),
                    blocks_done or 0,
                    blocks_total or 0,
                    tuples_done or 0,
                    tuples_total or 0,
                )
                # Phases restart their counters; the bar only moves forward.
                self._shares[index.name] = max(self._shares.get(index.name, 0.0), share)
        return True

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def _builder(
    engine: Engine,
    tables: list[str],
    events: queue.SimpleQueue[_Event],
    stop: threading.Event,
    cancel: threading.Event | None,
) -> None:
    """One session: claim the biggest unclaimed index, build it, delete its row; repeat."""
    try:
        with engine.connect() as connection:
            pid = int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            connection.commit()
            while not stop.is_set() and not (cancel is not None and cancel.is_set()):
                with connection.begin():
                    claimed = _claim(connection, tables)
                    if claimed is None:
                        return
                    events.put(_Started(pid, claimed))
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

"""Score every customer with the active model, atomically, one run per database at a time.

A run streams customers in id-ordered chunks, predicts, finds each customer's top drivers and
writes the results into a temporary staging table on its own connection (invisible to everyone
else). One final transaction then appends the history rows, updates every customer's current
score and marks the run completed, so other desktops see either the previous complete run or
the new one, never a mix. A cancelled, failed or killed run leaves nothing but its run row.

One run at a time per database: a PostgreSQL advisory lock (released by the server if the
process dies) or, on SQLite, an OS lock on a file beside the database (released by the OS).
A run row still marked running without a lock holder belongs to a dead process and is marked
failed by the next run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, Engine, Index, select, text, update
from sqlalchemy.schema import CreateIndex, DropIndex

from churndesk.db.bulk import insert_rows
from churndesk.db.engine import begin_write, busy_explained, take_write_lock
from churndesk.db.maintenance import refresh_statistics
from churndesk.db.models import CustomerScore, ScoringRun
from churndesk.errors import Cancelled, ChurndeskError, ConflictError, NotFoundError
from churndesk.progress import ProgressFn, Throttled, check_cancel, stage
from churndesk.services import audit, current_scores, history
from churndesk.services.changes import Changes, publish
from churndesk.services.customer_frames import (
    BASE_COLUMNS,
    customer_count,
    iter_customer_frames,
    normalise_frame,
)
from churndesk.services.models import (
    LoadedModel,
    load_active_model,
    population_stability,
    score_histogram,
)
from churndesk.services.prefetch import prefetch
from churndesk.services.settings import ScoringSettings, scoring_settings

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: pg_advisory_lock key: "churndesk scoring" (any fixed 64-bit number works).
ADVISORY_LOCK_KEY = 0x63686E5F73636F72
DEFAULT_CHUNK = 50_000
STAGE_COLUMNS = ("customer_id", "score", "band", "drivers", "revenue_at_risk")
DRIVER_COUNT = 3

AfterRun = Callable[[Engine, int], Any]


@dataclass(frozen=True)
class RunSummary:
    id: int
    model_version_id: int
    model_label: str
    status: str
    started_by: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    customers_scored: int
    band_counts: dict[str, int]
    psi: float | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model_version_id": self.model_version_id,
            "model": self.model_label,
            "status": self.status,
            "started_by": self.started_by,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "customers_scored": self.customers_scored,
            "band_counts": self.band_counts,
            "psi": self.psi,
            "error": self.error,
        }


# --------------------------------------------------------------------------- locking


def _sqlite_lock_path(engine: Engine) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(f"{database}.scoring-lock")


@contextmanager
def _run_lock(engine: Engine) -> Iterator[bool]:
    """Hold the database-wide scoring lock; yields False if another run holds it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            got = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                ).scalar()
            )
            connection.commit()
            try:
                yield got
            finally:
                if got:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY}
                    )
                    connection.commit()
        return
    path = _sqlite_lock_path(engine)
    if path is None:
        yield True
        return
    import fcntl  # POSIX; the OS drops the lock when the process dies

    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def _busy_message(engine: Engine) -> str:
    with engine.connect() as connection:
        row = connection.execute(
            select(ScoringRun.started_by, ScoringRun.started_at)
            .where(ScoringRun.status == "running")
            .order_by(ScoringRun.id.desc())
            .limit(1)
        ).first()
    if row is None:
        return "Another scoring run is in progress; try again when it has finished."
    started = row[1]
    when = started.strftime("%Y-%m-%d %H:%M") if started else "an unknown time"
    return f"A scoring run started by {row[0] or 'someone'} at {when} is in progress."


# --------------------------------------------------------------------------- scoring maths


@dataclass(frozen=True)
class ChunkScores:
    customer_ids: np.ndarray
    scores: np.ndarray
    bands: np.ndarray
    revenue_at_risk: np.ndarray
    drivers: list[str]  # JSON per customer


#: Driver magnitudes are written with three decimals; larger ones than this are formatted singly.
_MAGNITUDE_STEPS = 100_000


def _drivers_json(
    features: Sequence[str], index: np.ndarray, contribution: np.ndarray
) -> list[str]:
    """Each customer's drivers as a JSON array, assembled column-wise from string tables.

    A million customers times three drivers is three million small JSON objects: formatting
    each in Python took about 4 s per million. Here every (feature, direction) prefix and every
    magnitude rounded to three decimals is formatted once, looked up by index, and the pieces
    are joined by numpy's element-wise string concatenation.
    """
    quoted = [json.dumps(str(name)) for name in features]
    prefix = np.array(
        [
            [f'{{"feature":{q},"direction":"{d}","magnitude":' for d in ("-", "0", "+")]
            for q in quoted
        ],
        dtype=object,
    ).reshape(len(quoted), 3)
    if len(index) == 0:
        return []
    sign = np.sign(contribution).astype(np.int64) + 1
    magnitude = np.nan_to_num(np.abs(contribution))
    steps = np.rint(magnitude * 1000).astype(np.int64)
    top = int(min(int(steps.max(initial=0)), _MAGNITUDE_STEPS))
    table = np.array([f"{k / 1000:g}}}" for k in range(top + 1)], dtype=object)
    out: Any = None
    for j in range(index.shape[1]):
        column = steps[:, j]
        text = table[np.minimum(column, top)]
        large = column > top
        if large.any():
            text[large] = [f"{v:.6g}}}" for v in magnitude[large, j].tolist()]
        part = prefix[index[:, j], sign[:, j]] + text
        out = "[" + part if out is None else out + "," + part
    return list((out + "]").tolist())


def score_frame(loaded: LoadedModel, frame: pd.DataFrame, settings: ScoringSettings) -> ChunkScores:
    """Scores, bands, drivers and revenue at risk of the customers in ``frame``."""
    from churndesk.ml import features, scoring_math

    model = loaded.model
    matrix = features.build_features(frame, model.schema)
    p = scoring_math.probabilities(model, matrix)
    scores = scoring_math.risk_score(p)
    bands = scoring_math.band(scores, settings.band_cutoffs)
    drivers = scoring_math.top_drivers(model, matrix, k=DRIVER_COUNT)
    revenue = frame["monthly_revenue"].to_numpy(dtype=float)
    revenue_at_risk = np.round(p * np.nan_to_num(revenue, nan=0.0) * settings.horizon_months, 2)
    return ChunkScores(
        customer_ids=frame["id"].to_numpy(dtype=np.int64),
        scores=scores,
        bands=bands,
        revenue_at_risk=revenue_at_risk,
        drivers=_drivers_json(drivers.features, drivers.index, drivers.contribution),
    )


def _attribute_columns(loaded: LoadedModel) -> list[str]:
    return [c for c in loaded.model.schema.source_columns if c not in BASE_COLUMNS]


def _base_columns(loaded: LoadedModel) -> list[str]:
    """The customer columns a run reads: the model's, revenue (at risk) and the churn date
    (features are measured at it, see ``features.build_features``). Names, e-mails and ids
    were a fifth of the bytes read for nothing."""
    needed = {"id", "monthly_revenue", "churned_at", *loaded.model.schema.source_columns}
    return [c for c in BASE_COLUMNS if c in needed]


# --------------------------------------------------------------------------- the run


def score_all(
    engine: Engine,
    *,
    model_version: int | str | None = None,
    actor: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    after_run: AfterRun | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> RunSummary:
    """Score every customer with the active model (or ``model_version``) as one atomic run.

    Commits the run row when it starts and everything else in one final transaction; then
    calls ``after_run(engine, run_id)`` (alert evaluation) if given, else the alerts service's
    evaluation when it is installed. Raises ConflictError when another run is in progress,
    NotFoundError when no model is active, Cancelled on cancel (the run is recorded as
    cancelled and nothing else is kept).
    """
    report = Throttled(progress)
    with _run_lock(engine) as locked:
        if not locked:
            raise ConflictError(_busy_message(engine))
        _fail_orphaned_runs(engine)
        loaded = load_active_model(engine, model_version)
        settings = scoring_settings(engine)
        run_id = _start_run(engine, loaded, actor)
        try:
            summary = _execute(engine, run_id, loaded, settings, actor, chunk_size, report, cancel)
        except Cancelled:
            _finish_failed(engine, run_id, "cancelled", "Cancelled by the user.")
            raise
        except Exception as exc:
            _finish_failed(engine, run_id, "failed", str(exc)[:2000])
            raise
    report(1.0, "Scoring finished")
    _after_run(engine, run_id, after_run)
    return summary


def _after_run(engine: Engine, run_id: int, after_run: AfterRun | None) -> None:
    hook = after_run
    if hook is None:
        try:
            from churndesk.services.alerts import ensure_default_rules, evaluate_rules
        except ImportError:
            return

        def hook(engine: Engine, run_id: int) -> Any:
            # A new database starts with the default rules, so alerts work before anyone
            # configures them; a database whose rules were all deleted keeps none.
            ensure_default_rules(engine)
            return evaluate_rules(engine, run_id)

    try:
        hook(engine, run_id)
    except ChurndeskError:
        # The scores are committed and correct; a failed evaluation is retried by the next
        # run or by `churndesk alerts evaluate`, so it must not turn the run into a failure.
        log.exception("alert evaluation after scoring run %s failed", run_id)


def _fail_orphaned_runs(engine: Engine) -> None:
    """Runs marked running while we hold the lock were left by a process that died."""
    with begin_write(engine) as connection:
        connection.execute(
            update(ScoringRun)
            .where(ScoringRun.status == "running")
            .values(
                status="failed",
                finished_at=dt.datetime.now(dt.UTC),
                error="The scoring process stopped before it finished.",
            )
        )


def _start_run(engine: Engine, loaded: LoadedModel, actor: str | None) -> int:
    with begin_write(engine) as connection:
        run_id = connection.execute(
            ScoringRun.__table__.insert()
            .values(
                model_version_id=loaded.summary.id,
                status="running",
                started_by=actor,
                started_at=dt.datetime.now(dt.UTC),
            )
            .returning(ScoringRun.__table__.c.id)
        ).scalar_one()
    return int(run_id)


def _finish_failed(engine: Engine, run_id: int, status: str, error: str) -> None:
    with begin_write(engine) as connection:
        connection.execute(
            update(ScoringRun)
            .where(ScoringRun.id == run_id)
            .values(status=status, finished_at=dt.datetime.now(dt.UTC), error=error)
        )


def _create_stage(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "CREATE TEMPORARY TABLE score_stage (customer_id BIGINT, score DOUBLE PRECISION, "
            "band VARCHAR(16), drivers TEXT, revenue_at_risk DOUBLE PRECISION) ON COMMIT DROP"
        )
    else:
        connection.exec_driver_sql("DROP TABLE IF EXISTS temp.score_stage")
        connection.exec_driver_sql(
            "CREATE TEMPORARY TABLE score_stage (customer_id INTEGER, score REAL, band TEXT, "
            "drivers TEXT, revenue_at_risk REAL)"
        )


def _execute(
    engine: Engine,
    run_id: int,
    loaded: LoadedModel,
    settings: ScoringSettings,
    actor: str | None,
    chunk_size: int,
    report: ProgressFn,
    cancel: threading.Event | None,
) -> RunSummary:
    started = time.perf_counter()
    total = customer_count(engine)
    attributes = _attribute_columns(loaded)
    histogram = np.zeros(len(score_histogram(np.array([0.0]))), dtype=float)
    band_counts: dict[str, int] = {}
    all_scores: list[np.ndarray] = []
    done = 0
    scoring = stage(report, 0.0, 0.85)
    with busy_explained(), engine.connect() as connection:
        # One transaction on one connection from staging to publishing: on PostgreSQL the
        # staging COPYs and the final statements commit (or vanish) together; on SQLite the
        # temporary table lives in the temp schema, so staging takes no lock on the database
        # and readers and other writers carry on until the final statements.
        _create_stage(connection)
        # The next chunk is read on a second thread while this one is scored and staged.
        frames = prefetch(
            iter_customer_frames(
                engine,
                attributes,
                columns=_base_columns(loaded),
                chunk_size=chunk_size,
                cancel=cancel,
            ),
            name="scoring-reader",
        )
        for frame in frames:
            check_cancel(cancel)
            chunk = score_frame(loaded, frame, settings)
            insert_rows(
                connection,
                "score_stage",
                STAGE_COLUMNS,
                zip(
                    chunk.customer_ids.tolist(),
                    chunk.scores.tolist(),
                    chunk.bands.tolist(),
                    chunk.drivers,
                    chunk.revenue_at_risk.tolist(),
                    strict=True,
                ),
                adapt=False,
            )
            all_scores.append(chunk.scores)
            for name, count in zip(
                *np.unique(chunk.bands.astype(str), return_counts=True), strict=True
            ):
                band_counts[str(name)] = band_counts.get(str(name), 0) + int(count)
            done += len(frame)
            scoring(done / max(total, 1), f"Scored {done:,} of {total:,} customers")
        check_cancel(cancel)
        scores = np.concatenate(all_scores) if all_scores else np.empty(0)
        histogram = np.asarray(score_histogram(scores)) if len(scores) else histogram
        psi = (
            population_stability(loaded.score_distribution, tuple(histogram))
            if loaded.score_distribution and len(scores)
            else None
        )
        report(0.86, "Publishing the new scores")
        now = dt.datetime.now(dt.UTC)
        _publish(connection, run_id, loaded, now, done, band_counts, histogram, psi, actor)
        connection.commit()
    refresh_statistics(engine, "customer_scores")
    # The run just appended is read by alert evaluation from the covering run index.
    refresh_statistics(engine, "risk_scores", vacuum=True)
    log.info("scoring run %s: %s customers in %.1f s", run_id, done, time.perf_counter() - started)
    return RunSummary(
        id=run_id,
        model_version_id=loaded.summary.id,
        model_label=loaded.summary.label,
        status="completed",
        started_by=actor,
        started_at=None,
        finished_at=now,
        customers_scored=done,
        band_counts=band_counts,
        psi=psi,
        error=None,
    )


REBUILD_INDEXES_FROM = 50_000
# PostgreSQL: from this share of the scored customers rewritten, the current scores are written
# as a new table instead (``current_scores.replace``). In place, each rewritten row cost ~36 µs
# at a million (a heap tuple and four index entries); the new table costs about a quarter of
# rewriting them all, whatever the share.
REPLACE_SHARE = 0.25

# A staged score differs from the current one (or the trend still shows the move before it).
_CHANGED = (
    "cs.risk_score {differs} s.score OR cs.risk_band {differs} s.band OR "
    "cs.revenue_at_risk {differs} s.revenue_at_risk OR "
    # Compared as the text written (``json`` on PostgreSQL, text on SQLite, migration 0008).
    "CAST(cs.drivers AS TEXT) {differs} s.drivers OR "
    "cs.risk_score_prev {differs} cs.risk_score"
)


def _score_indexes() -> list[Index]:
    """The secondary indexes of the current scores, which a run rewrites."""
    return list(CustomerScore.__table__.indexes)


def _find_changes(connection: Connection) -> int:
    """Note the staged customers the run must write (``score_changes``); returns how many.

    New customers (``new``) and those whose score, band, revenue at risk or drivers moved, or
    whose trend still shows the move before. Comparing a million staged scores with the
    current ones is seconds of work: done once here, not again by each statement that writes.
    """
    sqlite = connection.dialect.name == "sqlite"
    changed = _CHANGED.format(differs="IS NOT" if sqlite else "IS DISTINCT FROM")
    if sqlite:
        connection.exec_driver_sql("DROP TABLE IF EXISTS temp.score_changes")
    connection.exec_driver_sql(
        "CREATE TEMPORARY TABLE score_changes "
        f"{'' if sqlite else 'ON COMMIT DROP '}AS "
        "SELECT s.customer_id, cs.customer_id IS NULL AS new FROM score_stage s "
        "LEFT JOIN customer_scores cs ON cs.customer_id = s.customer_id "
        f"WHERE cs.customer_id IS NULL OR {changed}"
    )
    if not sqlite:
        # Temporary tables are never analysed automatically; the joins below need its size.
        connection.exec_driver_sql("ANALYZE score_changes")
    return int(connection.exec_driver_sql("SELECT count(*) FROM score_changes").scalar_one())


def _publish(
    connection: Connection,
    run_id: int,
    loaded: LoadedModel,
    now: dt.datetime,
    scored: int,
    band_counts: dict[str, int],
    histogram: np.ndarray,
    psi: float | None,
    actor: str | None,
) -> None:
    """The one transaction that makes the run visible: history, current scores, run row."""
    sqlite = connection.dialect.name == "sqlite"
    # Staging went to a temporary table; the database itself is locked only from here on.
    take_write_lock(connection)
    params = {"run": run_id, "model": loaded.summary.id, "now": _db_time(connection, now)}
    # Customers deleted while the run computed have no row to update and get no history; the
    # lock keeps a deletion from slipping between this statement's snapshot and the commit.
    history.lock_for_append(connection)
    # In customer order, the run's entries go to the end of the run index one after another.
    connection.execute(
        text(
            "INSERT INTO risk_scores (customer_id, run_id, model_version_id, score, band, "
            "revenue_at_risk, scored_at) SELECT s.customer_id, :run, :model, s.score, "
            "s.band, s.revenue_at_risk, :now FROM score_stage s "
            "JOIN customers c ON c.id = s.customer_id ORDER BY s.customer_id"
        ),
        params,
    )
    # Only customers whose score, band, revenue at risk or drivers moved (or whose trend still
    # shows the move before) are rewritten. With the same model and unchanged customers the scores
    # are identical from one run to the next, and rewriting a million unchanged rows is most of
    # a daily run.
    rewrites = _find_changes(connection)
    if sqlite:
        _write_current_scores(connection, params["now"], rewrites)
    elif not (
        rewrites >= REBUILD_INDEXES_FROM
        and rewrites >= scored * REPLACE_SHARE
        and current_scores.can_replace(connection)
        and current_scores.replace(connection, params["now"])
    ):
        _update_current_scores(connection, params["now"])
    connection.execute(
        update(ScoringRun)
        .where(ScoringRun.id == run_id)
        .values(
            status="completed",
            finished_at=now,
            customers_scored=scored,
            band_counts=band_counts,
            score_distribution={"bins": list(histogram.tolist())},
            psi=psi,
        )
    )
    audit.record(
        connection,
        actor=actor,
        action="score",
        entity="scoring_run",
        entity_id=run_id,
        changes={"customers": scored, "model": loaded.summary.label},
    )
    publish(connection, Changes(customers=True, scores=True))
    if sqlite:
        connection.exec_driver_sql("DROP TABLE IF EXISTS temp.score_stage")
        connection.exec_driver_sql("DROP TABLE IF EXISTS temp.score_changes")


def _staged_drivers(connection: Connection) -> str:
    """The staged drivers (text) as the current-scores column takes them."""
    return "CAST(s.drivers AS JSON)" if connection.dialect.name == "postgresql" else "s.drivers"


def _update_current_scores(connection: Connection, now: Any) -> None:
    """Rewrite the changed current scores in place and add the customers scored first."""
    drivers = _staged_drivers(connection)
    connection.execute(
        text(
            "UPDATE customer_scores AS cs SET risk_score_prev = cs.risk_score, "
            "risk_score = s.score, risk_band = s.band, revenue_at_risk = s.revenue_at_risk, "
            f"drivers = {drivers}, scored_at = :now "
            "FROM score_stage s JOIN score_changes c ON c.customer_id = s.customer_id "
            "WHERE cs.customer_id = s.customer_id AND NOT c.new"
        ),
        {"now": now},
    )
    # Customers scored for the first time (deleted ones are left out by the join).
    connection.execute(
        text(
            "INSERT INTO customer_scores (customer_id, risk_score, risk_band, revenue_at_risk, "
            "drivers, scored_at) SELECT s.customer_id, s.score, s.band, s.revenue_at_risk, "
            f"{drivers}, :now FROM score_stage s "
            "JOIN score_changes c ON c.customer_id = s.customer_id AND c.new "
            "JOIN customers cu ON cu.id = s.customer_id WHERE true ORDER BY s.customer_id "
            # A customer edited meanwhile was rescored by the edit, from newer data.
            "ON CONFLICT (customer_id) DO NOTHING"
        ),
        {"now": now},
    )


def _write_current_scores(connection: Connection, now: Any, rewrites: int) -> None:
    """SQLite: in place, with the score indexes rebuilt around a large rewrite."""
    rebuild = rewrites >= REBUILD_INDEXES_FROM
    if rebuild:
        # Updating a million scores one index entry at a time took SQLite several times longer
        # than rebuilding the three score indexes by sorting. SQLite DDL is transactional:
        # readers keep their snapshot, and a rollback or a killed process restores the indexes.
        for index in _score_indexes():
            connection.execute(DropIndex(index))
    _update_current_scores(connection, now)
    if rebuild:
        for index in _score_indexes():
            connection.execute(CreateIndex(index))


def _db_time(connection: Connection, moment: dt.datetime) -> Any:
    """A timestamp parameter for raw SQL: SQLite gets SQLAlchemy's naive-UTC text format."""
    if connection.dialect.name != "sqlite":
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


# --------------------------------------------------------------------------- one customer


_model_cache: dict[tuple[str, int, str], LoadedModel] = {}
_model_cache_lock = threading.Lock()


def cached_active_model(engine: Engine, connection: Connection | None = None) -> LoadedModel | None:
    """The active model, loaded once per process and model version (None if there is none)."""
    sql = "SELECT id, sha256 FROM model_versions WHERE status = 'active'"
    if connection is not None:
        row = connection.exec_driver_sql(sql).first()
    else:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(sql).first()
    if row is None:
        return None
    key = (str(engine.url), int(row[0]), str(row[1]))
    with _model_cache_lock:
        cached = _model_cache.get(key)
    if cached is None:
        cached = load_active_model(engine)
        with _model_cache_lock:
            _model_cache.clear()  # one active model per process is all we keep
            _model_cache[key] = cached
    return cached


def rescore_customers(
    connection: Connection,
    customer_ids: Sequence[int],
    *,
    engine: Engine | None = None,
) -> int:
    """Score the given customers now, inside the caller's transaction; returns how many.

    Appends a history row (without a run) and updates the current scores. Does nothing when no
    model is active. Does not commit.
    """
    engine = engine or connection.engine
    loaded = cached_active_model(engine, connection)
    if loaded is None or not customer_ids:
        return 0
    settings = scoring_settings(connection)
    frame = _frame_for(connection, customer_ids, _attribute_columns(loaded))
    if frame.empty:
        return 0
    chunk = score_frame(loaded, frame, settings)
    now = dt.datetime.now(dt.UTC)
    rows = [
        (int(cid), int(loaded.summary.id), float(score), str(band), drivers, float(rar), now)
        for cid, score, band, drivers, rar in zip(
            chunk.customer_ids,
            chunk.scores,
            chunk.bands,
            chunk.drivers,
            chunk.revenue_at_risk,
            strict=True,
        )
    ]
    insert_rows(
        connection,
        "risk_scores",
        ("customer_id", "model_version_id", "score", "band", "revenue_at_risk", "scored_at"),
        ([*r[:4], *r[5:]] for r in rows),
    )
    # An upsert both databases understand (SQLite 3.24+): a customer's first score inserts.
    statement = text(
        "INSERT INTO customer_scores AS cs (customer_id, risk_score, risk_band, revenue_at_risk, "
        "drivers, scored_at) VALUES (:id, :score, :band, :rar, :drivers, :now) "
        "ON CONFLICT (customer_id) DO UPDATE SET risk_score_prev = cs.risk_score, "
        "risk_score = excluded.risk_score, risk_band = excluded.risk_band, "
        "revenue_at_risk = excluded.revenue_at_risk, drivers = excluded.drivers, "
        "scored_at = excluded.scored_at"
    )
    stamp = _db_time(connection, now)
    connection.execute(
        statement,
        [
            {
                "id": cid,
                "score": score,
                "band": band,
                "rar": rar,
                # The text a run writes, so the next run finds nothing changed in it.
                "drivers": drivers,
                "now": stamp,
            }
            for cid, _model, score, band, drivers, rar, _now in rows
        ],
    )
    return len(rows)


def _frame_for(
    connection: Connection, customer_ids: Sequence[int], attributes: list[str]
) -> pd.DataFrame:
    import pandas as pd

    from churndesk.services.customer_frames import _json_path

    wanted = [a for a in attributes if a not in BASE_COLUMNS]
    ids = [int(i) for i in customer_ids]
    if connection.dialect.name == "postgresql":
        base = [
            "CAST(monthly_revenue AS DOUBLE PRECISION)" if c == "monthly_revenue" else c
            for c in BASE_COLUMNS
        ]
        extracted = [f"attributes ->> :a{i}" for i in range(len(wanted))]
        keys: dict[str, Any] = {f"a{i}": a for i, a in enumerate(wanted)}
    else:
        base = list(BASE_COLUMNS)
        extracted = [f"json_extract(attributes, :a{i})" for i in range(len(wanted))]
        keys = {f"a{i}": _json_path(a) for i, a in enumerate(wanted)}
    placeholders = ", ".join(f":id{i}" for i in range(len(ids)))
    keys.update({f"id{i}": v for i, v in enumerate(ids)})
    sql = f"SELECT {', '.join(base + extracted)} FROM customers WHERE id IN ({placeholders})"
    rows = connection.execute(text(sql), keys).all()
    frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=list(BASE_COLUMNS) + wanted)
    return normalise_frame(frame, wanted)


def rescore_after_save(session: Any, customer_id: int) -> None:
    """The customer service's after-save hook: rescore an edited or new customer at once."""
    rescore_customers(session.connection(), [customer_id])


# --------------------------------------------------------------------------- history


def _run_summary(row: Any, label: str) -> RunSummary:
    return RunSummary(
        id=row.id,
        model_version_id=row.model_version_id,
        model_label=label,
        status=row.status,
        started_by=row.started_by,
        started_at=row.started_at,
        finished_at=row.finished_at,
        customers_scored=row.customers_scored,
        band_counts=dict(row.band_counts or {}),
        psi=row.psi,
        error=row.error,
    )


def list_runs(engine: Engine, *, limit: int = 50) -> list[RunSummary]:
    """The latest scoring runs, newest first."""
    from churndesk.db.models import ModelVersion

    with engine.connect() as connection:
        rows = connection.execute(
            select(ScoringRun, ModelVersion.name, ModelVersion.version)
            .join(ModelVersion, ModelVersion.id == ScoringRun.model_version_id)
            .order_by(ScoringRun.id.desc())
            .limit(limit)
        ).all()
    return [_run_summary(r, f"{r.name} v{r.version}") for r in rows]


def get_run(engine: Engine, run_id: int) -> RunSummary:
    from churndesk.db.models import ModelVersion

    with engine.connect() as connection:
        row = connection.execute(
            select(ScoringRun, ModelVersion.name, ModelVersion.version)
            .join(ModelVersion, ModelVersion.id == ScoringRun.model_version_id)
            .where(ScoringRun.id == run_id)
        ).first()
    if row is None:
        raise NotFoundError(f"There is no scoring run {run_id}.")
    return _run_summary(row, f"{row.name} v{row.version}")

"""Rule evaluation after a scoring run: set-based SQL over all customers, in one transaction.

The run's scores (with the previous run's band and the rise baselines) of the customers some
rule can act on are first copied into a compact temporary table in one statement. Then, for
each enabled rule, three statements do the work whatever the number of customers: re-arm
(UPDATE the rule's disarmed state rows whose customer fell below threshold minus margin), fire
(INSERT … SELECT the alerts of customers that meet the condition, are in scope, armed and out
of cool-down; ON CONFLICT on the "one unresolved alert per key" index de-duplicates) and disarm
(upsert the state of the customers that just fired). The messages announcing the new alerts
are queued in the same transaction, so an alert is never announced twice nor lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    false,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from churndesk.db.engine import begin_write
from churndesk.db.maintenance import refresh_statistics
from churndesk.db.models import (
    BANDS,
    Alert,
    AlertEvent,
    AlertRuleState,
    Customer,
    RiskScore,
    ScoringRun,
    Timestamp,
)
from churndesk.errors import ConflictError, NotFoundError
from churndesk.services.alert_common import (
    as_utc,
    const,
    read_setting,
    upsert,
    utcnow,
    write_setting,
)
from churndesk.services.alert_rules import RuleView, load_rules
from churndesk.services.changes import Changes, publish
from churndesk.services.notify import Directory, queue_alert_notifications
from churndesk.services.settings import scoring_settings

log = logging.getLogger(__name__)

CUSTOMERS = Customer.__table__
STATE = AlertRuleState.__table__
ALERTS = Alert.__table__
SCORES = RiskScore.__table__
RUNS = ScoringRun.__table__
LAST_EVALUATED_KEY = "alerts.last_evaluated_run_id"
# Any constant: it only has to be the same in every process evaluating this database.
EVALUATION_LOCK_ID = 716_006_002
#: Alerts created plus states re-armed from which an evaluation refreshes planner statistics.
STATISTICS_AFTER_CHANGES = 1000


@dataclass(frozen=True)
class RuleOutcome:
    rule_id: int
    name: str
    kind: str
    alerts_created: int
    rearmed: int
    messages_queued: int


@dataclass(frozen=True)
class EvaluationResult:
    """What evaluating the rules over one scoring run did."""

    run_id: int
    evaluated_at: dt.datetime
    rules: tuple[RuleOutcome, ...]
    woken: int
    seconds: float

    @property
    def alerts_created(self) -> int:
        return sum(r.alerts_created for r in self.rules)

    @property
    def messages_queued(self) -> int:
        return sum(r.messages_queued for r in self.rules)

    @property
    def per_rule(self) -> dict[int, int]:
        """Alerts created per rule id."""
        return {r.rule_id: r.alerts_created for r in self.rules}

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "evaluated_at": self.evaluated_at.isoformat(),
            "alerts_created": self.alerts_created,
            "messages_queued": self.messages_queued,
            "woken": self.woken,
            "seconds": round(self.seconds, 3),
            "rules": [r.__dict__ for r in self.rules],
        }


def _json_object(connection: Connection, pairs: list[tuple[str, Any]]) -> ColumnElement[Any]:
    """A JSON object built in SQL from constant keys and column expressions."""
    function = (
        func.jsonb_build_object if connection.dialect.name == "postgresql" else func.json_object
    )
    arguments: list[Any] = []
    for key, value in pairs:
        arguments += [literal_column(f"'{key}'"), value]
    return function(*arguments)


def _number(value: float) -> ColumnElement[float]:
    return cast(literal(float(value)), Float)


def _band_cutoff(connection: Connection, band: str) -> float:
    """The score at which ``band`` starts, from the scoring settings shared by the database."""
    cutoffs = scoring_settings(connection).band_cutoffs
    return float(cutoffs[BANDS.index(band) - 1])


def _scope(rule: RuleView) -> list[ColumnElement[bool]]:
    return [CUSTOMERS.c[key].in_(values) for key, values in rule.scope.items() if values]


# --- The run's scores, read once -----------------------------------------------------------

EVAL_TABLE = "alert_eval_scores"


@dataclass(frozen=True)
class _RunScores:
    """The compact per-evaluation table: one row per customer of the run that a rule can act on.

    The history holds a row per customer for every run kept, so reading a run from it once
    per rule costs seconds at a million customers. This table is read from the run (and the
    previous and baseline runs) in one statement and every rule scans it instead.
    """

    table: FromClause  # the temporary table (or, while building it, the query it is made of)
    baselines: dict[int, str]  # baseline run id -> column holding that run's score

    @property
    def c(self) -> Any:
        return self.table.c


def _baseline_run(connection: Connection, run_id: int, days: int, now: dt.datetime) -> int | None:
    """The earliest completed run within ``days`` before ``now``, other than ``run_id``.

    The rise is measured Prometheus-delta style: latest score minus the score in the earliest
    run of the window (see docs/notifications.md).
    """
    return connection.scalar(
        select(func.min(RUNS.c.id)).where(
            RUNS.c.status == const("completed"),
            RUNS.c.id < run_id,
            func.coalesce(RUNS.c.finished_at, RUNS.c.started_at) >= now - dt.timedelta(days=days),
        )
    )


def _materialise(
    connection: Connection,
    run_id: int,
    prev_run: int | None,
    rules: list[tuple[RuleView, int | None]],
) -> _RunScores:
    """Create (in this transaction) the compact table of the run's scores that ``rules`` (each
    with its baseline run) can act on: the customers meeting a rule's condition, and those whose
    value fell far enough to re-arm a rule disarmed for them. Every other customer is left
    alone by every rule, and leaving them out makes the table a fraction of the run."""
    baseline_runs = {baseline for _, baseline in rules if baseline is not None}
    cur = SCORES.alias("cur")
    columns: list[Any] = [
        cur.c.customer_id.label("customer_id"),
        cur.c.score.label("score"),
        cur.c.band.label("band"),
        cur.c.revenue_at_risk.label("revenue"),
    ]
    source: Any = cur
    postgres = connection.dialect.name == "postgresql"

    def other_run(run: int, name: str) -> Any:
        """Another run's scores, to outer-join on the customer."""
        if not postgres:
            alias = SCORES.alias(name)
            return alias, and_(alias.c.run_id == run, alias.c.customer_id == cur.c.customer_id)
        # A subquery in customer order: the run index delivers that order, so the runs are
        # merge-joined as they are read. As plain outer joins the planner did not see the
        # order and hashed a million rows per run (2.2 s instead of 0.8 s for three runs).
        rows = (
            select(SCORES.c.customer_id, SCORES.c.score, SCORES.c.band)
            .where(SCORES.c.run_id == run)
            .order_by(SCORES.c.customer_id)
            .offset(0)
            .subquery(name)
        )
        return rows, rows.c.customer_id == cur.c.customer_id

    prev: Any = None
    if prev_run is not None:
        prev, on = other_run(prev_run, "prev")
        source = source.outerjoin(prev, on)
        columns.append(prev.c.band.label("prev_band"))
    else:
        columns.append(cast(literal_column("NULL"), String).label("prev_band"))
    baselines: dict[int, str] = {}
    for n, base_run in enumerate(sorted(baseline_runs)):
        baselines[base_run] = f"base{n}"
        if base_run == prev_run:
            # Daily runs make yesterday's run the baseline of a short window as well: read it
            # once (a second join of a million rows cost about a second on PostgreSQL).
            columns.append(prev.c.score.label(f"base{n}"))
            continue
        base, on = other_run(base_run, f"base{n}")
        source = source.outerjoin(base, on)
        columns.append(base.c.score.label(f"base{n}"))
    joined = select(*columns).select_from(source).where(cur.c.run_id == run_id).subquery("j")
    wanted: list[ColumnElement[bool]] = []
    for rule, baseline in rules:
        condition = _condition(connection, rule, _RunScores(joined, baselines), baseline=baseline)
        if condition is None:
            continue
        disarmed = select(STATE.c.customer_id).where(
            STATE.c.rule_id == rule.id, STATE.c.armed.is_(False)
        )
        wanted += [
            condition.fires,
            and_(
                condition.rearm_value < condition.rearm_below,
                joined.c.customer_id.in_(disarmed),
            ),
        ]
    query = select(joined).where(or_(*wanted) if wanted else false())
    # Only run ids (integers) are inlined; the table name is our own constant.
    sql = query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {'' if postgres else 'temp.'}{EVAL_TABLE}")
    on_commit = "ON COMMIT DROP " if postgres else ""
    connection.exec_driver_sql(f"CREATE TEMPORARY TABLE {EVAL_TABLE} {on_commit}AS {sql}")
    if postgres:
        # Planner statistics for a table created a moment ago (its owner may analyse it).
        connection.exec_driver_sql(f"ANALYZE {EVAL_TABLE}")
    table = Table(
        EVAL_TABLE,
        MetaData(),
        Column("customer_id", BigInteger),
        Column("score", Float),
        Column("band", String),
        Column("revenue", Float),
        Column("prev_band", String),
        *[Column(name, Float) for name in baselines.values()],
    )
    return _RunScores(table, baselines)


def _drop(connection: Connection) -> None:
    if connection.dialect.name != "postgresql":  # PostgreSQL drops it on commit
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{EVAL_TABLE}")


# --- Customer rules -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Condition:
    """How one kind of rule reads the run's scores: when it fires, what it reports, and the
    value that must fall below ``rearm_below`` for it to re-arm."""

    fires: ColumnElement[bool]
    rearm_value: ColumnElement[Any]
    rearm_below: float
    details: list[tuple[str, Any]]


def _condition(
    connection: Connection, rule: RuleView, scores: _RunScores, *, baseline: int | None
) -> _Condition | None:
    ev = scores.c
    margin = rule.hysteresis_margin
    if rule.kind == "score_threshold":
        threshold = float(rule.params["threshold"])
        return _Condition(
            fires=ev.score >= threshold,
            rearm_value=ev.score,
            rearm_below=threshold - margin,
            details=[("value", ev.score), ("threshold", _number(threshold))],
        )
    if rule.kind == "revenue_at_risk":
        amount = float(rule.params["amount"])
        return _Condition(
            fires=ev.revenue >= amount,
            rearm_value=func.coalesce(ev.revenue, 0.0),
            rearm_below=amount - margin,
            details=[("value", ev.revenue), ("threshold", _number(amount))],
        )
    if rule.kind == "band_change":
        band = rule.params["band"]
        watched = list(BANDS[BANDS.index(band) :])
        # Entered: in the band now, not in it (or not scored) in the previous run.
        entered = and_(
            ev.band.in_(watched), or_(ev.prev_band.is_(None), ev.prev_band.not_in(watched))
        )
        return _Condition(
            fires=entered,
            rearm_value=ev.score,
            rearm_below=_band_cutoff(connection, band) - margin,
            details=[
                ("band", ev.band),
                ("watched", literal_column(f"'{band}'")),
                ("value", ev.score),
            ],
        )
    if rule.kind == "score_rise":
        points = float(rule.params["points"])
        if baseline is None:
            # No history in the window: nothing can have risen, everyone may re-arm.
            return _Condition(fires=false(), rearm_value=literal(0.0), rearm_below=1.0, details=[])
        base = ev[scores.baselines[baseline]]
        return _Condition(
            fires=ev.score - base >= points,
            # A customer with no score in the baseline run has not risen: it re-arms.
            rearm_value=ev.score - func.coalesce(base, ev.score),
            rearm_below=points - margin,
            details=[
                ("value", ev.score - base),
                ("baseline", base),
                ("baseline_run_id", cast(literal(baseline), BigInteger)),
                ("threshold", _number(points)),
            ],
        )
    return None


def _customer_rule(
    connection: Connection,
    rule: RuleView,
    scores: _RunScores,
    *,
    run_id: int,
    baseline: int | None,
    now: dt.datetime,
) -> tuple[int, int]:
    """Re-arm, fire and disarm one customer rule; returns (alerts created, states re-armed)."""
    condition = _condition(connection, rule, scores, baseline=baseline)
    if condition is None:
        return 0, 0
    ev = scores.c

    # 1. Re-arm the rule's disarmed state rows whose customer's value fell far enough. A
    #    customer the run did not score keeps its state. A join (UPDATE … FROM), so the
    #    planner can hash the few state rows rather than the whole run.
    rearmed = connection.execute(
        update(STATE)
        .where(
            STATE.c.rule_id == rule.id,
            STATE.c.armed.is_(False),
            STATE.c.customer_id == ev.customer_id,
            condition.rearm_value < condition.rearm_below,
        )
        .values(armed=True)
    ).rowcount

    # 2. Fire. The candidates (rows meeting the condition whose rule is armed for the
    #    customer and out of cool-down) are materialised first, so only the few left are
    #    looked up in the customers table. A customer with no state row for the rule has never
    #    had an alert from it.
    details = list(condition.details)
    s = STATE.alias("s")
    cooled = now - dt.timedelta(hours=rule.cooldown_hours)
    candidates = (
        select(
            ev.customer_id.label("customer_id"),
            ev.score.label("score"),
            *[expr.label(f"d{i}") for i, (_, expr) in enumerate(details)],
        )
        .select_from(
            scores.table.outerjoin(
                s, and_(s.c.rule_id == rule.id, s.c.customer_id == ev.customer_id)
            )
        )
        .where(
            condition.fires,
            or_(
                s.c.customer_id.is_(None),
                and_(
                    s.c.armed.is_(True),
                    or_(s.c.last_fired_at.is_(None), s.c.last_fired_at <= cooled),
                ),
            ),
        )
        .cte("candidates")
        .prefix_with("MATERIALIZED")
    )
    k = candidates.c
    # Their customers, if active and in the rule's scope. On PostgreSQL a LATERAL lookup by
    # primary key (OFFSET 0 keeps the planner from flattening it into a join): the planner
    # cannot know how few candidates there are and hashed all of the customers table for
    # every rule (about 1 s each at a million) or looked customers up before the state filter.
    in_scope = select(CUSTOMERS.c.name, CUSTOMERS.c.external_id).where(
        CUSTOMERS.c.id == k.customer_id, CUSTOMERS.c.status == const("active"), *_scope(rule)
    )
    c: Any
    if connection.dialect.name == "postgresql":
        customer = in_scope.offset(0).lateral("c")
        c = customer.c
        joined = candidates.join(customer, true())
        where: list[ColumnElement[bool]] = []
    else:
        c = CUSTOMERS.c
        joined = candidates.join(CUSTOMERS, c.id == k.customer_id)
        where = [c.status == const("active"), *_scope(rule)]
    dedup_key = cast(literal(f"rule:{rule.id}:customer:"), String) + cast(k.customer_id, String)
    name = func.coalesce(func.nullif(c.name, ""), c.external_id)
    title = func.substr(cast(literal(f"{rule.name}: "), String) + name, 1, 300)
    json_pairs = [(key, k[f"d{i}"]) for i, (key, _) in enumerate(details)]
    source = (
        select(
            cast(literal(rule.id), BigInteger),
            k.customer_id,
            cast(literal(run_id), BigInteger),
            dedup_key,
            const("open"),
            const(rule.severity),
            title,
            _json_object(connection, json_pairs),
            k.score,
            literal(now, Timestamp),
        )
        .select_from(joined)
        .where(*where)
        # Alerts numbered in customer order, whatever plan the database picks.
        .order_by(k.customer_id)
    )
    columns = [
        "rule_id",
        "customer_id",
        "run_id",
        "dedup_key",
        "status",
        "severity",
        "title",
        "details",
        "score",
        "created_at",
    ]
    # De-duplication is the partial unique index itself ("one unresolved alert per key"): a
    # customer whose alert is still open is skipped by ON CONFLICT. Its own index insertion
    # does the check, so no plan depends on how many alerts the statistics believe exist.
    statement = upsert(connection, ALERTS).from_select(columns, source)
    statement = statement.on_conflict_do_nothing(
        index_elements=[ALERTS.c.dedup_key], index_where=ALERTS.c.status != const("resolved")
    )
    # rowcount of an INSERT is only kept when asked for (SQLAlchemy 2's preserve_rowcount);
    # sqlite3 reports none for a statement that starts with WITH, so count those rows then.
    created = connection.execute(statement, execution_options={"preserve_rowcount": True}).rowcount
    just_fired = and_(
        ALERTS.c.rule_id == rule.id,
        ALERTS.c.created_at == now,
        ALERTS.c.run_id == run_id,
        ALERTS.c.customer_id.is_not(None),
    )
    if created < 0:
        created = connection.scalar(select(func.count()).select_from(ALERTS).where(just_fired))
    if not created:
        return 0, rearmed

    # 3. Disarm the customers that fired and start their cool-down.
    fired = select(ALERTS.c.rule_id, ALERTS.c.customer_id, false(), literal(now, Timestamp)).where(
        just_fired
    )
    upserted = upsert(connection, STATE).from_select(
        ["rule_id", "customer_id", "armed", "last_fired_at"], fired
    )
    connection.execute(
        upserted.on_conflict_do_update(
            index_elements=[STATE.c.rule_id, STATE.c.customer_id],
            set_={"armed": false(), "last_fired_at": upserted.excluded.last_fired_at},
        )
    )
    return created, rearmed


def _drift_rule(connection: Connection, rule: RuleView, *, run: Any, now: dt.datetime) -> int:
    """One alert per run whose PSI reaches the threshold, with cool-down and hysteresis."""
    psi_threshold = float(rule.params["psi"])
    if run.psi is None or float(run.psi) < psi_threshold:
        return 0
    dedup_key = f"rule:{rule.id}:drift"
    unresolved = connection.scalar(
        select(ALERTS.c.id).where(
            ALERTS.c.dedup_key == dedup_key, ALERTS.c.status != const("resolved")
        )
    )
    if unresolved is not None:
        return 0
    last = as_utc(
        connection.scalar(select(func.max(ALERTS.c.created_at)).where(ALERTS.c.rule_id == rule.id))
    )
    if last is not None:
        if last > now - dt.timedelta(hours=rule.cooldown_hours):
            return 0
        rearmed = connection.scalar(
            select(func.count())
            .select_from(RUNS)
            .where(
                RUNS.c.status == const("completed"),
                func.coalesce(RUNS.c.finished_at, RUNS.c.started_at) > last,
                RUNS.c.psi < psi_threshold - rule.hysteresis_margin,
            )
        )
        if not rearmed:
            return 0
    connection.execute(
        ALERTS.insert().values(
            rule_id=rule.id,
            customer_id=None,
            run_id=run.id,
            dedup_key=dedup_key,
            status="open",
            severity=rule.severity,
            title=f"{rule.name}: model drift, PSI {float(run.psi):.3f}"[:300],
            details={"psi": float(run.psi), "threshold": psi_threshold, "run_id": run.id},
            score=None,
            created_at=now,
        )
    )
    return 1


def wake_snoozed_alerts(connection: Connection, now: dt.datetime) -> int:
    """Return alerts whose snooze has ended to their earlier state; returns how many.

    Does not commit. Records an ``unsnoozed`` step in each alert's history.
    """
    due = and_(ALERTS.c.status == const("snoozed"), ALERTS.c.snoozed_until <= now)
    connection.execute(
        insert(AlertEvent.__table__).from_select(
            ["alert_id", "action", "actor", "at", "note"],
            select(
                ALERTS.c.id,
                const("unsnoozed"),
                literal(None, String),
                literal(now, Timestamp),
                const(""),
            ).where(due),
        )
    )
    return int(
        connection.execute(
            update(ALERTS)
            .where(due)
            .values(
                status=case(
                    (ALERTS.c.assigned_to.is_not(None), "assigned"),
                    (ALERTS.c.acknowledged_at.is_not(None), "acknowledged"),
                    else_="open",
                ),
                snoozed_until=None,
            )
        ).rowcount
    )


def last_evaluated_run(engine: Engine) -> int | None:
    """The newest scoring run whose rules have been evaluated, if any."""
    with engine.connect() as connection:
        value = read_setting(connection, LAST_EVALUATED_KEY)
    return int(value) if value is not None else None


def latest_completed_run(engine: Engine) -> int | None:
    """The id of the newest completed scoring run, if any."""
    with engine.connect() as connection:
        value = connection.scalar(
            select(func.max(RUNS.c.id)).where(RUNS.c.status == const("completed"))
        )
    return None if value is None else int(value)


def evaluate_rules(
    engine: Engine,
    run_id: int,
    *,
    now: dt.datetime | None = None,
    rule_ids: Collection[int] | None = None,
) -> EvaluationResult:
    """Evaluate every enabled rule (or ``rule_ids``) over the completed scoring run ``run_id``.

    Scores, bands and revenue at risk are read from the run's history rows (``risk_scores``),
    the customers table only for the few candidates left (status, scope, name). Alerts, rule
    state and the outbox messages announcing the alerts are written in one transaction;
    evaluations of one database are serialised (an advisory lock on PostgreSQL, the single
    writer on SQLite). Evaluating a run again raises no duplicate alerts. Raises NotFoundError
    for an unknown run, ConflictError for a run that has not completed. Commits.
    """
    started = time.perf_counter()
    now = now or utcnow()
    outcomes: list[RuleOutcome] = []
    with begin_write(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(EVALUATION_LOCK_ID)))
            # Hash joins over a million rows spill to disk with the default 4 MB, and JIT
            # compilation costs more than it saves on these short statements.
            connection.exec_driver_sql("SET LOCAL work_mem = '64MB'")
            connection.exec_driver_sql("SET LOCAL jit = off")
        # begin_write: on SQLite the write lock was taken at BEGIN, before anything is read.
        woken = wake_snoozed_alerts(connection, now)
        run = connection.execute(
            select(RUNS.c.id, RUNS.c.status, RUNS.c.psi).where(RUNS.c.id == run_id)
        ).first()
        if run is None:
            raise NotFoundError(f"There is no scoring run {run_id}.")
        if run.status != "completed":
            raise ConflictError(
                f"Scoring run {run_id} is {run.status}; rules are evaluated on completed runs."
            )
        prev_run = connection.scalar(
            select(func.max(RUNS.c.id)).where(
                RUNS.c.status == const("completed"), RUNS.c.id < run_id
            )
        )
        rules = [
            rule
            for rule in load_rules(connection, enabled=True)
            if rule_ids is None or rule.id in rule_ids
        ]
        directory = Directory.load(connection) if rules else None
        customer_rules = [r for r in rules if r.kind != "model_drift"]
        baselines = {
            r.id: _baseline_run(connection, run_id, int(r.params["days"]), now)
            for r in customer_rules
            if r.kind == "score_rise"
        }
        scores = (
            _materialise(
                connection, run_id, prev_run, [(r, baselines.get(r.id)) for r in customer_rules]
            )
            if customer_rules
            else None
        )
        for rule in rules:
            if rule.kind == "model_drift" or scores is None:
                created, rearmed = _drift_rule(connection, rule, run=run, now=now), 0
            else:
                created, rearmed = _customer_rule(
                    connection,
                    rule,
                    scores,
                    run_id=run_id,
                    baseline=baselines.get(rule.id),
                    now=now,
                )
            queued = 0
            if created:
                queued = queue_alert_notifications(
                    connection, rule, run_id=run_id, created_at=now, now=now, directory=directory
                )
            outcomes.append(RuleOutcome(rule.id, rule.name, rule.kind, created, rearmed, queued))
        if scores is not None:
            _drop(connection)
        previous = read_setting(connection, LAST_EVALUATED_KEY)
        if previous is None or int(previous) < run_id:
            write_setting(connection, LAST_EVALUATED_KEY, run_id, actor=None)
        if any(o.alerts_created for o in outcomes) or woken:
            queued_any = any(o.messages_queued for o in outcomes)
            publish(connection, Changes(alerts=True, notifications=queued_any))
    if sum(o.alerts_created + o.rearmed for o in outcomes) >= STATISTICS_AFTER_CHANGES:
        # The next evaluation's plans (and the alerts page's) depend on knowing how many state
        # rows and alerts there are; SQLite never gathers statistics on its own.
        refresh_statistics(engine, "alerts", "alert_rule_state")
    result = EvaluationResult(run_id, now, tuple(outcomes), woken, time.perf_counter() - started)
    log.info(
        "evaluated %d rules over run %d: %d alerts, %d messages in %.2f s",
        len(outcomes),
        run_id,
        result.alerts_created,
        result.messages_queued,
        result.seconds,
    )
    return result

"""The background worker: scheduled scoring, rule evaluation and dispatch until stopped.

Each tick does what is due and returns; ``run_worker`` repeats ticks until its ``stop`` event
is set (the command line sets it on SIGTERM or Ctrl-C), finishing the delivery in progress and
handing back claimed-but-unsent messages, so a stopped worker leaves nothing half-done.
Scheduled scoring calls ``churndesk.services.scoring.score_all`` when that service exists.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from churndesk.db.engine import begin_write
from churndesk.db.models import ScoringRun
from churndesk.errors import ChurndeskError, ConflictError, NotFoundError
from churndesk.services.alert_common import as_utc, utcnow
from churndesk.services.alert_evaluation import (
    EvaluationResult,
    evaluate_rules,
    last_evaluated_run,
    latest_completed_run,
    wake_snoozed_alerts,
)
from churndesk.services.alert_rules import ensure_default_rules
from churndesk.services.changes import Changes, publish
from churndesk.services.channels import Sender
from churndesk.services.notify import Dispatcher, DispatchResult, RetryPolicy, default_worker_id

log = logging.getLogger(__name__)

SCORING_MODULE = "churndesk.services.scoring"


@dataclass(frozen=True)
class WorkerOptions:
    """``score_every_hours`` None or 0 turns scheduled scoring off."""

    poll_s: float = 5.0
    score_every_hours: float | None = 24.0
    evaluate: bool = True
    dispatch: bool = True
    batch: int = 100
    lease_s: float = 60.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class WorkerTick:
    """What one pass of the worker did."""

    at: dt.datetime
    scored_run_id: int | None = None
    evaluation: EvaluationResult | None = None
    dispatch: DispatchResult = field(default_factory=DispatchResult)
    woken: int = 0
    errors: tuple[str, ...] = ()

    @property
    def busy(self) -> bool:
        d = self.dispatch
        return bool(
            self.scored_run_id
            or self.evaluation
            or self.woken
            or self.errors
            or d.claimed
            or d.digests_queued
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "scored_run_id": self.scored_run_id,
            "evaluation": self.evaluation.to_json() if self.evaluation else None,
            "dispatch": self.dispatch.to_json(),
            "woken": self.woken,
            "errors": list(self.errors),
        }


class _ScoringUnavailable:
    """Remembers that the scoring service is missing, so the log says so once, not every tick."""

    said = False


def score_if_due(
    engine: Engine,
    every_hours: float | None,
    *,
    now: dt.datetime,
    cancel: threading.Event | None = None,
) -> int | None:
    """Start a scoring run with the active model when the last one is older than the interval.

    Returns the new run's id, or None when nothing was due or scoring could not start (the
    scoring service missing, no active model, a run already in progress elsewhere: each is
    logged). The scoring service evaluates the rules over its run itself. Raises whatever
    else the scoring service raises.
    """
    if not every_hours:
        return None
    with engine.connect() as connection:
        last = as_utc(connection.scalar(select(func.max(ScoringRun.started_at))))
    if last is not None and last > now - dt.timedelta(hours=every_hours):
        return None
    try:
        scoring = importlib.import_module(SCORING_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != SCORING_MODULE:
            raise
        if not _ScoringUnavailable.said:
            log.info("scheduled scoring skipped: %s is not available", SCORING_MODULE)
            _ScoringUnavailable.said = True
        return None
    try:
        # score_all holds its own run lock: a second worker gets ConflictError, not a 2nd run.
        run = scoring.score_all(engine, actor="worker", cancel=cancel)
    except (ConflictError, NotFoundError) as exc:
        log.info("scheduled scoring skipped: %s", exc.user_message)
        return None
    run_id = getattr(run, "id", None)
    return int(run_id) if isinstance(run_id, int) else None


def evaluate_if_due(engine: Engine, *, now: dt.datetime) -> EvaluationResult | None:
    """Evaluate the newest completed run if no evaluation has covered it yet."""
    latest = latest_completed_run(engine)
    if latest is None:
        return None
    done = last_evaluated_run(engine)
    if done is not None and done >= latest:
        return None
    return evaluate_rules(engine, int(latest), now=now)


def wake_snoozed(engine: Engine, *, now: dt.datetime) -> int:
    """Wake alerts whose snooze ended; returns how many. Commits."""
    with begin_write(engine) as connection:
        woken = wake_snoozed_alerts(connection, now)
        if woken:
            publish(connection, Changes(alerts=True))
    return woken


def worker_tick(
    engine: Engine,
    dispatcher: Dispatcher,
    options: WorkerOptions,
    *,
    now: dt.datetime | None = None,
    cancel: threading.Event | None = None,
) -> WorkerTick:
    """One pass: score if due, evaluate a new run, wake snoozed alerts, dispatch.

    A failing step is logged and reported in ``errors``; the others still run, so a worker
    survives a database restart or a broken SMTP server.
    """
    at = now or utcnow()
    errors: list[str] = []
    scored = evaluation = None
    woken = 0
    dispatched = DispatchResult()

    def step(name: str, fn: Callable[[], Any]) -> Any:
        if cancel is not None and cancel.is_set():
            return None
        try:
            return fn()
        except ChurndeskError as exc:
            log.warning("%s failed: %s", name, exc.user_message)
            errors.append(f"{name}: {exc.user_message}")
        except Exception as exc:  # a worker must outlive any one failure; the log has details
            log.exception("%s failed", name)
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
        return None

    scored = step(
        "scoring", lambda: score_if_due(engine, options.score_every_hours, now=at, cancel=cancel)
    )
    if options.evaluate:
        evaluation = step("evaluation", lambda: evaluate_if_due(engine, now=at))
    woken = step("snooze", lambda: wake_snoozed(engine, now=at)) or 0
    if options.dispatch:
        dispatched = (
            step("dispatch", lambda: dispatcher.run_once(now=now, cancel=cancel))
            or DispatchResult()
        )
    return WorkerTick(at, scored, evaluation, dispatched, woken, tuple(errors))


def run_worker(
    engine: Engine,
    *,
    stop: threading.Event,
    options: WorkerOptions | None = None,
    senders: Mapping[str, Sender] | None = None,
    worker_id: str | None = None,
    on_tick: Callable[[WorkerTick], None] | None = None,
    once: bool = False,
) -> int:
    """Run ticks every ``poll_s`` until ``stop`` is set (or once); returns the number of ticks.

    Creates the default rule set on a database that never had one. Commits as it goes.
    """
    options = options or WorkerOptions()
    dispatcher = Dispatcher(
        engine,
        worker_id=worker_id or default_worker_id(),
        senders=senders,
        policy=options.policy,
        batch=options.batch,
        lease_s=options.lease_s,
    )
    ensure_default_rules(engine)
    ticks = 0
    while not stop.is_set():
        tick = worker_tick(engine, dispatcher, options, cancel=stop)
        ticks += 1
        if on_tick is not None:
            on_tick(tick)
        if once:
            break
        stop.wait(options.poll_s)
    return ticks

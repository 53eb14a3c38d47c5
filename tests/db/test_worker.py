"""The worker: scheduled scoring (through a stand-in scoring service), evaluation of new runs,
dispatch, and a clean stop on SIGTERM from the command line."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import subprocess
import sys
import threading
import types
from typing import Any

import pytest
from sqlalchemy import Engine

from churndesk.db.models import Notification
from churndesk.services import alerts, notify, worker
from tests.conftest import REPO
from tests.db import test_alert_support as support
from tests.db.test_alert_support import Scenario

# Fixtures shared by the alert and notification tests (one database per module, emptied per test).
engine = support.engine
shared_db = support.shared_db

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def fake_scoring(world: Scenario, scores: dict[int, float], calls: list) -> types.ModuleType:
    """A stand-in for churndesk.services.scoring with the lead's score_all signature."""
    module = types.ModuleType(worker.SCORING_MODULE)

    def score_all(engine: Engine, *, actor: str | None = None, cancel: Any = None) -> Any:
        calls.append(actor)
        return types.SimpleNamespace(id=world.run(scores, at=NOW))

    module.score_all = score_all  # type: ignore[attr-defined]
    return module


def test_tick_scores_when_due_then_evaluates_and_dispatches(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = Scenario(engine)
    world.users(("alice", "analyst", None))
    (cid,) = world.customers(1)
    world.run({cid: 30.0}, at=NOW - dt.timedelta(days=2))  # also registers an active model
    calls: list[str | None] = []
    monkeypatch.setitem(sys.modules, worker.SCORING_MODULE, fake_scoring(world, {cid: 88.0}, calls))
    alerts.ensure_default_rules(engine)
    dispatcher = notify.Dispatcher(engine, worker_id="w")
    options = worker.WorkerOptions(score_every_hours=24)

    tick = worker.worker_tick(engine, dispatcher, options, now=NOW)
    assert tick.errors == ()
    assert tick.scored_run_id is not None and calls == ["worker"]
    assert tick.evaluation is not None and tick.evaluation.run_id == tick.scored_run_id
    # Entered critical and rose 58 points: two alerts, one in-app message each, delivered.
    assert tick.evaluation.alerts_created == 2
    assert tick.dispatch.sent == 2
    assert world.count(Notification, username="alice") == 2

    again = worker.worker_tick(engine, dispatcher, options, now=NOW + dt.timedelta(hours=1))
    assert not again.busy and len(calls) == 1  # scored an hour ago: nothing due


def test_missing_scoring_service_is_skipped_with_one_log_line(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, worker.SCORING_MODULE, None)  # import fails
    monkeypatch.setattr(worker._ScoringUnavailable, "said", False)
    dispatcher = notify.Dispatcher(engine, worker_id="w")
    with caplog.at_level(logging.INFO, logger="churndesk.services.worker"):
        for hour in range(3):
            tick = worker.worker_tick(
                engine, dispatcher, worker.WorkerOptions(), now=NOW + dt.timedelta(hours=hour)
            )
            assert tick.errors == () and tick.scored_run_id is None
    skipped = [r for r in caplog.records if "scheduled scoring skipped" in r.getMessage()]
    assert len(skipped) == 1


def test_run_worker_stops_when_asked(engine: Engine) -> None:
    stop = threading.Event()
    ticks: list[worker.WorkerTick] = []

    def on_tick(tick: worker.WorkerTick) -> None:
        ticks.append(tick)
        if len(ticks) == 3:
            stop.set()

    options = worker.WorkerOptions(poll_s=0.001, score_every_hours=None)
    assert worker.run_worker(engine, stop=stop, options=options, on_tick=on_tick) == 3
    assert len(alerts.list_rules(engine)) == 3  # the default rules, created on start


@pytest.mark.parametrize("shared_db", ["sqlite"], indirect=True)
def test_cli_worker_dispatches_and_stops_cleanly_on_sigterm(engine: Engine, shared_db: str) -> None:
    Scenario(engine).users(("alice", "analyst", None))
    with engine.begin() as connection:
        notify.enqueue(
            connection, channel="inapp", recipient="alice",
            payload={"type": "alerts", "rule": {"name": "R"}, "total": 1,
                     "alerts": [{"id": 1, "customer_id": 1, "customer": "Acme", "title": "Hi"}]},
            idempotency_key="hello", now=NOW - dt.timedelta(minutes=1),
        )  # fmt: skip
    command = [sys.executable, "-m", "churndesk", "--database", shared_db, "worker",
               "--poll-s", "0.05", "--score-every-hours", "0"]  # fmt: skip
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("churndesk worker started")
        line = proc.stdout.readline()
        assert "dispatched: 1 sent" in line, line
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert rest.strip().splitlines()[-1].startswith("churndesk worker stopped after")
    assert [n.title for n in notify.unread_notifications(engine, "alice")] == ["Hi"]

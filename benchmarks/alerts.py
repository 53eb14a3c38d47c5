"""Time rule evaluation over a fresh scoring run of N customers.

    python benchmarks/alerts.py --customers 1000000 --database postgresql://...
    python benchmarks/alerts.py --customers 100000          # a temporary SQLite file

The database must be empty (it is filled with the synthetic demo customers). Fake scoring runs
are written with set-based SQL: a first run 20 days ago (evaluated too, so rules have state and
open alerts as in daily use; its time is reported as the worst case, every customer being new
to every rule), then a fresh run in which most scores drift by -3..+3 points and one customer
in fifty jumps by +10..+30. The timed step is ``evaluate_rules`` over the fresh run with the
default rules plus one rule of every other kind, notifying in-app, by e-mail and by webhook.
With --reuse, a database filled earlier only gets another fresh run. Prints figures as it goes
and a last line of JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

try:
    import churndesk  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without installing: use the repository copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from typing import Any

from sqlalchemy import Engine, bindparam, event, func, insert, select, text

from churndesk.config import sqlite_url
from churndesk.db.connect import open_database
from churndesk.db.maintenance import refresh_statistics
from churndesk.db.models import Customer, Json, ModelVersion, ScoringRun, Timestamp
from churndesk.services import alerts, demo
from churndesk.services.alert_common import as_utc, write_setting
from churndesk.services.alerts import RuleSpec
from churndesk.services.channels.config import WEBHOOKS_KEY

NOW = dt.datetime(2025, 6, 2, 6, 0, tzinfo=dt.UTC)
BAND = (
    "CASE WHEN {s} >= 80 THEN 'critical' WHEN {s} >= 60 THEN 'high' "
    "WHEN {s} >= 40 THEN 'medium' ELSE 'low' END"
)


def _say(text_: str) -> None:
    print(text_, file=sys.stderr, flush=True)


def _moved_scores(dialect: str) -> str:
    """Today's score from the current one: most customers drift by -3..+3 points, one in fifty
    jumps by +10..+30 (a deterministic pseudo-random choice per customer and run ``:k``)."""
    jump = "CASE WHEN (id + :k) % 50 = 0 THEN 10 + (id * 31 + :k) % 21 ELSE 0 END"
    moved = f"(COALESCE(risk_score, 50.0) + ((id * 104729 + :k * 7) % 7) - 3 + {jump})"
    low, high = ("GREATEST", "LEAST") if dialect == "postgresql" else ("MAX", "MIN")
    return f"{high}(100.0, {low}(0.0, {moved}))"


INITIAL_SCORES = "(CAST((id * 7919) % 1000 AS FLOAT) / 10.0)"  # uniform 0-99.9 per customer
# Five drivers in the scoring service's format: current-score rows as wide as real ones.
DRIVERS = [
    {"feature": name, "direction": "+", "magnitude": magnitude}
    for name, magnitude in (
        ("contract_month_to_month", 0.8123),
        ("tenure_months", 0.5412),
        ("payment_method_electronic_check", 0.3311),
        ("monthly_charges", 0.2104),
        ("support_tickets_90d", 0.1187),
    )
]


def write_run(engine: Engine, model_id: int, at: dt.datetime, *, k: int | None, psi: float) -> int:
    """A completed run: customers' current scores updated, history rows for everyone.

    ``k`` None gives the initial scores; otherwise the scores move as ``_moved_scores`` says.
    """
    dialect = engine.dialect.name
    score = INITIAL_SCORES if k is None else _moved_scores(dialect)
    band = BAND.format(s=score)
    risk = f"COALESCE(monthly_revenue, 0) * 12 * {score} / 100"
    at_param = bindparam("at", at, type_=Timestamp)
    with engine.begin() as connection:
        run_id = connection.execute(
            insert(ScoringRun).values(
                model_version_id=model_id, status="completed", started_at=at, finished_at=at,
                psi=psi,
            )
        ).inserted_primary_key[0]  # fmt: skip
        # One statement for every customer's current score (the expressions read the
        # customer's id and revenue from customers, the current score from customer_scores).
        if k is None:
            current = (
                "INSERT INTO customer_scores (customer_id, risk_score, risk_band, "
                f"revenue_at_risk, drivers, scored_at) SELECT id, {score}, {band}, {risk}, "
                ":drivers, :at FROM customers"
            )
        else:
            current = (
                f"UPDATE customer_scores SET risk_score_prev = risk_score, risk_score = {score}, "
                f"risk_band = {band}, revenue_at_risk = {risk}, scored_at = :at "
                "FROM customers WHERE customers.id = customer_scores.customer_id"
            )
        statement = text(current).bindparams(at_param)
        if k is None:
            statement = statement.bindparams(bindparam("drivers", DRIVERS, type_=Json))
        connection.execute(statement, {"k": k or 0})
        connection.execute(
            text(
                "INSERT INTO risk_scores (customer_id, run_id, model_version_id, score, band, "
                "revenue_at_risk, scored_at) SELECT customer_id, :run, :model, "
                "risk_score, risk_band, revenue_at_risk, :at FROM customer_scores"
            ).bindparams(at_param),
            {"run": run_id, "model": model_id},
        )
    # What the scoring service does after publishing a run (statistics; on PostgreSQL also
    # VACUUM of the history, so the covering run index serves index-only reads).
    refresh_statistics(engine, "customer_scores")
    refresh_statistics(engine, "risk_scores", vacuum=True)
    return int(run_id)


def time_statements(engine: Engine) -> list[tuple[float, str]]:
    """Collect (seconds, SQL) of every statement run on ``engine`` from now on."""
    timings: list[tuple[float, str]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["bench_t"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        timings.append((time.perf_counter() - conn.info["bench_t"], " ".join(statement.split())))

    return timings


def add_rules(engine: Engine) -> None:
    alerts.ensure_default_rules(engine)
    # The endpoint only (no signing secret: nothing is sent, and a server may have no keyring).
    with engine.begin() as connection:
        write_setting(connection, WEBHOOKS_KEY, {"crm": "https://hooks.example.com/churn"},
                      actor="bench")  # fmt: skip
    for spec in (
        RuleSpec(name="Score ≥ 90", kind="score_threshold", params={"threshold": 90},
                 channels=("inapp", "email", "webhook"),
                 recipients=("*", "retention@example.com", "crm")),
        RuleSpec(name="Enterprise turns high", kind="band_change", params={"band": "high"},
                 scope={"segment": ["Enterprise"]}, channels=("email",),
                 recipients=("retention@example.com",), email_mode="digest"),
        RuleSpec(name="Revenue at risk ≥ 1,000", kind="revenue_at_risk",
                 params={"amount": 1000}, channels=("inapp", "webhook"), recipients=("*", "crm")),
    ):  # fmt: skip
        alerts.create_rule(engine, spec, actor="bench")


def prepare(url: str, customers: int, seed: int) -> tuple[int, float, Any]:
    """Load customers, add rules, write and evaluate a first run; returns (model, load s, first)."""
    started = time.perf_counter()
    demo.create_demo_database(url, customers, seed)
    load_s = time.perf_counter() - started
    _say(f"{customers:,} customers loaded in {load_s:.1f} s")
    database = open_database(url)
    engine = database.engine
    try:
        with engine.begin() as connection:
            model_id = connection.execute(
                insert(ModelVersion).values(
                    name="bench", version=1, algorithm="none", params={}, feature_schema={},
                    metrics={}, artifact=b"", sha256="0" * 64, status="active",
                )
            ).inserted_primary_key[0]  # fmt: skip
        add_rules(engine)
        started = time.perf_counter()
        run = write_run(engine, model_id, NOW - dt.timedelta(days=20), k=None, psi=0.03)
        _say(f"first run written in {time.perf_counter() - started:.1f} s")
        first = alerts.evaluate_rules(engine, run, now=NOW - dt.timedelta(days=20))
        _say(f"first evaluation (every customer new to every rule): {first.alerts_created:,} "
             f"alerts in {first.seconds:.2f} s")  # fmt: skip
    finally:
        engine.dispose()
    return int(model_id), load_s, first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database", help="an empty database (default: a temporary SQLite file)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reuse", action="store_true",
        help="the database was filled by an earlier run of this benchmark: only add a fresh run",
    )  # fmt: skip
    parser.add_argument("--statements", type=int, default=0, metavar="N",
                        help="print the N slowest statements of the timed evaluation")  # fmt: skip
    args = parser.parse_args(argv)
    tmp = tempfile.TemporaryDirectory()
    url = args.database or sqlite_url(Path(tmp.name) / "alerts-bench.sqlite3")
    first = None
    load_s = None
    if not args.reuse:
        _, load_s, first = prepare(url, args.customers, args.seed)
    database = open_database(url)
    engine = database.engine
    try:
        with engine.connect() as connection:
            model_id = connection.scalar(select(func.max(ModelVersion.id)))
            runs, last = connection.execute(
                select(func.count(), func.max(ScoringRun.started_at))
            ).one()
            customers = connection.scalar(select(func.count()).select_from(Customer))
        at = (as_utc(last) or NOW) + dt.timedelta(days=1)
        started = time.perf_counter()
        fresh_run = write_run(engine, model_id, at, k=runs + 1, psi=0.24)
        _say(f"fresh run written in {time.perf_counter() - started:.1f} s")
        timings = time_statements(engine)
        result = alerts.evaluate_rules(engine, fresh_run, now=at)
        for outcome in result.rules:
            _say(f"  {outcome.name}: {outcome.alerts_created:,} alerts, "
                 f"{outcome.messages_queued} messages")  # fmt: skip
        _say(f"fresh run evaluated in {result.seconds:.2f} s")
        for seconds, statement in sorted(timings, reverse=True)[: args.statements]:
            _say(f"  {seconds:7.3f} s  {statement[:160]}")
        again = alerts.evaluate_rules(engine, fresh_run, now=at + dt.timedelta(minutes=5))
        _say(f"same run again (nothing new): {again.seconds:.2f} s")
    finally:
        engine.dispose()
        tmp.cleanup()
    figures: dict[str, Any] = {
        "benchmark": "alerts_evaluate",
        "database": database.dialect,
        "customers": customers,
        "rules": len(result.rules),
        "alerts_created": result.alerts_created,
        "messages_queued": result.messages_queued,
        "seconds": round(result.seconds, 3),
        "reevaluation_seconds": round(again.seconds, 3),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if first is not None:
        figures["first_evaluation_seconds"] = round(first.seconds, 3)
        figures["first_evaluation_alerts"] = first.alerts_created
        figures["load_seconds"] = round(load_s or 0, 1)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Many dispatchers, one PostgreSQL database, a flaky receiver and a dispatcher killed mid-batch:
every notification is delivered exactly once and retries follow the backoff schedule.

The clock is injected: dispatchers and receiver share a fake "now" that jumps to the next due
second once both live dispatchers have drained everything due, so retry gaps are exact and the
test never sleeps. The third dispatcher is a subprocess that claims a batch, records a few
deliveries, signals on a pipe and blocks; it is then SIGKILLed holding the rest of its claims,
which the others take over when the lease expires.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import Engine, func, insert, select

from churndesk.db.engine import make_engine
from churndesk.db.models import Alert, OutboxMessage
from churndesk.services import alerts, notify
from churndesk.services.alerts import RuleSpec
from churndesk.services.channels.config import generate_webhook_secret, set_webhook_endpoint
from churndesk.services.channels.webhook import (
    Endpoint,
    WebhookSender,
    WebhookVerificationError,
    verify_webhook,
)
from tests.conftest import REPO
from tests.db.test_alert_support import T0, Scenario

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.parametrize("backend", ["postgresql"], indirect=True),
]

MESSAGES = 1000
FAILURE_RATE = 0.3
LEASE_S = 60.0
KILLED_BATCH = 100
KILLED_SENDS = 10
POLICY = notify.RetryPolicy(max_attempts=25)  # 0.3^25: no message may plausibly run out

KILLED_DISPATCHER = """
import datetime as dt, sys
from churndesk.db.engine import make_engine
from churndesk.services import notify
from churndesk.services.channels.webhook import Endpoint, WebhookSender

url, hook, secret, now, batch, sends, lease = sys.argv[1:8]

class Stalling(WebhookSender):
    count = 0

    def send(self, message):
        if self.count == 0:
            print("CLAIMED", flush=True)
        if self.count == int(sends):
            print("MID", flush=True)
            sys.stdin.read()  # hold the remaining claims until killed
        self.count += 1
        super().send(message)

notify.dispatch_pending(
    make_engine(url), worker_id="doomed", now=dt.datetime.fromisoformat(now),
    senders={"webhook": Stalling({"crm": Endpoint("crm", hook, secret)})},
    batch=int(batch), lease_s=float(lease), max_batches=1,
)
print("FINISHED", flush=True)
"""


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now


class FlakyReceiver(ThreadingHTTPServer):
    """Verifies every delivery; fails 30% of requests at random (seeded)."""

    daemon_threads = True

    def __init__(self, secret: str, clock: Clock) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secret, self.clock = secret, clock
        self.random = random.Random(1234)
        self.lock = threading.Lock()
        self.attempts: dict[str, list[int]] = defaultdict(list)  # id -> webhook-timestamps
        self.accepted: dict[str, int] = defaultdict(int)  # id -> 2xx answers
        self.failed = 0
        self.invalid: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: FlakyReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        receiver = self.server
        headers = dict(self.headers.items())
        try:
            verify_webhook(receiver.secret, headers, body, now=receiver.clock.now)
        except WebhookVerificationError as exc:
            with receiver.lock:
                receiver.invalid.append(str(exc))
            self._answer(400)
            return
        message_id = headers["webhook-id"]
        with receiver.lock:
            receiver.attempts[message_id].append(int(headers["webhook-timestamp"]))
            fail = receiver.random.random() < FAILURE_RATE
            if fail:
                receiver.failed += 1
            else:
                receiver.accepted[message_id] += 1
        self._answer(500 if fail else 204)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


# Durability of each commit is not what this test is about; waiting for the WAL flush of
# every outcome on a shared test machine only makes it slower.
FAST_COMMITS = {"options": "-c synchronous_commit=off"}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, connect_args=FAST_COMMITS)
    yield engine
    engine.dispose()


@pytest.fixture
def receiver() -> Iterator[FlakyReceiver]:
    server = FlakyReceiver(generate_webhook_secret(), Clock(T0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def queue_one_message_per_alert(engine: Engine, receiver: FlakyReceiver) -> None:
    world = Scenario(engine)
    world.users(("alice", "analyst", None))
    set_webhook_endpoint(engine, "crm", receiver.url, secret=receiver.secret, actor="alice")
    rule = alerts.create_rule(
        engine,
        RuleSpec(name="High", kind="score_threshold", params={"threshold": 90},
                 channels=("webhook",), recipients=("crm",)),
        actor="alice",
    )  # fmt: skip
    ids = world.customers(MESSAGES)
    run = world.run(dict.fromkeys(ids, 95.0), at=T0)
    with engine.begin() as connection:
        connection.execute(
            insert(Alert),
            [
                {"rule_id": rule.id, "customer_id": cid, "run_id": run, "dedup_key": f"k{cid}",
                 "severity": "warning", "title": f"High: {cid}", "details": {}, "score": 95.0,
                 "created_at": T0}
                for cid in ids
            ],
        )  # fmt: skip
        items, total = notify.alert_items(connection, Alert.rule_id == rule.id, limit=MESSAGES)
        assert total == MESSAGES
        # One message per alert, as if each had been raised on its own: the outbox rows a
        # thousand separate evaluations would have queued.
        connection.execute(
            insert(OutboxMessage),
            [
                {"alert_id": item["id"], "channel": "webhook", "recipient": "crm",
                 "payload": {"type": "alerts", "rule": notify.rule_summary(rule), "total": 1,
                             "alerts": [item]},
                 "idempotency_key": f"alerts-{rule.id}-{item['id']}-webhook-crm",
                 "status": "pending", "attempts": 0, "next_attempt_at": T0, "created_at": T0}
                for item in items
            ],
        )  # fmt: skip


def test_three_dispatchers_one_killed_deliver_each_exactly_once(
    engine: Engine, db_url: str, receiver: FlakyReceiver
) -> None:
    queue_one_message_per_alert(engine, receiver)
    clock = receiver.clock
    doomed = subprocess.Popen(
        [sys.executable, "-c", KILLED_DISPATCHER, db_url, receiver.url, receiver.secret,
         T0.isoformat(), str(KILLED_BATCH), str(KILLED_SENDS), str(LEASE_S)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    killed = threading.Event()
    finished = threading.Event()
    errors: list[BaseException] = []

    def advance() -> None:
        # Runs in one dispatcher thread while both wait: jump to the next due time, but only
        # once the doomed dispatcher is dead (its recorded retries are scheduled from T0).
        killed.wait(timeout=120)
        table = OutboxMessage.__table__
        with engine.connect() as connection:
            retry = connection.scalar(
                select(func.min(table.c.next_attempt_at)).where(
                    table.c.status.in_(["pending", "failed"])
                )
            )
            lease = connection.scalar(
                select(func.min(table.c.claim_expires_at)).where(table.c.status == "sending")
            )
        due = [t for t in (retry, lease) if t is not None]
        if not due:
            finished.set()
            return
        # Whole seconds (webhook-timestamp's unit): what falls due within one second is
        # attempted together, so a round serves many messages and each waits < 1 s extra.
        seconds = math.ceil(min(due).timestamp())
        clock.now = max(clock.now, dt.datetime.fromtimestamp(seconds, dt.UTC))

    barrier = threading.Barrier(2, action=advance, timeout=120)

    def dispatcher(name: str, seed: int) -> None:
        rng = random.Random(seed)
        senders = {
            "webhook": WebhookSender({"crm": Endpoint("crm", receiver.url, receiver.secret)})
        }
        try:
            while not finished.is_set():
                notify.dispatch_pending(
                    engine, worker_id=name, senders=senders, now=clock.now, batch=50,
                    lease_s=LEASE_S, policy=POLICY, rng=rng,
                )  # fmt: skip
                barrier.wait()
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    with doomed:  # closes the pipes however this ends
        try:
            assert doomed.stdout is not None
            assert doomed.stdout.readline().strip() == "CLAIMED"
            threads = [threading.Thread(target=dispatcher, args=(f"d{i}", i)) for i in (1, 2)]
            for thread in threads:
                thread.start()
            assert doomed.stdout.readline().strip() == "MID"
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=30)
        finally:
            if doomed.poll() is None:
                doomed.kill()
                doomed.wait()
    table = OutboxMessage.__table__
    with engine.connect() as connection:
        orphaned = set(
            connection.scalars(
                select(table.c.idempotency_key).where(
                    table.c.claimed_by == "doomed", table.c.status == "sending"
                )
            )
        )
    killed.set()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert len(orphaned) == KILLED_BATCH - KILLED_SENDS

    with engine.connect() as connection:
        rows = connection.execute(
            select(table.c.idempotency_key, table.c.status, table.c.attempts)
        ).all()
    keys = {r.idempotency_key for r in rows}
    # 0 lost: every message sent and accepted by the receiver.
    assert len(rows) == MESSAGES
    assert {r.status for r in rows} == {"sent"}
    assert set(receiver.accepted) == keys
    # 0 duplicated: no idempotency key was accepted twice.
    assert max(receiver.accepted.values()) == 1
    assert receiver.invalid == []
    # The receiver really failed about 30% of the requests, so retries were exercised.
    requests = sum(len(v) for v in receiver.attempts.values())
    assert 0.2 < receiver.failed / requests < 0.4
    # Attempts are recorded: the receiver saw each one (an orphan's first was never sent).
    for r in rows:
        assert r.attempts == len(receiver.attempts[r.idempotency_key]) + (
            r.idempotency_key in orphaned
        )
    # Retry gaps follow the schedule; an orphan is taken over exactly when its lease expires.
    start = int(T0.timestamp())
    checked = 0
    for key, stamps in receiver.attempts.items():
        first_attempt = 2 if key in orphaned else 1
        if key in orphaned:
            assert stamps[0] == start + LEASE_S
        for n, (earlier, later) in enumerate(itertools.pairwise(stamps), first_attempt):
            low, high = POLICY.delay_bounds_s(n)
            assert low <= later - earlier <= high + 1, (key, n, later - earlier)
            checked += 1
    assert checked == receiver.failed

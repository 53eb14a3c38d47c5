"""Change announcements: heard after commit, never after rollback; NOTIFY across processes."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from churndesk.db.engine import make_engine
from churndesk.services import changes as feed
from churndesk.services.changes import Changes


@pytest.fixture
def heard():
    received: list[Changes] = []
    feed.add_listener(received.append)
    yield received
    feed.remove_listener(received.append)


def test_listeners_hear_committed_changes_only(db_url: str, heard: list[Changes]) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            feed.publish(connection, Changes(customers=True, customer_ids=(1, 2)))
            assert heard == []  # not before commit
        assert len(heard) == 1
        assert heard[0].customer_ids == (1, 2)
        assert heard[0].initiator == feed.PROCESS_ID
        with pytest.raises(RuntimeError), engine.begin() as connection:
            feed.publish(connection, Changes(alerts=True))
            raise RuntimeError("rolled back")
        # The rolled-back announcement is gone for good, even after the next commit.
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT 1")
        assert [c.alerts for c in heard] == [False]
    finally:
        engine.dispose()


def test_payload_round_trips_and_caps_ids() -> None:
    many = Changes(customers=True, customer_ids=tuple(range(1000)), initiator="x")
    back = Changes.from_json(many.to_json())
    assert back.customers
    assert back.customer_ids == ()  # too many to list: "customers changed" is enough
    few = Changes(scores=True, customer_ids=(5,), initiator="y")
    assert Changes.from_json(few.to_json()) == few


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_other_processes_changes_arrive_by_notify(db_url: str) -> None:
    engine = make_engine(db_url)
    stop = threading.Event()
    ready = threading.Event()
    got: list[Changes] = []
    arrived = threading.Event()

    def on_changes(changes: Changes) -> None:
        got.append(changes)
        arrived.set()

    listener = threading.Thread(
        target=feed.listen_postgres,
        args=(engine, on_changes, stop),
        kwargs={"ready": ready, "poll_s": 0.1},
    )
    listener.start()
    try:
        assert ready.wait(10)
        code = (
            "from churndesk.db.engine import make_engine\n"
            "from churndesk.services.changes import Changes, publish\n"
            f"e = make_engine({db_url!r})\n"
            "with e.begin() as c:\n"
            "    publish(c, Changes(customers=True, customer_ids=(42,)))\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
        assert arrived.wait(10)
        assert got[0].customer_ids == (42,)
        assert got[0].initiator != feed.PROCESS_ID
    finally:
        stop.set()
        listener.join(10)
        engine.dispose()

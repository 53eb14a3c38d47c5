"""``churndesk rules|alerts|notify`` end to end on a real database, with --json and errors."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from sqlalchemy import Engine

from churndesk.cli import main
from churndesk.services import notify
from tests.db import test_alert_support as support
from tests.db.test_alert_support import Scenario

# Fixtures shared by the alert and notification tests (one database per module, emptied per test).
engine = support.engine
shared_db = support.shared_db

NOW = dt.datetime.now(dt.UTC)


class Cli:
    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url, self.capsys = url, capsys

    def run(self, *args: str, code: int = 0) -> str:
        self.capsys.readouterr()
        result = main(["--database", self.url, *args])
        out, err = self.capsys.readouterr()
        assert result == code, (out, err)
        return out if code == 0 else err

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json"))


@pytest.fixture
def cli(engine: Engine, shared_db: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    world = Scenario(engine)
    world.users(("alice", "analyst", "alice@example.com"), ("bob", "analyst", None))
    ids = world.customers(3, names=["Acme", "Globex", "Initech"])
    world.run(dict.fromkeys(ids, 30.0), at=NOW - dt.timedelta(days=1), psi=0.01)
    world.run({ids[0]: 95.0, ids[1]: 91.0, ids[2]: 35.0}, at=NOW, psi=0.02)
    return Cli(shared_db, capsys)


def test_rules_commands(cli: Cli) -> None:
    rules = cli.json("rules", "list")
    assert [r["kind"] for r in rules] == ["band_change", "score_rise", "model_drift"]
    added = cli.json(
        "rules", "add", "--name", "Over 90", "--kind", "score_threshold", "--threshold", "90",
        "--segment", "SMB", "--channel", "inapp", "--recipient", "alice", "--severity",
        "critical", "--user", "alice",
    )  # fmt: skip
    assert added["condition"] == "risk score ≥ 90 (segment: SMB)"
    assert added["created_by"] == "alice"
    assert "Over 90" in cli.run("rules", "show", "Over 90")
    assert cli.json("rules", "disable", str(added["id"]))["enabled"] is False
    assert "is enabled" in cli.run("rules", "enable", "Over 90")
    error = cli.run("rules", "add", "--name", "x", "--kind", "score_rise", "--points", "5",
                    code=1)  # fmt: skip
    assert error.strip() == "churndesk: The alert rule is not valid: A score_rise rule needs days."
    error = cli.run("rules", "add", "--name", "y", "--kind", "score_threshold", "--threshold",
                    "50", "--psi", "0.2", code=1)  # fmt: skip
    assert "does not take --psi" in error
    assert "Deleted rule" in cli.run("rules", "delete", "Over 90")


def test_alert_commands_through_the_lifecycle(cli: Cli) -> None:
    evaluated = cli.json("alerts", "evaluate")
    # Acme and Globex enter critical (2) and rose >= 20 points (2).
    assert evaluated["alerts_created"] == 4
    listed = cli.json("alerts", "list")
    assert len(listed) == 4 and {a["status"] for a in listed} == {"open"}
    first = listed[-1]["id"]
    assert (
        cli.json("alerts", "ack", str(first), "--note", "looking", "--user", "alice")["status"]
        == "acknowledged"
    )
    assigned = cli.json("alerts", "assign", str(first), "bob", "--user", "alice")
    assert assigned["assigned_to"] == "bob"
    assert (
        cli.json("alerts", "snooze", str(first), "--hours", "2", "--user", "alice")["status"]
        == "snoozed"
    )
    shown = cli.run("alerts", "show", str(first))
    assert "acknowledged by alice: looking" in shown and "snoozed by alice" in shown
    assert cli.json("alerts", "resolve", str(first), "--user", "alice")["status"] == "resolved"
    assert len(cli.json("alerts", "list")) == 3
    assert len(cli.json("alerts", "list", "--all")) == 4
    stats = cli.json("alerts", "stats", "--days", "7")
    assert stats["total"] == 4 and stats["per_status"]["resolved"] == 1
    assert "Mean time to acknowledge" in cli.run("alerts", "stats")
    error = cli.run("alerts", "ack", "999", "--user", "alice", code=1)
    assert error.strip() == "churndesk: There is no alert 999."
    error = cli.run("alerts", "resolve", str(first), "--user", "alice", code=1)
    assert "already resolved" in error


def test_notify_commands(cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.json("alerts", "evaluate")
    dispatched = cli.json("notify", "dispatch")
    # Two rules fired; in-app to alice and bob (the analysts) for each.
    assert dispatched["sent"] == 4 and dispatched["queue"]["sent"] == 4
    inbox = cli.json("notify", "inbox", "--user", "alice", "--mark-read")
    assert len(inbox) == 2
    assert cli.json("notify", "inbox", "--user", "alice") == []
    assert [m["status"] for m in cli.json("notify", "list")] == ["sent"] * 4

    added = cli.json("notify", "webhook", "add", "crm", "https://hooks.example.com/x",
                     "--user", "alice")  # fmt: skip
    assert added["secret"].startswith("whsec_")
    assert cli.json("notify", "webhook", "list") == [
        {"name": "crm", "url": "https://hooks.example.com/x", "secret_here": True}
    ]
    assert "removed" in cli.run("notify", "webhook", "remove", "crm", "--user", "alice")

    assert "not set up" in cli.run("notify", "smtp")
    monkeypatch.setattr("sys.stdin", io.StringIO("pa55word\n"))
    cli.run("notify", "smtp", "--host", "mail.example.com", "--port", "465", "--security",
            "tls", "--username", "bot", "--from", "alerts@example.com", "--password-stdin",
            "--user", "alice")  # fmt: skip
    shown = cli.json("notify", "smtp")
    assert shown["host"] == "mail.example.com" and shown["password_in_keyring"] is True
    error = cli.run("notify", "smtp", "--from", "not-an-address", code=1)
    assert "is not an e-mail address" in error

    with engine.begin() as connection:
        notify.enqueue(connection, channel="inapp", recipient="alice", payload={},
                       idempotency_key="x", now=NOW)  # fmt: skip
        connection.exec_driver_sql(
            "UPDATE notification_outbox SET status = 'dead', attempts = 10 "
            "WHERE idempotency_key = 'x'"
        )
    dead = cli.json("notify", "list", "--status", "dead")[0]
    assert cli.json("notify", "retry", str(dead["id"]), "--user", "alice")["status"] == "pending"

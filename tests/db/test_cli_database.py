"""The command line against real databases: upgrade, current, indexes, --json, wrong password."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from churndesk.db import pending_indexes
from churndesk.db.engine import make_engine
from tests import pg


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "churndesk", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_db_upgrade_then_current_reports_up_to_date(empty_db_url: str) -> None:
    first = run_cli("db", "upgrade", "--database", empty_db_url, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["upgraded_from"] == ""
    again = run_cli("--json", "--database", empty_db_url, "db", "upgrade")
    assert json.loads(again.stdout)["upgraded_from"] is None
    current = run_cli("db", "current", "--database", empty_db_url, "--json")
    data = json.loads(current.stdout)
    assert data["up_to_date"] is True
    assert data["revision"] == data["head"]
    human = run_cli("db", "current", "--database", empty_db_url)
    assert "up to date" in human.stdout


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_path_without_scheme_is_accepted(tmp_path: Path, backend: str) -> None:
    target = tmp_path / "plain.sqlite3"
    result = run_cli("db", "upgrade", "--database", str(target))
    assert result.returncode == 0, result.stderr
    assert target.exists()


PW_ROLE = "churndesk_pwtest"


@pytest.mark.postgres
def test_wrong_password_is_one_clear_line() -> None:
    pg.ensure_available()
    info = psycopg.conninfo.conninfo_to_dict(pg.admin_url())
    host, port = info.get("host", "127.0.0.1"), info.get("port", 5432)
    wrong = f"postgresql://{PW_ROLE}:not-the-password@{host}:{port}/postgres"
    try:
        psycopg.connect(wrong, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if "password authentication failed" not in str(exc):
            message = f"role {PW_ROLE} is not set up with a checked password (.ci/pg-setup.sh)"
            if pg.required():
                pytest.fail(message)
            pytest.skip(message)
    else:
        message = f"loopback trusts every password for {PW_ROLE}; run .ci/pg-setup.sh"
        if pg.required():
            pytest.fail(message)
        pytest.skip(message)
    result = run_cli("db", "current", "--database", wrong)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"churndesk: The server at {host}:{port} refused the password for user {PW_ROLE}."
    ]
    assert "not-the-password" not in result.stderr


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
def test_db_current_tells_of_indexes_left_and_db_indexes_builds_them(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        definitions = pg.leave_indexes_pending(
            engine, ["ix_customers_email_trgm", "ix_customers_plan_id"]
        )

        current = run_cli("db", "current", "--database", db_url, "--json")
        assert json.loads(current.stdout)["indexes_to_build"] == 2
        human = run_cli("db", "current", "--database", db_url).stdout
        assert "2 customer indexes wait to be built" in human
        assert "churndesk db indexes" in human

        built = run_cli("db", "indexes", "--database", db_url, "--json")
        assert built.returncode == 0, built.stderr
        assert json.loads(built.stdout)["built"] == 2
        assert pending_indexes.pending(engine) == []
        with engine.connect() as connection:
            now = dict(
                connection.exec_driver_sql(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'customers'"
                ).all()
            )
        assert now == definitions
        again = run_cli("db", "indexes", "--database", db_url)
        assert again.stdout.strip() == "No customer indexes were waiting to be built."
    finally:
        engine.dispose()

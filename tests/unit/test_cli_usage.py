"""Command-line conventions that need no database: usage errors, bad URLs, version."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from churndesk.cli import main


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "churndesk", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )


def test_wrong_usage_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["db", "no-such-action"])
    assert info.value.code == 2


def _one_clean_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("churndesk: ")
    return lines[0]


def test_malformed_database_url_is_one_clear_line() -> None:
    line = _one_clean_line(run_cli("db", "current", "--database", "mysql://x@y/z"))
    assert "SQLite and PostgreSQL" in line


def test_unreachable_server_is_one_clear_line() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    line = _one_clean_line(
        run_cli("--database", f"postgresql://someone@127.0.0.1:{port}/db", "db", "current")
    )
    assert f"127.0.0.1:{port}" in line
    assert "is it running" in line


def test_missing_folder_is_one_clear_line(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "folder" / "x.sqlite3"
    line = _one_clean_line(run_cli("db", "upgrade", "--database", str(target)))
    assert "does not exist" in line


def test_a_file_that_is_not_a_database_is_one_clear_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not sqlite" * 100)
    line = _one_clean_line(run_cli("db", "upgrade", "--database", str(junk)))
    assert "not a churndesk database" in line
    assert junk.read_bytes() == b"this is not sqlite" * 100

"""Local settings and database URL resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from churndesk.config import (
    DATABASE_URL_ENV,
    LocalSettings,
    default_database_url,
    resolve_database_url,
    sqlite_url,
)


def test_settings_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    LocalSettings(database_url="sqlite:///x.db", username="alice").save(path)
    loaded = LocalSettings.load(path)
    assert loaded.database_url == "sqlite:///x.db"
    assert loaded.username == "alice"
    assert not path.with_suffix(".tmp").exists()


def test_settings_from_an_older_or_broken_file_load_safely(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"database_url": "sqlite:///old.db", "retired_key": 1}))
    loaded = LocalSettings.load(path)
    assert loaded.database_url == "sqlite:///old.db"
    assert loaded.version == 1
    path.write_text("{ not json")
    assert LocalSettings.load(path) == LocalSettings()


def test_database_url_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert resolve_database_url() == default_database_url()
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://env@h/db")
    assert resolve_database_url() == "postgresql://env@h/db"
    assert resolve_database_url("postgresql://cli@h/db") == "postgresql://cli@h/db"
    assert resolve_database_url(str(tmp_path / "f.db")) == sqlite_url(tmp_path / "f.db")

"""Typed, versioned local settings and where churndesk keeps its files; no Qt, no I/O at import.

Per-desktop settings (which database to open, who logs in) live in a small JSON file in the
platform's config directory. Settings shared by every desktop of one database live in the
database's ``settings`` table. Passwords never live in either: they go to the OS keyring.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "churndesk"
DATABASE_URL_ENV = "CHURNDESK_DATABASE_URL"
SETTINGS_VERSION = 1


def data_dir() -> Path:
    """The per-user data directory (the default SQLite database lives here)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def default_database_path() -> Path:
    return data_dir() / "churndesk.sqlite3"


def sqlite_url(path: Path | str) -> str:
    return f"sqlite:///{Path(path).expanduser().resolve()}"


def default_database_url() -> str:
    return sqlite_url(default_database_path())


def demo_database_path() -> Path:
    return data_dir() / "demo.sqlite3"


def resolve_database_url(explicit: str | None = None) -> str:
    """The database to use: an explicit URL, else $CHURNDESK_DATABASE_URL, else local settings.

    A bare file path is accepted as a SQLite database.
    """
    url = explicit or os.environ.get(DATABASE_URL_ENV) or LocalSettings.load().database_url
    if not url:
        # The default file's folder is ours to create; an explicit path's folder is not.
        default_database_path().parent.mkdir(parents=True, exist_ok=True)
        url = default_database_url()
    if "://" not in url:
        url = sqlite_url(url)
    return url


@dataclass(frozen=True)
class BandCutoffs:
    """Risk-score cut-offs: below ``medium`` is low, at or above ``critical`` is critical."""

    medium: float = 40.0
    high: float = 60.0
    critical: float = 80.0


@dataclass
class LocalSettings:
    """Settings of this desktop; saved as JSON with a version for step-wise migrations."""

    version: int = SETTINGS_VERSION
    database_url: str | None = None
    username: str | None = None
    recent_databases: list[str] = field(default_factory=list)

    @classmethod
    def path(cls) -> Path:
        return config_dir() / "settings.json"

    @classmethod
    def load(cls, path: Path | None = None) -> LocalSettings:
        path = path or cls.path()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(raw, dict):
            return cls()
        raw = _migrate(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def save(self, path: Path | None = None) -> None:
        path = path or self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        # Replace atomically so a crash never leaves a half-written settings file.
        tmp.replace(path)


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an older settings dict up to SETTINGS_VERSION, one step at a time."""
    version = int(raw.get("version", 1))
    # Steps go here as ``if version == N: ...; version = N + 1`` when the format changes.
    raw["version"] = max(version, SETTINGS_VERSION)
    return raw

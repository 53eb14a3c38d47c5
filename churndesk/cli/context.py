"""What every command handler gets: the parsed options, the database on demand, and output."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from churndesk.config import resolve_database_url
from churndesk.db.connect import Database, open_database


@dataclass
class CommandContext:
    args: argparse.Namespace
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    _database: Database | None = None

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @property
    def database_url(self) -> str:
        return resolve_database_url(getattr(self.args, "database", None))

    def database(self) -> Database:
        """Open (and upgrade) the selected database once per command."""
        if self._database is None:
            self._database = open_database(self.database_url, progress=self._upgrade_note)
        return self._database

    def _upgrade_note(self, fraction: float, text: str) -> None:
        if not self.json and fraction < 1.0:
            print(text + "…", file=self.stderr)

    def emit(self, data: Any, human: str) -> None:
        """Print ``data`` as JSON with --json, else the human-readable text."""
        if self.json:
            json.dump(data, self.stdout, indent=2, default=str, ensure_ascii=False)
            self.stdout.write("\n")
        else:
            self.stdout.write(human.rstrip("\n") + "\n")

    def close(self) -> None:
        if self._database is not None:
            self._database.engine.dispose()
            self._database = None

"""Fixtures that give each test its own database, on SQLite and on PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from churndesk.config import sqlite_url
from churndesk.db import migrate
from churndesk.db.engine import make_engine
from tests import pg

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session; tests get copies."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(sqlite_url(path))
    migrate.upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session, used as CREATE DATABASE template."""
    with pg.scratch_database() as name:
        engine = make_engine(pg.sqlalchemy_url(pg.database_dsn(name)))
        migrate.upgrade(engine)
        engine.dispose()
        yield name


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at the head revision, private to this test."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(template, path)
        yield sqlite_url(path)
    else:
        template = request.getfixturevalue("pg_template")
        with pg.scratch_database(template) as name:
            yield pg.sqlalchemy_url(pg.database_dsn(name))


@pytest.fixture
def empty_db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database with no schema at all."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path / "empty.sqlite3")
    else:
        with pg.scratch_database() as name:
            yield pg.sqlalchemy_url(pg.database_dsn(name))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on this test's database (files that need another kind define their own)."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()

"""The open-database dialog: SQLite files, PostgreSQL with a wrong password, keyring, retry."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from churndesk.ui.panes.open_database import OpenDatabaseDialog, postgres_url
from tests import pg


def _open(qtbot, dialog: OpenDatabaseDialog) -> None:
    dialog.try_open()
    qtbot.waitUntil(lambda: dialog.buttons.isEnabled(), timeout=30_000)


def test_a_new_sqlite_file_is_created_and_opened(qtbot, tmp_path: Path) -> None:
    dialog = OpenDatabaseDialog()
    qtbot.addWidget(dialog)
    dialog.file_choice.setChecked(True)
    target = tmp_path / "team.sqlite3"
    dialog.path_edit.setText(str(target))
    with qtbot.waitSignal(dialog.accepted, timeout=30_000):
        dialog.try_open()
    assert dialog.database is not None
    assert dialog.database.display_name == str(target)
    assert target.exists()
    dialog.database.engine.dispose()


def test_an_empty_file_choice_is_explained(qtbot) -> None:
    dialog = OpenDatabaseDialog()
    qtbot.addWidget(dialog)
    dialog.file_choice.setChecked(True)
    dialog.try_open()
    assert "Choose a SQLite file" in dialog.message.text()
    assert dialog.database is None


def test_a_file_that_is_not_a_database_can_be_retried(qtbot, tmp_path: Path) -> None:
    junk = tmp_path / "notes.sqlite3"
    junk.write_bytes(b"not a database" * 50)
    dialog = OpenDatabaseDialog()
    qtbot.addWidget(dialog)
    dialog.file_choice.setChecked(True)
    dialog.path_edit.setText(str(junk))
    _open(qtbot, dialog)
    assert "not a churndesk database" in dialog.message.text()
    assert "try again" in dialog.message.text()
    dialog.path_edit.setText(str(tmp_path / "fresh.sqlite3"))
    with qtbot.waitSignal(dialog.accepted, timeout=30_000):
        dialog.try_open()
    dialog.database.engine.dispose()


def test_postgres_urls_never_hold_the_password() -> None:
    url = postgres_url("db.example.com", 5433, "churn", "alice")
    assert url == "postgresql://alice@db.example.com:5433/churn"


@pytest.mark.postgres
def test_wrong_password_then_right_one_saved_in_the_keyring(qtbot, memory_keyring) -> None:
    pg.ensure_available()
    info = psycopg.conninfo.conninfo_to_dict(pg.admin_url())
    host, port = info.get("host", "127.0.0.1"), int(info.get("port", 5432))
    try:
        psycopg.connect(
            f"postgresql://churndesk_pwtest:wrong@{host}:{port}/postgres", connect_timeout=5
        ).close()
        pytest.skip("loopback trusts every password here; .ci/pg-setup.sh configures it")
    except psycopg.OperationalError:
        pass
    with pg.scratch_database() as name:
        admin = psycopg.connect(pg.admin_url(), autocommit=True)
        admin.execute(f'GRANT ALL ON DATABASE "{name}" TO churndesk_pwtest')
        admin.close()
        with psycopg.connect(pg.database_dsn(name), autocommit=True) as conn:
            conn.execute("GRANT ALL ON SCHEMA public TO churndesk_pwtest")
        dialog = OpenDatabaseDialog()
        qtbot.addWidget(dialog)
        dialog.server_choice.setChecked(True)
        dialog.host_edit.setText(host)
        dialog.port_spin.setValue(port)
        dialog.name_edit.setText(name)
        dialog.user_edit.setText("churndesk_pwtest")
        dialog.password_edit.setText("wrong")
        dialog.save_password.setChecked(True)
        _open(qtbot, dialog)
        assert "refused the password" in dialog.message.text()
        assert memory_keyring.store == {}
        dialog.password_edit.setText("right-password")
        with qtbot.waitSignal(dialog.accepted, timeout=30_000):
            dialog.try_open()
        assert dialog.database is not None
        dialog.database.engine.dispose()
        assert list(memory_keyring.store.values()) == ["right-password"]
        assert "right-password" not in (dialog.url or "")

"""The import wizard end to end on the real Telco file, and its error and cancel paths."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from PySide6.QtWidgets import QWizard
from sqlalchemy import func, select

from churndesk.db.connect import Database
from churndesk.db.models import Customer
from churndesk.services.importing import import_customers
from churndesk.ui.panes.import_wizard import NOT_IMPORTED, ImportWizard


def _count(database: Database) -> tuple[int, int]:
    with database.engine.connect() as connection:
        total = connection.scalar(select(func.count()).select_from(Customer)) or 0
        churned = connection.scalar(
            select(func.count()).select_from(Customer).where(Customer.status == "churned")
        )
    return int(total), int(churned or 0)


def _wizard(qtbot, database: Database, jobs) -> ImportWizard:
    wizard = ImportWizard(database.engine, jobs, "alice")
    qtbot.addWidget(wizard)
    wizard.show()
    return wizard


def test_telco_file_imports_end_to_end(qtbot, database, jobs, telco_csv: Path) -> None:
    wizard = _wizard(qtbot, database, jobs)
    wizard.file_page.path_edit.setText(str(telco_csv))
    wizard.next()
    assert wizard.currentPage() is wizard.mapping_page
    page = wizard.mapping_page
    # The Telco layout is recognised: the ID, revenue and churn columns are mapped.
    assert page.combos["external_id"].currentText() == "customerID"
    assert page.combos["monthly_revenue"].currentText() == "MonthlyCharges"
    assert page.combos["status"].currentText() == "Churn"
    assert page.combos["email"].currentText() == NOT_IMPORTED
    assert page.preview_table.rowCount() > 0
    assert "Telco" in page.layout_label.text()
    assert page.isComplete()
    wizard.next()
    qtbot.waitUntil(lambda: wizard.currentPage() is wizard.result_page, timeout=60_000)
    assert "7,043 new" in wizard.result_page.summary.text()
    assert re.search(r"rejected, in (under a second|\d+ s)\.", wizard.result_page.summary.text())
    assert "No row had a problem." in wizard.result_page.summary.text()
    assert wizard.result_page.errors.isHidden() and wizard.result_page.save_button.isHidden()
    assert _count(database) == (7043, 1869)
    assert not wizard.run_page.tick.isActive()


def test_unmapping_the_id_column_blocks_the_import(qtbot, database, jobs, telco_csv) -> None:
    wizard = _wizard(qtbot, database, jobs)
    wizard.file_page.path_edit.setText(str(telco_csv))
    wizard.next()
    page = wizard.mapping_page
    page.combos["external_id"].setCurrentIndex(0)
    assert not page.isComplete()
    assert page.problems.text()
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()


def test_unreadable_file_is_explained_on_the_first_page(qtbot, database, jobs, tmp_path) -> None:
    binary = tmp_path / "picture.csv"
    binary.write_bytes(bytes(range(256)) * 40)
    wizard = _wizard(qtbot, database, jobs)
    wizard.file_page.path_edit.setText(str(binary))
    wizard.next()
    assert wizard.currentPage() is wizard.file_page
    assert "binary" in wizard.file_page.message.text().lower()


def test_bad_rows_are_listed_and_the_report_can_be_saved(qtbot, database, jobs, tmp_path) -> None:
    source = tmp_path / "crm.csv"
    source.write_text(
        "external_id,name,email,monthly_revenue\n"
        "A1,<b>Bold</b> Ltd,a1@example.com,10\n"
        "A2,Bad Revenue,a2@example.com,-5\n"
        "A3,Bad Mail,not-an-email,7\n",
        encoding="utf-8",
    )
    wizard = _wizard(qtbot, database, jobs)
    wizard.file_page.path_edit.setText(str(source))
    wizard.next()
    wizard.next()
    qtbot.waitUntil(lambda: wizard.currentPage() is wizard.result_page, timeout=60_000)
    page = wizard.result_page
    assert "2 rejected" in page.summary.text()
    assert page.errors.rowCount() == 2
    assert not page.errors.isHidden() and page.save_button.isEnabled()
    columns = {page.errors.item(r, 1).text() for r in range(2)}
    assert columns == {"monthly_revenue", "email"}
    target = tmp_path / "saved-errors.csv"
    wizard.save_error_report(target)
    assert "not-an-email" in target.read_text(encoding="utf-8")
    assert _count(database)[0] == 1


def _fake_clock(page, times: list[float]) -> None:
    ticks = iter(times)
    page.clock = lambda: next(ticks)


def test_the_run_page_lists_each_step_with_its_duration(qtbot, database, jobs) -> None:
    wizard = _wizard(qtbot, database, jobs)
    page = wizard.run_page
    _fake_clock(page, [0.0, 4.0, 20.4, 20.4, 22.0, 40.0, 61.0, 62.2, 62.2])
    for fraction, text in [
        (0.0, "Reading big.csv"),
        (0.2, "Reading big.csv: 200,000 rows (0 rejected)"),
        (0.5, "Reading big.csv: 1,000,000 rows (3 rejected)"),
        (0.5, "Saving 999,997 customers"),
        (0.55, "Rebuilding the customer indexes"),
        (0.9, "Rebuilding the customer indexes"),
        (0.99, "Committing 999,997 customers"),
        (1.0, "Import finished"),
    ]:
        page._on_worker_progressed(fraction, text)
    page.done()
    assert page.steps.text().splitlines() == [
        "✓ Reading big.csv: 1,000,000 rows (3 rejected) (20 s)",
        "✓ Saving 999,997 customers (2 s)",
        "✓ Rebuilding the customer indexes (39 s)",
        "✓ Committing 999,997 customers (1 s)",
    ]
    assert page.bar.value() == 100
    assert page.time_left.text() == ""


def test_a_stopped_import_says_which_step_it_stopped_in(qtbot, database, jobs) -> None:
    wizard = _wizard(qtbot, database, jobs)
    page = wizard.run_page
    _fake_clock(page, [0.0, 1.5, 95.0])
    page._on_worker_progressed(0.0, "Reading big.csv")
    page._on_worker_progressed(0.3, "Saving customers: 300,000 of 1,000,000")
    page.done("The import was cancelled. Nothing was imported.")
    assert page.steps.text().splitlines() == [
        "✓ Reading big.csv (2 s)",
        "✗ Stopped while: Saving customers: 300,000 of 1,000,000 (1 min 34 s)",
    ]
    assert "cancelled" in page.message.text()


def test_the_bar_says_about_how_long_is_left(qtbot, database, jobs) -> None:
    """The time so far scaled by the share still to do; it grows while a step holds the bar
    still, and is not guessed from the first moments."""
    wizard = _wizard(qtbot, database, jobs)
    page = wizard.run_page
    _fake_clock(page, [100.0, 101.0, 110.0, 120.0, 150.0, 151.0])
    page._on_worker_progressed(0.0, "Reading big.csv")
    page._on_worker_progressed(0.02, "Reading big.csv: 20,000 rows (0 rejected)")
    assert page.time_left.text() == ""  # 2 % after 1 s: too early to say
    page._on_worker_progressed(0.25, "Reading big.csv: 250,000 rows (0 rejected)")
    assert page.time_left.text() == "about 30 s left"  # 10 s for a quarter
    page._on_tick()  # 20 s in, the bar still at 25 %
    assert page.time_left.text() == "about 1 min left"
    page._on_worker_progressed(0.75, "Rebuilding the customer indexes")  # 50 s in
    assert page.time_left.text() == "about 17 s left"
    page.done()
    assert page.time_left.text() == ""
    assert not page.tick.isActive()


def test_once_committing_the_import_cannot_be_cancelled(qtbot, database, jobs) -> None:
    """On PostgreSQL the indexes are built after the commit: cancel could no longer undo
    anything, so the button says so by being disabled."""
    wizard = _wizard(qtbot, database, jobs)
    page = wizard.run_page
    _fake_clock(page, [0.0, 30.0, 31.0, 31.5, 57.0, 57.0])
    page._on_worker_progressed(0.0, "Reading big.csv")
    page._on_worker_progressed(0.5, "Saving 1,000,000 customers")
    assert page.cancel_button.isEnabled()
    page._on_worker_progressed(0.56, "Committing 1,000,000 customers")
    assert not page.cancel_button.isEnabled()
    page._on_worker_progressed(0.57, "Rebuilding the customer indexes")
    page._on_worker_progressed(1.0, "Import finished")
    assert not page.cancel_button.isEnabled()
    page.done()
    assert page.steps.text().splitlines() == [
        "✓ Reading big.csv (30 s)",
        "✓ Saving 1,000,000 customers (1 s)",
        "✓ Committing 1,000,000 customers (under a second)",
        "✓ Rebuilding the customer indexes (26 s)",
    ]


def test_a_problem_after_the_commit_is_shown_with_the_result(
    qtbot, database, jobs, tmp_path: Path
) -> None:
    path = tmp_path / "one.csv"
    path.write_text("external_id,name\nc1,Ada\n", encoding="utf-8")
    result = import_customers(database.engine, path)
    warning = "The index ix_customers_name_trgm could not be built; searches stay slow."
    wizard = _wizard(qtbot, database, jobs)
    wizard.result = dataclasses.replace(result, warnings=(warning,))
    wizard.result_page.initializePage()
    text = wizard.result_page.summary.text()
    assert text.startswith("Imported 1 of 1 row —")
    assert text.endswith(warning)

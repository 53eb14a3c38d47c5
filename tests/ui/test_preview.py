"""Every preview screen builds with demo data (Orange's WidgetPreview smoke test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from churndesk.ui import preview
from churndesk.ui.main_window import PAGES, MainWindow


@pytest.mark.parametrize("screen", sorted(preview.SCREENS))
def test_preview_screen_builds_and_renders(qtbot, tmp_path: Path, screen: str) -> None:
    database = preview.demo_database(tmp_path, customers=200)
    try:
        shown = preview.SCREENS[screen](database)
        qtbot.addWidget(shown.window)
        shown.window.show()
        shown.widget.show()
        jobs = getattr(shown.window, "jobs", None)
        if jobs is not None:
            qtbot.waitUntil(lambda: not jobs.busy(), timeout=10_000)
        if shown.when_ready is not None:
            shown.when_ready()
        if isinstance(shown.window, MainWindow) and screen in dict(PAGES):
            assert shown.window.current_page() == screen
        if screen == "detail":
            detail = shown.window.customers_pane.detail  # type: ignore[attr-defined]
            qtbot.waitUntil(lambda: detail.record is not None, timeout=10_000)
        image = shown.widget.grab()
        assert not image.isNull()
        assert image.width() > 100
        shown.widget.close()
        shown.window.close()
    finally:
        database.engine.dispose()


def test_screenshot_is_written_after_the_jobs_finish(tmp_path: Path, qapp) -> None:
    out = tmp_path / "models.png"
    assert preview.main(["models", "--screenshot", str(out)]) == 0
    assert out.stat().st_size > 10_000

"""Every preview screen builds with demo data (Orange's WidgetPreview smoke test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from churndesk.ui import preview


@pytest.mark.parametrize("screen", sorted(preview.SCREENS))
def test_preview_screen_builds_and_renders(qtbot, tmp_path: Path, screen: str) -> None:
    database = preview.demo_database(tmp_path, customers=200)
    try:
        widget = preview.SCREENS[screen](database)
        qtbot.addWidget(widget)
        widget.show()
        jobs = getattr(widget, "jobs", None)
        if jobs is not None:
            qtbot.waitUntil(lambda: not jobs.busy(), timeout=10_000)
        image = widget.grab()
        assert not image.isNull()
        assert image.width() > 100
        widget.close()
    finally:
        database.engine.dispose()

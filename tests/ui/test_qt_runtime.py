"""Guards against known-bad Qt bindings: a refcount bug that crashes long sessions."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QLabel


def test_event_processing_does_not_steal_references_to_none(qtbot) -> None:
    # PySide6 6.12.0 dropped one reference to None per processEvents()/repaint() call; on
    # Python 3.11 None is not immortal, so a long session aborted with "deallocating None".
    label = QLabel("x")
    qtbot.addWidget(label)
    label.show()
    app = QApplication.instance()
    assert app is not None
    for _ in range(20):
        app.processEvents()
    before = sys.getrefcount(None)
    for _ in range(200):
        app.processEvents()
        label.repaint()
    assert sys.getrefcount(None) - before > -100

"""Remember UI state (geometry, splitters, table headers) in QSettings, apart from settings."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QHeaderView, QMainWindow, QSplitter, QWidget


def ui_settings() -> QSettings:
    return QSettings()


def save_layout(widget: QWidget, key: str) -> None:
    settings = ui_settings()
    settings.setValue(f"{key}/geometry", widget.saveGeometry())
    if isinstance(widget, QMainWindow):
        settings.setValue(f"{key}/state", widget.saveState())
    for splitter in widget.findChildren(QSplitter):
        if splitter.objectName():
            settings.setValue(f"{key}/splitter/{splitter.objectName()}", splitter.saveState())
    for header in widget.findChildren(QHeaderView):
        if header.objectName():
            settings.setValue(f"{key}/header/{header.objectName()}", header.saveState())
    settings.sync()


def restore_layout(widget: QWidget, key: str) -> bool:
    """Restore what :func:`save_layout` saved; False if nothing was saved yet."""
    settings = ui_settings()
    geometry = settings.value(f"{key}/geometry")
    if not isinstance(geometry, QByteArray):
        return False
    widget.restoreGeometry(geometry)
    if isinstance(widget, QMainWindow):
        state = settings.value(f"{key}/state")
        if isinstance(state, QByteArray):
            widget.restoreState(state)
    for splitter in widget.findChildren(QSplitter):
        state = settings.value(f"{key}/splitter/{splitter.objectName()}")
        if isinstance(state, QByteArray):
            splitter.restoreState(state)
    for header in widget.findChildren(QHeaderView):
        state = settings.value(f"{key}/header/{header.objectName()}")
        if isinstance(state, QByteArray):
            header.restoreState(state)
    return True

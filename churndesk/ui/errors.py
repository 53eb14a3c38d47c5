"""Show errors to people: the message in a dialog, the details one click away and in the log."""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget

from churndesk.errors import ChurndeskError

log = logging.getLogger(__name__)


def user_message(exc: BaseException) -> str:
    if isinstance(exc, ChurndeskError):
        return exc.user_message
    return "Something went wrong inside churndesk. The details have been written to the log."


def details_of(exc: BaseException) -> str:
    parts = []
    if isinstance(exc, ChurndeskError) and exc.details:
        parts.append(exc.details)
    parts.append("".join(traceback.format_exception(exc)))
    return "\n\n".join(parts)


def error_box(parent: QWidget | None, exc: BaseException, title: str = "churndesk") -> QMessageBox:
    """Build (not show) the message box for ``exc``; every value is shown as plain text."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    # PlainText: a customer called "<b>x</b>" in a message must read literally.
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setText(user_message(exc))
    box.setDetailedText(details_of(exc))
    copy = box.addButton("Copy details", QMessageBox.ButtonRole.ActionRole)
    box.addButton(QMessageBox.StandardButton.Close)
    copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(details_of(exc)))
    return box


def show_error(parent: QWidget | None, exc: BaseException, title: str = "churndesk") -> None:
    log.error("%s", user_message(exc), exc_info=(type(exc), exc, exc.__traceback__))
    error_box(parent, exc, title).exec()


def install_excepthook() -> None:
    """Log uncaught exceptions on the GUI thread instead of letting PySide6 abort."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.critical("uncaught exception", exc_info=(exc_type, exc, tb))

    sys.excepthook = hook

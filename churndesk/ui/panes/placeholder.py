"""An honest page for what is not built yet, or an empty state that names the next step."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget


class MessagePage(QWidget):
    """A centred title, an explanation and an optional action button."""

    action_triggered = Signal()

    def __init__(
        self,
        title: str,
        text: str,
        action: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        self.title_label = QLabel(title)
        self.title_label.setTextFormat(Qt.TextFormat.PlainText)
        self.title_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.title_label.setFont(font)
        self.text_label = QLabel(text)
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        self.text_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text_label.setWordWrap(True)
        layout.addWidget(self.title_label)
        layout.addWidget(self.text_label)
        self.action_button: QPushButton | None = None
        if action:
            self.action_button = QPushButton(action)
            self.action_button.clicked.connect(self.action_triggered)
            layout.addWidget(self.action_button, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(2)

    def set_message(self, title: str, text: str) -> None:
        self.title_label.setText(title)
        self.text_label.setText(text)


def coming_page(name: str, what: str) -> MessagePage:
    return MessagePage(
        f"{name} — coming soon",
        f"{what}\n\nThis part of churndesk is not built yet; the rest of the app works.",
    )

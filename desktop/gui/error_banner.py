"""Errors shown in the window: one line a person can act on, never a traceback."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget


class ErrorBanner(QFrame):
    """A dismissible line at the top of the window with the latest error."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setStyleSheet("#errorBanner { background: #b3261e; border-radius: 4px; }"
                           "#errorBanner QLabel, #errorBanner QToolButton { color: white; }")
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        close = QToolButton(self)
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.messages: list[str] = []
        self.hide()

    def show_error(self, message: str) -> None:
        """Show ``message`` (its first line, up to 400 characters; the rest is in the log)."""
        line = message.strip().splitlines()[0] if message.strip() else "something went wrong"
        self.messages.append(line)
        self.label.setText(line[:400])
        self.label.setToolTip(message[:4000])
        self.show()

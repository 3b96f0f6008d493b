"""The passage behind a citation or an evidence sentence, highlighted in its context, with a
way to open the file; a passage OCR read from an image is marked with OCR's confidence."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.core.answering.conversations import SourceRecord
from desktop.gui import render, theme
from desktop.gui.open_file import open_at_page, show_in_folder


class SourcePanel(QWidget):
    """Shows one cited passage (and within it, an evidence sentence); hidden until a citation
    or an evidence sentence is clicked."""

    closed = Signal()
    opened = Signal(str)  # a status line: how the file was opened

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source: SourceRecord | None = None
        self.sentence: tuple[int, int] | None = None
        self._context: tuple[str, str, bool] = ("", "", True)
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.title.setObjectName("sourceTitle")
        self.ocr_badge = QLabel(self)
        self.ocr_badge.setObjectName("ocrBadge")
        self.ocr_badge.hide()
        close = QToolButton(self)
        close.setText("✕")
        close.setToolTip("Close (Esc)")
        close.setAutoRaise(True)
        close.clicked.connect(self.close_panel)
        self.text = QTextBrowser(self)
        self.open_button = QPushButton("Open file", self)
        self.open_button.clicked.connect(self.open_file)
        self.folder_button = QPushButton("Show in folder", self)
        self.folder_button.clicked.connect(self.show_folder)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.ocr_badge, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.folder_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.text, 1)
        layout.addLayout(buttons)
        self.hide()

    def show_source(self, source: SourceRecord, before: str = "", after: str = "",
                    indexed: bool = True, sentence: tuple[int, int] | None = None) -> None:
        """Show ``source`` (its passage highlighted between ``before`` and ``after``) and,
        scrolled to, the evidence sentence at offsets ``sentence`` of its text."""
        self.source, self.sentence = source, sentence
        self._context = (before, after, indexed)
        self.title.setText(render.source_title(source))
        self.title.setToolTip(source.path)
        if source.ocr is None:
            self.ocr_badge.hide()
        else:
            self.ocr_badge.setText(f"OCR {source.ocr:.0%}")
            self.ocr_badge.setToolTip(render.ocr_note(source.ocr))
            self.ocr_badge.show()
        self._render()
        self.show()

    def _render(self) -> None:
        if self.source is None:
            return
        before, after, indexed = self._context
        colors = theme.colors(self.palette())
        self.ocr_badge.setStyleSheet(f"#ocrBadge {{ color: {colors.text}; background: "
                                     f"{colors.question}; border: 1px solid {colors.muted}; "
                                     f"border-radius: 3px; padding: 1px 5px; }}")
        self.text.setHtml(render.passage_html(self.source, before, after, colors, indexed,
                                              self.sentence))
        self.text.scrollToAnchor("passage" if self.sentence is None else "evidence")

    def close_panel(self) -> None:
        self.hide()
        self.closed.emit()

    def open_file(self) -> None:
        if self.source is not None:
            self.opened.emit(open_at_page(self.source.path, self.source.page))

    def show_folder(self) -> None:
        if self.source is not None:
            self.opened.emit(show_in_folder(self.source.path))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._render()

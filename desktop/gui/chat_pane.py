"""The chat pane: the conversation of the current collection, a question box, Ask / Stop."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QMimeData, QUrl, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop.core.answering.conversations import EvidenceRecord, SourceRecord, Turn
from desktop.gui import render, theme


class Transcript(QTextBrowser):
    """The conversation as rich text; a streaming answer shows its evidence as soon as it is
    found, then is appended token by token."""

    citation_clicked = Signal(int, int)  # turn index, source number
    evidence_clicked = Signal(int, int)  # turn index (len(turns): the pending one), index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.anchorClicked.connect(self._on_anchor)
        self.turns: list[Turn] = []
        self.pending: str | None = None
        self.pending_evidence: tuple[EvidenceRecord, ...] = ()
        self.pending_sources: tuple[SourceRecord, ...] = ()
        self.streamed = ""
        self.render()

    def render(self) -> None:
        """Redraw the whole conversation (not per token: see :meth:`append`)."""
        self.setHtml(render.transcript_html(self.turns, theme.colors(self.palette()),
                                            self.pending, self.pending_evidence,
                                            self.pending_sources))
        if self.pending is not None and self.streamed:
            self._insert(self.streamed)
        self.scroll_to_end()

    def createMimeDataFromSelection(self) -> QMimeData:  # noqa: N802 (Qt's name)
        """What a copy carries: the plain text with the ordinary spaces and hyphens that
        :func:`render.unbroken` made no-break for the screen."""
        data = super().createMimeDataFromSelection()
        data.setText(render.plain_copy(data.text()))
        return data

    def set_turns(self, turns: Sequence[Turn]) -> None:
        self.turns = list(turns)
        self._clear_pending()
        self.render()

    def begin(self, question: str) -> None:
        self._clear_pending()
        self.pending = question
        self.render()

    def show_evidence(self, evidence: Sequence[EvidenceRecord],
                      sources: Sequence[SourceRecord]) -> None:
        """Show the pending answer's evidence (found before the model's first token)."""
        if self.pending is None:
            return
        self.pending_evidence, self.pending_sources = tuple(evidence), tuple(sources)
        self.render()

    def evidence_at(self, turn: int, i: int) -> tuple[EvidenceRecord, SourceRecord] | None:
        """Evidence sentence ``i`` of turn ``turn`` (``len(turns)``: the pending answer) and
        the source it comes from; None when there is no such sentence."""
        if 0 <= turn < len(self.turns):
            evidence, sources = self.turns[turn].evidence, self.turns[turn].sources
        elif turn == len(self.turns) and self.pending is not None:
            evidence, sources = self.pending_evidence, self.pending_sources
        else:
            return None
        if not 0 <= i < len(evidence):
            return None
        source = next((s for s in sources if s.n == evidence[i].n), None)
        return None if source is None else (evidence[i], source)

    def _clear_pending(self) -> None:
        self.pending, self.streamed = None, ""
        self.pending_evidence, self.pending_sources = (), ()

    def append(self, text: str) -> None:
        """Add streamed text at the end, following it if the view was at the bottom."""
        bar = self.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 4
        self.streamed += text
        self._insert(text)
        if follow:
            bar.setValue(bar.maximum())

    def _insert(self, text: str) -> None:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)

    def finish(self, turn: Turn | None) -> None:
        """End the streaming answer: keep ``turn`` (None drops the pending question)."""
        if turn is not None:
            self.turns.append(turn)
        self._clear_pending()
        self.render()

    def scroll_to_end(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _on_anchor(self, url: QUrl) -> None:
        kind, _, rest = url.toString().partition(":")
        turn, _, n = rest.partition(":")
        if not (turn.isdigit() and n.isdigit()):
            return
        if kind == "cite":
            self.citation_clicked.emit(int(turn), int(n))
        elif kind == "evidence":
            self.evidence_clicked.emit(int(turn), int(n))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.render()


class ChatPane(QWidget):
    """Transcript + question box; emits what the person asks for."""

    ask_requested = Signal(str)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.transcript = Transcript(self)
        self.question = QLineEdit(self)
        self.question.setPlaceholderText("Ask a question about your files…  (Enter)")
        self.question.setClearButtonEnabled(True)
        self.question.returnPressed.connect(self._ask)
        self.ask_button = QPushButton("Ask", self)
        self.ask_button.setDefault(True)
        self.ask_button.clicked.connect(self._ask_or_stop)
        self.scope = QLabel(self)
        self.scope.setObjectName("scope")
        row = QHBoxLayout()
        row.addWidget(self.question, 1)
        row.addWidget(self.ask_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.scope)
        layout.addLayout(row)
        self.busy = False

    def set_scope(self, collection: str) -> None:
        self.scope.setText(f"Answers come from the collection “{collection}”.")

    def set_busy(self, busy: bool) -> None:
        """While answering, the Ask button is a Stop button (Esc)."""
        self.busy = busy
        self.ask_button.setText("Stop" if busy else "Ask")
        self.ask_button.setToolTip("Stop the answer (Esc)" if busy else "Ask (Enter)")

    def _ask(self) -> None:
        text = self.question.text().strip()
        if text and not self.busy:
            self.question.clear()
            self.ask_requested.emit(text)

    def _ask_or_stop(self) -> None:
        if self.busy:
            self.stop_requested.emit()
        else:
            self._ask()

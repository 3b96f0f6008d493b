"""Compare: one question answered four ways side by side, each with its measures.

Base model, base + retrieval, adapter, adapter + retrieval. The adapter columns are enabled
when an adapter is attached (Settings → Adapters). The evidence (the same retrieval for every
column) is shown once, above the columns, from the first answer that has it.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop.core.answering.conversations import (
    EvidenceRecord,
    SourceRecord,
    evidence_records,
    source_records,
    turn_from_answer,
)
from desktop.gui import render, theme

CONFIGS = {
    "base": ("Base model", "The model alone, without your files"),
    "retrieval": ("Retrieval", "The model with passages from your files"),
    "adapter": ("Adapter", "The model with your adapter, without your files"),
    "both": ("Adapter + retrieval", "The model with your adapter and passages from your files"),
}


FORM_TIP = ("\nForm (with a tuned adapter): how closely the answer follows the taught form, "
            "as its best ROUGE-L F1 against the adapter's held-out ideal replies.")
SUPPORT_TIP = ("Support: the share of the answer's words found in the passages retrieved for "
               "the question (the same passages for all four columns). It measures staying "
               "close to your files, not being right.")


def answer_measures(answer: Any) -> str:
    """Latency, tokens, tokens/s and the sources an answer cites (plain text)."""
    t = answer.timings
    gen = answer.generation
    lines = [f"latency {render.format_ms(t.get('total_ms', 0.0))}"]
    if t.get("first_token_ms"):
        lines[0] += f" · first token {render.format_ms(t['first_token_ms'])}"
    if gen is not None:
        lines.append(f"{gen.completion_tokens} tokens · {gen.tokens_per_s:.0f} tokens/s")
    if answer.refused:
        lines.append("refused: nothing relevant found")
    elif answer.sources:
        cited = [s.label() for s in answer.sources if s.n in answer.cited]
        lines.append(f"cites {len(cited)} of {len(answer.sources)} sources"
                     + (f": {', '.join(cited)}" if cited else ""))
    return "\n".join(lines)


class CompareColumn(QGroupBox):
    """One configuration: its streamed answer, its sources and its measures."""

    source_clicked = Signal(object)  # the Source of the answer

    def __init__(self, config: str, parent: QWidget | None = None) -> None:
        title, tip = CONFIGS[config]
        super().__init__(title, parent)
        self.config = config
        self.setToolTip(tip)
        self.text = QTextBrowser(self)
        self.text.setOpenLinks(False)
        self.text.anchorClicked.connect(self._on_anchor)
        self.measures = QLabel(self)
        self.measures.setWordWrap(True)
        self.measures.setObjectName("measures")
        layout = QVBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.measures)
        self.streamed = ""
        self.answer: Any = None

    def reset(self, note: str = "") -> None:
        self.streamed, self.answer = "", None
        self.text.setPlainText(note)
        self.measures.setText("")

    def begin(self) -> None:
        self.reset()
        self.measures.setText("answering…")

    def append(self, text: str) -> None:
        self.streamed += text
        self.text.insertPlainText(text)

    def finish(self, answer: Any) -> None:
        self.answer = answer
        colors = theme.colors(self.palette())
        turn = turn_from_answer(answer)
        body = render.linked_answer(answer.text, 0, len(answer.sources), colors)
        if turn.sources:
            body += (f"<p style='color:{colors.muted}; font-size:small'>Sources: "
                     f"{render.source_links(turn, 0, colors)}</p>")
        self.text.setHtml(f"<div style='color:{colors.text}'>{body}</div>")
        self.measures.setText(answer_measures(answer))

    def _on_anchor(self, url: QUrl) -> None:
        n = url.toString().rpartition(":")[2]
        if self.answer is not None and n.isdigit() and 1 <= int(n) <= len(self.answer.sources):
            self.source_clicked.emit(self.answer.sources[int(n) - 1])

    def fail(self, message: str) -> None:
        colors = theme.colors(self.palette())
        self.text.setHtml(f"<p style='color:{colors.error}'>{html.escape(message)}</p>")
        self.measures.setText("")


class CompareView(QWidget):
    """A question box and four columns."""

    run_requested = Signal(str)
    stop_requested = Signal()
    source_clicked = Signal(object)  # a Source of one of the answers
    evidence_clicked = Signal(object, object)  # a SourceRecord, the sentence's (start, end)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.evidence: tuple[EvidenceRecord, ...] = ()
        self.evidence_sources: tuple[SourceRecord, ...] = ()
        self.evidence_label = QLabel(self)
        self.evidence_label.setObjectName("evidence")
        self.evidence_label.setWordWrap(True)
        self.evidence_label.setTextFormat(Qt.TextFormat.RichText)
        self.evidence_label.linkActivated.connect(self._on_evidence_link)
        self.evidence_label.hide()
        self.question = QLineEdit(self)
        self.question.setPlaceholderText("A question to answer four ways…  (Enter)")
        self.question.returnPressed.connect(self._run)
        self.run_button = QPushButton("Compare", self)
        self.run_button.clicked.connect(self._run_or_stop)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.columns = {name: CompareColumn(name, self) for name in CONFIGS}
        for column in self.columns.values():
            column.source_clicked.connect(self.source_clicked)
        row = QHBoxLayout()
        row.addWidget(self.question, 1)
        row.addWidget(self.run_button)
        grid = QGridLayout()
        for i, column in enumerate(self.columns.values()):
            grid.addWidget(column, 0, i)
            grid.setColumnStretch(i, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.note)
        layout.addWidget(self.evidence_label)
        layout.addLayout(grid, 1)
        self.busy = False
        self.set_adapters([])

    def set_adapters(self, names: list[str]) -> None:
        """Enable the adapter columns when adapters are attached (``names``)."""
        on = bool(names)
        for name in ("adapter", "both"):
            column = self.columns[name]
            column.setEnabled(on)
            if not on and column.answer is None:
                column.reset("Add an adapter in Settings (Ctrl+,) to compare with it.")
        self.note.setText(
            f"Adapter: {', '.join(names)}" if on else
            "Base model and retrieval; the adapter columns need an adapter (Settings).")

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.run_button.setText("Stop" if busy else "Compare")

    def _run(self) -> None:
        text = self.question.text().strip()
        if text and not self.busy:
            for column in self.columns.values():
                if column.isEnabled():
                    column.reset()
            self.set_evidence(None)
            self.run_requested.emit(text)

    def set_evidence(self, answer: Any) -> None:
        """Show ``answer``'s evidence above the columns (None: none)."""
        evidence = getattr(answer, "evidence", None) or ()
        self.evidence = evidence_records(evidence)
        self.evidence_sources = source_records(answer.sources) if evidence else ()
        if not self.evidence:
            self.evidence_label.clear()
            self.evidence_label.hide()
            return
        colors = theme.colors(self.palette())
        title = ("Closest evidence in your files" if getattr(answer, "refused", False) else
                 "Evidence: what retrieval found in your files")
        self.evidence_label.setText(render.evidence_html(
            self.evidence, 0, colors, title, ocr=render.ocr_by_source(self.evidence_sources)))
        self.evidence_label.show()

    def _on_evidence_link(self, href: str) -> None:
        i = href.rpartition(":")[2]
        if not i.isdigit() or int(i) >= len(self.evidence):
            return
        evidence = self.evidence[int(i)]
        source = next((s for s in self.evidence_sources if s.n == evidence.n), None)
        if source is not None:
            self.evidence_clicked.emit(source, (evidence.start, evidence.end))

    def _run_or_stop(self) -> None:
        if self.busy:
            self.stop_requested.emit()
        else:
            self._run()

    def show_rows(self, rows: Any) -> None:
        """Add each row's support score (known once every row is done) to its measures."""
        for row in rows or ():
            column = self.columns.get(row.config)
            if column is not None and row.answer is not None:
                support = "support: none (nothing claimed)" if row.support is None else \
                    f"support {row.support:.2f}"
                if getattr(row, "form", None) is not None:
                    support += f" · form {row.form:.2f}"
                column.measures.setText(f"{answer_measures(row.answer)}\n{support}")
                column.measures.setToolTip(SUPPORT_TIP + FORM_TIP)

    def on_event(self, event: Any) -> None:
        """Show a :class:`desktop.core.answering.compare.CompareEvent`."""
        column = self.columns[event.config]
        if event.kind == "begin":
            if event.config == "base":  # the first row of a run: a new question
                self.set_evidence(None)
            column.begin()
        elif event.kind == "evidence":
            if not self.evidence and event.found.evidence:
                self.set_evidence(event.found)
        elif event.kind == "token":
            column.append(event.text)
        elif event.kind == "done":
            column.finish(event.answer)
            if not self.evidence and getattr(event.answer, "evidence", None):
                self.set_evidence(event.answer)
        elif event.kind == "failed":
            column.fail(event.text)

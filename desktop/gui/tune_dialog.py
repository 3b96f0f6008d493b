"""Tune an adapter from the window: examples (a file or pasted), a name, the estimate, a live
loss curve, Cancel, and at the end base and tuned answers to the held-out prompts side by side.

The tuning generator (``Workspace.tune``: :meth:`~desktop.core.tuning.tuner.Tuner.run`) runs in a
:class:`~desktop.gui.workers.Job` on its own thread, exactly as the CLI drives it; this dialog
only shows its records. When it ends well, :attr:`tuned` carries the report (the window then
adds the adapter to the settings).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop.core.tuning import report as tune_report
from desktop.gui import theme
from desktop.gui.loss_plot import LossPlot
from desktop.gui.workers import Job

PLACEHOLDER = ('Paste examples: JSONL lines {"prompt": "...", "reply": "..."}, or CSV with a '
               "prompt,reply header; or load a file.")


class TuneDialog(QDialog):
    """Tune a LoRA adapter; ``options`` (a :class:`TuneOptions`) sets what the form does not."""

    tuned = Signal(object)  # TuneReport

    def __init__(self, workspace: Any, parent: QWidget | None = None,
                 options: Any | None = None) -> None:
        super().__init__(parent)
        from desktop.core.tuning.records import TuneOptions

        self.workspace = workspace
        self.options = options or TuneOptions()
        self.job: Job | None = None
        self.report: Any = None
        self.answers: list[Any] = []
        self.source = "the pasted examples"
        self.setWindowTitle("Tune an adapter")
        self.resize(1080, 780)

        self.examples = QPlainTextEdit(self)
        self.examples.setPlaceholderText(PLACEHOLDER)
        self.examples.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.examples.textChanged.connect(lambda: self._parse_timer.start())
        self.load_button = QPushButton("Load file…", self)
        self.load_button.clicked.connect(self._browse)
        self.count = QLabel(self)
        self.count.setWordWrap(True)
        self.name = QLineEdit(self)
        self.name.setPlaceholderText("memo-style")
        self.epochs = QSpinBox(self)
        self.epochs.setRange(1, 50)
        self.epochs.setValue(self.options.epochs)
        self.system = QLineEdit(self)
        self.system.setPlaceholderText(self.options.system_prompt)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Epochs", self.epochs)
        form.addRow("System prompt", self.system)
        top = QHBoxLayout()
        top.addWidget(self.count, 1)
        top.addWidget(self.load_button)
        inputs = QGroupBox("Examples", self)
        box = QVBoxLayout(inputs)
        box.addWidget(self.examples, 1)
        box.addLayout(top)
        box.addLayout(form)

        self.estimate = QLabel("The estimate appears once the model is loaded.", self)
        self.estimate.setWordWrap(True)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.plot = LossPlot(self)
        run = QGroupBox("Training", self)
        box = QVBoxLayout(run)
        box.addWidget(self.estimate)
        box.addWidget(self.plot, 1)
        box.addWidget(self.status)

        self.results = QTextBrowser(self)
        self.results.setOpenLinks(False)
        self.results.setPlaceholderText("Base and tuned answers to the held-out prompts "
                                        "appear here, side by side.")
        upper = QSplitter(Qt.Orientation.Horizontal, self)
        upper.addWidget(inputs)
        upper.addWidget(run)
        upper.setSizes([460, 600])
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(upper)
        split.addWidget(self.results)
        split.setSizes([430, 330])

        self.start_button = QPushButton("Start", self)
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.start_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)
        self._parse_timer = QTimer(self)
        self._parse_timer.setSingleShot(True)
        self._parse_timer.setInterval(300)
        self._parse_timer.timeout.connect(self.parse)

    # -- input ----------------------------------------------------------------------------

    def load_file(self, path: str | Path) -> None:
        """Show a file's examples in the box (they are checked as they would be pasted)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self._note(f"cannot read {path.name}: {exc}", error=True)
            return
        self.source = path.name
        self.examples.setPlainText(text)
        if not self.name.text().strip():
            self.name.setText(path.stem)
        self.parse()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Examples", "",
                                              "Examples (*.jsonl *.csv);;All files (*)")
        if path:
            self.load_file(path)

    def parse(self) -> list[Any] | None:
        """The examples in the box, or None (the reason shown under it)."""
        from desktop.core.errors import GroundedError
        from desktop.core.tuning.examples import looks_like_csv, parse_examples

        text = self.examples.toPlainText()
        if not text.strip():
            self._note("")
            return None
        csv = looks_like_csv(text)
        try:
            rows = parse_examples(text, self.source, csv_format=csv)
        except GroundedError as exc:
            self._note(str(exc), error=True)
            return None
        self._note(f"{len(rows)} examples ({'CSV' if csv else 'JSONL'})")
        return rows

    def _note(self, text: str, error: bool = False) -> None:
        self.count.setText(text)
        self.count.setStyleSheet(f"color: {theme.colors(self.palette()).error}" if error
                                 else "")

    # -- running --------------------------------------------------------------------------

    def start(self) -> Job | None:
        """Check the input and start tuning in the background."""
        from dataclasses import replace

        from desktop.core.errors import GroundedError
        from desktop.core.model import adapter_store

        if self.job is not None and not self.job.ended:
            return None
        rows = self.parse()
        if rows is None:
            if not self.count.text():
                self._note("Paste examples or load a file first.", error=True)
            return None
        name = self.name.text().strip()
        try:
            adapter_store.check_name(name)
        except GroundedError as exc:
            self._note(str(exc), error=True)
            return None
        force = False
        existing = adapter_store.adapters_dir(self.workspace.dirs.data) / f"{name}.gguf"
        if existing.exists():
            answer = QMessageBox.question(self, "Replace?", f"An adapter named “{name}” "
                                          "exists. Replace it when the new one is ready?")
            if answer != QMessageBox.StandardButton.Yes:
                return None
            force = True
        options = replace(self.options, epochs=self.epochs.value(), force=force,
                          system=self.system.text().strip() or self.options.system)
        self.report, self.answers = None, []
        self.plot.reset()
        self.results.clear()
        self.estimate.setText("Loading the model for tuning (about 5 s)…")
        self.status.setText("")
        job = Job("tuning", lambda cancel: self.workspace.tune(rows, name, options, cancel))
        job.progress.connect(self.on_progress)
        job.done.connect(self.on_done)
        job.failed.connect(self.on_failed)
        job.finished.connect(self._on_finished)
        self.job = job
        self._set_running(True)
        return job.start()

    def cancel(self) -> None:
        if self.job is not None and not self.job.ended:
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling after this step… (no adapter is written)")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for w in (self.examples, self.load_button, self.name, self.epochs, self.system):
            w.setEnabled(not running)

    def on_progress(self, p: Any) -> None:
        """Show one :class:`TuneProgress` record."""
        if p.phase == "estimate":
            self.estimate.setText("\n".join(tune_report.estimate_lines(p.estimate)))
            self.plot.reset(p.steps)
        elif p.phase == "training":
            self.plot.add(p.loss)
            self.status.setText(tune_report.progress_text(p))
        elif p.phase in ("exporting", "checking"):
            self.status.setText(f"{p.message[:1].upper()}{p.message[1:]}…")
        elif p.phase == "comparing" and p.answer is not None:
            self.answers.append(p.answer)
            self.status.setText(f"Answering the held-out prompts ({len(self.answers)} done)…")
            self._show_answers()

    def on_done(self, report: Any) -> None:
        self.report = report
        if report.cancelled:
            self.status.setText("Cancelled: no adapter was written.")
            return
        c = report.check
        self.status.setText(
            f"Saved “{report.name}” in {tune_report.duration(report.seconds)} "
            f"({report.steps} steps, {report.tokens_per_s:.0f} tokens/s). Self-check: "
            f"llama.cpp's logits correlate {c.logit_correlation:.4f} with the tuned model's. "
            "It is added to Settings → Adapters.")
        self._show_answers()
        self.tuned.emit(report)

    def on_failed(self, message: str) -> None:
        colors = theme.colors(self.palette())
        self.status.setText(f"<span style='color:{colors.error}'>"
                            f"{html.escape(message)}</span>")

    def _on_finished(self) -> None:
        self._set_running(False)

    def _show_answers(self) -> None:
        colors = theme.colors(self.palette())
        rows = []
        for a in self.answers:
            def cell(text: str) -> str:
                return html.escape(text or "(nothing)").replace("\n", "<br>")

            rows.append(
                f"<tr><td colspan='2' style='padding-top:8px'><b>{html.escape(a.prompt)}</b>"
                f"</td></tr><tr><td width='50%' valign='top'>{cell(a.base)}<br><span "
                f"style='color:{colors.muted}'>form {a.form_base:.2f}</span></td>"
                f"<td width='50%' valign='top'>{cell(a.tuned)}<br><span "
                f"style='color:{colors.muted}'>form {a.form_tuned:.2f}</span></td></tr>")
        head = ""
        if self.report is not None and self.report.form_base is not None:
            head = (f"<p>Form on {len(self.answers)} held-out prompts (ROUGE-L F1 against "
                    f"their ideal replies): base <b>{self.report.form_base:.2f}</b>, tuned "
                    f"<b>{self.report.form_tuned:.2f}</b></p>")
        self.results.setHtml(
            f"<div style='color:{colors.text}'>{head}<table width='100%' cellspacing='6'>"
            f"<tr><th align='left'>Base model</th><th align='left'>Tuned</th></tr>"
            f"{''.join(rows)}</table></div>")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.cancel()
        super().closeEvent(event)

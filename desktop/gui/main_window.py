"""The main window: library on the left, chat and compare in the middle, the cited passage on
the right; indexing progress at the bottom, model states in the status bar.

It only wires widgets to the two controllers (indexing, answering); the work happens in the
core, on the controllers' threads. Errors land in the banner at the top, never as a traceback.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.core.answering.conversations import (
    Turn,
    evidence_records,
    source_records,
    turn_from_answer,
)
from desktop.core.workspace import DEFAULT_COLLECTION, ModelState, Workspace
from desktop.gui.answer_controller import AnswerController
from desktop.gui.chat_pane import ChatPane
from desktop.gui.compare_view import CompareView
from desktop.gui.error_banner import ErrorBanner
from desktop.gui.index_strip import IndexStrip, report_line
from desktop.gui.library_controller import LibraryController
from desktop.gui.library_pane import LibraryPane
from desktop.gui.settings_dialog import SettingsDialog
from desktop.gui.source_panel import SourcePanel
from desktop.gui.tune_dialog import TuneDialog
from desktop.gui.workers import Job, wait_all

log = logging.getLogger(__name__)

_MODEL_NAMES = {"embedder": "Embedder", "model": "Model", "adapters": "Adapters"}


def dropped_paths(mime: Any) -> list[str]:
    """Local files and folders in a drag's data."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


class MainWindow(QMainWindow):
    """Grounded's window. Call :meth:`start` once it is shown."""

    def __init__(self, workspace: Workspace | None = None) -> None:
        super().__init__()
        self.workspace = workspace or Workspace()
        self.setWindowTitle("Grounded")
        self.setAcceptDrops(True)
        self.resize(1200, 760)
        self.library = LibraryController(self.workspace, self)
        self.answers = AnswerController(self.workspace, self)
        self.collection = DEFAULT_COLLECTION
        self._asked_in: str | None = None
        self._passage_for: Any = None
        self.tune_dialog: TuneDialog | None = None
        self.model_names: dict[str, str] = {}  # model file → the name the model list gives it
        self._model_ready: str | None = None  # the model's ready detail, while it is ready
        self._model_speed = ""  # its tokens/s and first-token time here, once known

        self.banner = ErrorBanner(self)
        self.library_pane = LibraryPane(self)
        self.chat = ChatPane(self)
        self.compare = CompareView(self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.chat, "Chat")
        self.tabs.addTab(self.compare, "Compare")
        self.source_panel = SourcePanel(self)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        for widget in (self.library_pane, self.tabs, self.source_panel):
            self.splitter.addWidget(widget)
        self.splitter.setSizes([280, 620, 380])
        self.splitter.setStretchFactor(1, 1)  # the chat takes what the side panes leave
        self.splitter.setChildrenCollapsible(False)
        self.strip = IndexStrip(self)
        self.drop_hint = QLabel(self)
        self.drop_hint.setObjectName("dropHint")
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_hint.hide()
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 8, 8, 4)
        layout.addWidget(self.banner)
        layout.addWidget(self.drop_hint)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.strip)
        self.setCentralWidget(central)
        self.model_labels = {name: QLabel(f"{title}: waiting", self)
                             for name, title in _MODEL_NAMES.items()}
        for label in self.model_labels.values():
            self.statusBar().addPermanentWidget(label)
        self.model_labels["adapters"].hide()
        self._build_menus()
        self._connect()
        self._restore()
        self.chat.set_scope(self.collection)
        self.chat.transcript.set_turns(self._load_turns(self.collection))

    # -- set-up ---------------------------------------------------------------------------

    def _action(self, menu, text: str, keys: Any, slot) -> QAction:
        action = QAction(text, self)
        if keys:
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&Add folder…", QKeySequence.StandardKey.Open, self.choose_folder)
        self._action(file, "&New collection…", QKeySequence.StandardKey.New,
                     self.new_collection)
        self._action(file, "&Re-scan folders", "Ctrl+R", self.library.rescan)
        self.cancel_action = self._action(file, "&Cancel indexing", "Ctrl+.",
                                          self.cancel_indexing)
        file.addSeparator()
        self._action(file, "&Tune an adapter…", "Ctrl+T", self.open_tune)
        self._action(file, "&Settings…", "Ctrl+,", self.open_settings)
        file.addSeparator()
        self._action(file, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        view = bar.addMenu("&View")
        self._action(view, "&Chat", "Ctrl+1", lambda: self.tabs.setCurrentIndex(0))
        self._action(view, "C&ompare", "Ctrl+2", lambda: self.tabs.setCurrentIndex(1))
        self._action(view, "&Ask a question", "Ctrl+L", self.focus_question)
        ask = bar.addMenu("&Answer")
        self._action(ask, "&Stop answering / close the passage", "Esc", self.escape)
        self._action(ask, "C&lear this conversation", "Ctrl+Shift+Backspace",
                     self.clear_conversation)

    def _connect(self) -> None:
        lib, ans = self.library, self.answers
        lib.library_changed.connect(self._on_library)
        lib.index_started.connect(self.strip.begin)
        lib.index_progress.connect(self.strip.update_progress)
        lib.index_finished.connect(self._on_indexed)
        lib.error.connect(self.show_error)
        self.strip.cancel_requested.connect(self.cancel_indexing)
        ans.model_state.connect(self._on_model_state)
        ans.evidence_found.connect(self._on_evidence)
        ans.token.connect(self._on_token)
        ans.answered.connect(self._on_answer)
        ans.answer_failed.connect(self._on_answer_failed)
        ans.compare_event.connect(self.compare.on_event)
        ans.compare_rows.connect(self.compare.show_rows)
        ans.busy_changed.connect(self._on_busy)
        ans.error.connect(self.show_error)
        pane = self.library_pane
        pane.collection_changed.connect(self.set_collection)
        pane.add_folder_requested.connect(self.choose_folder)
        pane.new_collection_requested.connect(self.new_collection)
        pane.forget_requested.connect(self.forget)
        pane.rescan_requested.connect(self.library.rescan)
        pane.opened.connect(lambda line: self.statusBar().showMessage(line, 8000))
        self.chat.ask_requested.connect(self.ask)
        self.chat.stop_requested.connect(self.answers.stop)
        self.chat.transcript.citation_clicked.connect(self.show_citation)
        self.chat.transcript.evidence_clicked.connect(self.show_evidence)
        self.compare.run_requested.connect(self.run_compare)
        self.compare.stop_requested.connect(self.answers.stop)
        self.compare.source_clicked.connect(self.show_source)
        self.compare.evidence_clicked.connect(self.show_source)
        self.source_panel.opened.connect(lambda line: self.statusBar().showMessage(line, 8000))

    def _window_state(self) -> QSettings:
        return QSettings(str(self.workspace.dirs.config / "window.ini"), QSettings.Format.IniFormat)

    def _restore(self) -> None:
        state = self._window_state()
        if geometry := state.value("geometry"):
            self.restoreGeometry(geometry)
        if sizes := state.value("splitter"):
            self.splitter.restoreState(sizes)
        self.collection = str(state.value("collection", DEFAULT_COLLECTION))
        self.library_pane.set_current(self.collection)
        self.setWindowTitle(f"Grounded — {self.collection}")

    def start(self) -> None:
        """Begin the background work: read the library, re-scan, load the models."""
        self.library.start()
        self.answers.warm_up()
        self.chat.question.setFocus()
        if self.workspace.settings.model:
            self.name_model()

    # -- library and indexing -------------------------------------------------------------

    def index_paths(self, paths: list[str], collection: str | None = None) -> Job | None:
        """Add files or folders to ``collection`` (the current one) and index them."""
        paths = [p for p in paths if Path(p).exists()]
        if not paths:
            self.show_error("nothing to add: the dropped items are not files or folders here")
            return None
        collection = collection or self.collection
        names = ", ".join(Path(p).name or p for p in paths)
        return self.library.index(paths, collection, f"Adding {names} to “{collection}”")

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"Add a folder to “{self.collection}”")
        if folder:
            self.index_paths([folder])

    def cancel_indexing(self) -> None:
        if self.library.lane.busy:
            self.strip.cancelling()
            self.library.cancel()

    def new_collection(self) -> None:
        name, ok = QInputDialog.getText(self, "New collection", "Name of the new collection:")
        if ok and name.strip():
            self.library_pane.set_current(name.strip())

    def forget(self, collection: str, folder: str) -> None:
        what = folder or f"the collection “{collection}”"
        answer = QMessageBox.question(
            self, "Forget", f"Remove {what} from the index? Your files stay where they are.")
        if answer == QMessageBox.StandardButton.Yes:
            self.library.forget(collection, folder or None)

    def _on_library(self, summary: Any) -> None:
        self.library_pane.update_summary(summary)

    def _on_indexed(self, report: Any) -> None:
        if report is None:
            self.strip.end("Indexing stopped by an error (see above)")
        else:
            self.strip.end(report_line(report))

    # -- collections and conversations ----------------------------------------------------

    def set_collection(self, name: str) -> None:
        if name == self.collection:
            return
        self.collection = name
        self.setWindowTitle(f"Grounded — {name}")
        self.chat.set_scope(name)
        self.chat.transcript.set_turns(self._load_turns(name))
        self.source_panel.close_panel()
        self.library_pane.set_current(name)

    def _load_turns(self, collection: str) -> list[Turn]:
        try:
            return self.workspace.conversations.load(collection)
        except OSError as exc:
            self.show_error(f"cannot read the conversation of “{collection}”: {exc}")
            return []

    def clear_conversation(self) -> None:
        if self.answers.busy:
            return
        self.workspace.conversations.clear(self.collection)
        self.chat.transcript.set_turns([])

    # -- answering ------------------------------------------------------------------------

    def ask(self, question: str) -> Job:
        """Ask ``question`` in the current collection's conversation (its earlier questions
        go along: a follow-up is searched with the question before it)."""
        self._asked_in = self.collection
        self.tabs.setCurrentWidget(self.chat)
        transcript = self.chat.transcript
        history = [t.question for t in transcript.turns]
        transcript.begin(question)
        job = self.answers.ask(question, self.collection, history)
        if self.answers.lane.current is not job:  # queued behind the model's loading
            self.statusBar().showMessage("Your question is next, once the model is ready", 5000)
        return job

    def _on_evidence(self, found: Any) -> None:
        if self._asked_in == self.collection:
            self.chat.transcript.show_evidence(evidence_records(found.evidence),
                                               source_records(found.sources))

    def _on_token(self, text: str) -> None:
        if self._asked_in == self.collection:
            self.chat.transcript.append(text)

    def _on_answer(self, answer: Any) -> None:
        gen = answer.generation
        turn = turn_from_answer(answer, cancelled=bool(gen and gen.finish_reason == "cancelled"))
        collection = self._asked_in or self.collection
        try:
            self.workspace.conversations.append(collection, turn)
        except OSError as exc:
            self.show_error(f"cannot save the conversation: {exc}")
        if collection == self.collection:
            self.chat.transcript.finish(turn)

    def _on_answer_failed(self, message: str) -> None:
        self.show_error(message)
        if self._asked_in == self.collection:
            self.chat.transcript.finish(None)

    def _on_busy(self, busy: bool) -> None:
        self.chat.set_busy(busy)
        self.compare.set_busy(busy)

    def run_compare(self, question: str) -> Job:
        return self.answers.compare(question, self.collection)

    def show_citation(self, turn_index: int, n: int) -> None:
        """Show source ``n`` of turn ``turn_index``, then its context from the index."""
        turns = self.chat.transcript.turns
        if not 0 <= turn_index < len(turns) or not 1 <= n <= len(turns[turn_index].sources):
            return
        self.show_source(turns[turn_index].sources[n - 1])

    def show_evidence(self, turn_index: int, i: int) -> None:
        """Show evidence sentence ``i`` of turn ``turn_index`` within its source's passage."""
        found = self.chat.transcript.evidence_at(turn_index, i)
        if found is not None:
            evidence, source = found
            self.show_source(source, (evidence.start, evidence.end))

    def show_source(self, source: Any, sentence: tuple[int, int] | None = None) -> None:
        """Show a cited passage at once (``sentence``: offsets of an evidence sentence in its
        text, highlighted more strongly), then its context from the index."""
        self._passage_for = (source, sentence)
        self.source_panel.show_source(source, sentence=sentence)
        job = Job("reading the passage",
                  lambda _c: self.workspace.passage(source.chunk_id, source.text))
        job.done.connect(self._on_passage)
        job.failed.connect(self.show_error)
        job.start()

    def _on_passage(self, context: Any) -> None:
        source, sentence = self._passage_for or (None, None)
        if source is not None and self.source_panel.source is source:
            self.source_panel.show_source(source, context.before, context.after, context.indexed,
                                          sentence)

    def _on_model_state(self, state: ModelState) -> None:
        if state.model == "speed":
            self._model_speed = state.detail if state.state == "ready" else ""
            self._show_model_name()
            return
        label = self.model_labels[state.model]
        label.show()
        title = _MODEL_NAMES[state.model]
        text = {"loading": "loading…", "ready": state.detail or "ready",
                "failed": "failed"}[state.state]
        label.setText(f"{title}: {text}")
        label.setToolTip(state.detail)
        label.setStyleSheet("color: #d93025" if state.state == "failed" else "")
        if state.model == "model":
            self._model_ready = state.detail if state.state == "ready" else None
            self._model_speed = ""
            self._show_model_name()
        if state.model == "adapters" and state.state != "loading":
            self.compare.set_adapters([Path(p).name for p, _ in self.workspace.adapters_on])

    def _show_model_name(self) -> None:
        """Name the ready model as the model list does (an Ollama blob's file stem is a hash,
        its name the tag, "smollm2:135m"), with its speed here once known; the tooltip gives
        the file."""
        if self._model_ready is None:
            return
        path = self.workspace.settings.model
        stem, sep, rest = self._model_ready.partition(" · ")
        name = self.model_names.get(path, stem) if path and stem == Path(path).stem else stem
        speed = f" · {self._model_speed}" if self._model_speed else ""
        label = self.model_labels["model"]
        label.setText(f"Model: {name}{sep}{rest}{speed}")
        label.setToolTip(f"{self._model_ready}\n{path}" if path else self._model_ready)

    def name_model(self) -> Job:
        """Look up the settings' model in the model list (a warm scan takes milliseconds) and
        name it in the status bar."""
        from desktop.gui.model_picker import scan_names

        data_dir, folders = self.workspace.dirs.data, tuple(self.workspace.settings.model_folders)
        job = Job("naming the model", lambda _c: scan_names(data_dir, folders))
        job.done.connect(self._on_model_names)
        return job.start()

    def _on_model_names(self, names: dict[str, str]) -> None:
        self.model_names.update(names)
        self._show_model_name()

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.workspace.settings, self, self.workspace.dirs.data)
        dialog.accepted.connect(lambda: self._accept_settings(dialog))
        dialog.open()
        return dialog

    def _accept_settings(self, dialog: SettingsDialog) -> None:
        """Apply the dialog's settings; the names of the models it listed name the status
        bar's model."""
        self.model_names.update(dialog.models.names())
        self.apply_settings(dialog.settings())

    def open_tune(self, options: Any = None) -> TuneDialog:
        """The Tune dialog (one at a time); a tuned adapter is added to the settings."""
        dialog = self.tune_dialog
        if dialog is None or (options is not None and dialog.options is not options):
            dialog = TuneDialog(self.workspace, self, options)
            dialog.tuned.connect(self._on_tuned)
            self.tune_dialog = dialog
        dialog.show()
        dialog.raise_()
        return dialog

    def _on_tuned(self, report: Any) -> None:
        """Attach the new adapter (scale 1) through the settings, in place of an older file
        of the same name."""
        keep = [a for a in self.workspace.settings.adapters if a.get("path") != report.adapter]
        self.apply_settings(replace(self.workspace.settings,
                                    adapters=[*keep, {"path": report.adapter, "scale": 1.0}]))
        self.statusBar().showMessage(f"Tuned “{report.name}”: added to Settings → Adapters",
                                     8000)

    def apply_settings(self, settings) -> None:
        """Save ``settings``; models and adapters reload in the answer lane."""
        if not settings.adapters:
            self.model_labels["adapters"].hide()
            self.compare.set_adapters([])
        self.answers.apply_settings(settings).finished.connect(self._after_settings)

    def _after_settings(self) -> None:
        """The data folder may have moved: read the library and conversation again (and
        re-scan the folders of an index found there)."""
        if self.library.closed:
            return
        self.library.refresh_library(rescan=True)
        self.chat.transcript.set_turns(self._load_turns(self.collection))

    # -- keys, drops, errors, closing -----------------------------------------------------

    def focus_question(self) -> None:
        target = self.chat.question if self.tabs.currentWidget() is self.chat \
            else self.compare.question
        target.setFocus()
        target.selectAll()

    def escape(self) -> None:
        if self.answers.busy:
            self.answers.stop()
        elif self.source_panel.isVisible():
            self.source_panel.close_panel()
        else:
            self.banner.hide()

    def show_error(self, message: str) -> None:
        log.warning("shown to the user: %s", message)
        self.banner.show_error(message)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()
            self.drop_hint.setText(f"Drop to add to the collection “{self.collection}”")
            self.drop_hint.show()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.drop_hint.hide()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        self.drop_hint.hide()
        paths = dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.index_paths(paths))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        state = self._window_state()
        state.setValue("geometry", self.saveGeometry())
        state.setValue("splitter", self.splitter.saveState())
        state.setValue("collection", self.collection)
        state.sync()
        self.hide()
        self.answers.stop()
        self.library.close()
        self.answers.close()
        wait_all()
        self.workspace.close()
        super().closeEvent(event)

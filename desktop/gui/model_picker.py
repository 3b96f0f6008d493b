"""Settings → Model: the chat models found on this computer, a file of one's own, more folders
(added and removed here).

The list comes from ``core/model/discovery.py`` (LM Studio, GPT4All, Jan, Ollama, llama.cpp's
cache, the Hugging Face cache and the folders added here), scanned on a job's thread: a warm
scan reads the header cache in milliseconds, a cold one reads every header once. Only chat
models are offered; adapters, embedders, projectors and unreadable files are counted in the
note below the list. The bundled model comes first, as the default (the setting "").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.gui import theme
from desktop.gui.workers import Job

if TYPE_CHECKING:
    from desktop.core.model.discovery import Catalog, Found

#: The bundled model's line before the scan has described it.
BUNDLED = "SmolLM2-135M-Instruct — bundled (default)"
#: What the note calls the files that are not offered, by kind.
NOT_OFFERED = (("adapter", "LoRA adapter"), ("embedder", "embedder"),
               ("projector", "vision projector"), ("broken", "unreadable file"))
_TOOLTIP = Qt.ItemDataRole.ToolTipRole


def model_line(found: Found, bundled: bool = False) -> str:
    """One model as the list shows it: "name — source · 135M · Q4_1 · 98 MB", marked when it
    is the bundled default or too large for the memory free now."""
    from desktop.core.model.discovery import parameters_text, size_text  # loaded by the scan

    source = "bundled (default)" if bundled else found.source
    details = [parameters_text(found.parameters) if found.parameters else "",
               found.quantization, size_text(found.size_bytes)]
    line = f"{found.name} — " + " · ".join(d for d in (source, *details) if d)
    return line + (" (too large for free memory)" if found.fits_memory is False else "")


def model_tip(found: Found) -> str:
    """The details a tooltip adds: the file, architecture, context, template, what it reads,
    speed here."""
    from desktop.core.answering.reading import reading_by_size

    lines = [found.path, f"{found.architecture or 'unknown architecture'}, "
             f"{found.context_length or '?'} tokens of context",
             f"Reads {reading_by_size(found.parameters)} (by its size)"]
    if not found.chat_template:
        lines.append("no chat template of its own (ChatML is used)")
    if found.tokens_per_s:
        from desktop.core.model.discovery import speed_text  # loaded by the scan already

        lines.append(f"Here: {speed_text(found.first_token_ms or 0, found.tokens_per_s)}")
    return "\n".join(lines)


def _short(folder: str) -> str:
    """A folder under the home folder as ~/…"""
    path, user = Path(folder), Path.home()
    return f"~/{path.relative_to(user)}" if path.is_relative_to(user) else folder


def _scan(data_dir: Path, folders: tuple[str, ...]) -> tuple[Catalog, str]:
    """The catalog and the bundled model's path (runs on a job's thread: gguf, numpy)."""
    from desktop.core.model.discovery import catalog_for
    from desktop.core.model.modelfile import bundled_model_path

    return catalog_for(data_dir, folders).scan(), str(bundled_model_path().resolve())


class ModelPicker(QWidget):
    """A list of the models found, "Browse…" for any GGUF file and "Add a folder to search…".

    :meth:`model` is the setting (a path, "" for the bundled model), :attr:`folders` the
    folders searched besides the apps' own; ``scanned`` carries each scan's Catalog."""

    scanned = Signal(object)  # desktop.core.model.discovery.Catalog

    def __init__(self, model: str, folders: list[str], data_dir: Path,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data_dir = data_dir
        self.folders = list(folders)
        self.catalog: Catalog | None = None
        self._bundled = ""  # the bundled model's resolved path, once scanned
        self.job: Job | None = None
        self._again = False  # a folder was added while a scan ran: scan once more after it
        self.combo = QComboBox(self)
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(36)
        self.combo.setToolTip("The model that answers; the change applies to the next answer")
        browse = QPushButton("Browse…", self)
        browse.setToolTip("Any GGUF model file")
        browse.clicked.connect(self._browse_file)
        add = QPushButton("Add a folder to search…", self)
        add.setToolTip("A folder of GGUF models of your own, searched from now on")
        add.clicked.connect(self._browse_folder)
        self.remove = QPushButton("Remove a folder", self)
        self.remove.setToolTip("Stop searching a folder added here")
        self.remove.setMenu(QMenu(self.remove))
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setObjectName("modelsNote")
        self.note.setStyleSheet(f"color: {theme.colors(self.palette()).muted}")
        buttons = QHBoxLayout()
        buttons.addWidget(browse)
        buttons.addWidget(add)
        buttons.addWidget(self.remove)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.combo)
        layout.addLayout(buttons)
        layout.addWidget(self.note)
        self._fill([], "", model)
        self.rescan()

    # -- what was chosen ------------------------------------------------------------------

    def model(self) -> str:
        """The model setting chosen: a GGUF path, or "" for the bundled model."""
        return str(self.combo.currentData() or "")

    def parameters(self) -> int:
        """The weights of the model chosen, from the scan's headers (0 before the first scan,
        or for a file that cannot be read)."""
        if self.catalog is None:
            return 0
        path = self.model() or self._bundled
        for found in self.catalog.models:
            if found.path == path or str(Path(found.path).resolve()) == path:
                return found.parameters
        from desktop.core.model.discovery import describe

        return describe(Path(path), Path(path).stem, "").parameters if path else 0

    def names(self) -> dict[str, str]:
        """Each model found, by path: its name (an Ollama blob's is its tag)."""
        return {m.path: m.name for m in self.catalog.models} if self.catalog else {}

    def choose(self, path: str) -> None:
        """Select ``path`` (listed under its file name when no scan found it)."""
        index = self.combo.findData(path)
        if index < 0:
            self.combo.addItem(f"{Path(path).name} — chosen file", path)
            index = self.combo.count() - 1
            self.combo.setItemData(index, path, _TOOLTIP)
        self.combo.setCurrentIndex(index)

    def add_folder(self, folder: str) -> None:
        """Search ``folder`` too (kept in the settings on OK) and scan again."""
        folder = str(Path(folder).expanduser().resolve())
        if folder not in self.folders:
            self.folders.append(folder)
        self.rescan()

    def remove_folder(self, folder: str) -> None:
        """Stop searching ``folder`` (kept in the settings on OK) and scan again."""
        if folder in self.folders:
            self.folders.remove(folder)
        self.rescan()

    def _list_folders(self) -> None:
        """The "Remove a folder" menu: one entry per folder added, the button off if none."""
        menu = self.remove.menu()
        menu.clear()
        for folder in self.folders:
            menu.addAction(_short(folder), lambda f=folder: self.remove_folder(f))
        self.remove.setEnabled(bool(self.folders))

    # -- scanning -------------------------------------------------------------------------

    def rescan(self) -> Job | None:
        """Scan for models on a job's thread (once the scan in flight, if any, has ended)."""
        self._list_folders()
        if self.job is not None and not self.job.ended:
            self._again = True
            return None
        self.note.setText("Looking for models on this computer…")
        data_dir, folders = self.data_dir, tuple(self.folders)
        self.job = job = Job("finding models", lambda _c: _scan(data_dir, folders))
        job.done.connect(self._on_scanned)
        job.failed.connect(self._on_failed)
        job.finished.connect(self._after_scan)
        return job.start()

    def _after_scan(self) -> None:
        if self._again:
            self._again = False
            self.rescan()

    def _on_failed(self, message: str) -> None:
        self.note.setText(f"Could not look for models: {message}")

    def _on_scanned(self, result: tuple[Catalog, str]) -> None:
        catalog, bundled = result
        self.catalog, self._bundled = catalog, bundled
        self._fill(catalog.models, bundled, self.model())
        self.note.setText(self._summary(catalog))
        self.note.setToolTip("\n".join(f"{f.name} ({f.kind}{': ' + f.error if f.error else ''})"
                                       f" — {f.path}" for f in catalog.found
                                       if f.kind != "model"))
        self._fit_window()
        self.scanned.emit(catalog)

    def _fit_window(self) -> None:
        """Grow the dialog to show the note whole (a wrapped label does not grow it)."""
        window = self.window()
        if window is self or not window.isVisible():
            return
        need = window.sizeHint().height()
        if window.hasHeightForWidth():
            need = max(need, window.heightForWidth(window.width()))
        if need > window.height():
            window.resize(window.width(), need)

    def _fill(self, models: list[Found], bundled: str, current: str) -> None:
        """List the bundled model, the models found, then ``current`` if none of them."""
        combo = self.combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(BUNDLED, "")
        for found in models:
            if str(Path(found.path).resolve()) == bundled:
                combo.setItemText(0, model_line(found, bundled=True))
                combo.setItemData(0, model_tip(found), _TOOLTIP)
                continue
            combo.addItem(model_line(found), found.path)
            combo.setItemData(combo.count() - 1, model_tip(found), _TOOLTIP)
        if current and bundled and str(Path(current).resolve()) == bundled:
            combo.setItemData(0, current)  # the bundled file named by its path: kept as set
        combo.blockSignals(False)
        if current:
            self.choose(current)
        else:
            combo.setCurrentIndex(0)
        view = combo.view()
        view.setMinimumWidth(view.sizeHintForColumn(0) + 24)  # the popup shows whole lines

    def _summary(self, catalog: Catalog) -> str:
        count = len(catalog.models)
        text = f"{count} model{'s' if count != 1 else ''} found on this computer"
        others = []
        for kind, label in NOT_OFFERED:
            n = sum(1 for f in catalog.found if f.kind == kind)
            if n:
                others.append(f"{n} {label}{'s' if n != 1 else ''}")
        if others:
            text += " · not offered: " + ", ".join(others)
        text += "."
        if self.folders:
            text += " Also searching " + ", ".join(_short(f) for f in self.folders) + "."
        return text

    # -- dialogs --------------------------------------------------------------------------

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "GGUF models (*.gguf)")
        if path:
            self.choose(path)

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of GGUF models")
        if folder:
            self.add_folder(folder)


def scan_names(data_dir: Path, folders: tuple[str, ...]) -> dict[str, str]:
    """Each model found, by path: its name (for the status bar; on a job's thread)."""
    catalog, _ = _scan(data_dir, folders)
    return {m.path: m.name for m in catalog.models}

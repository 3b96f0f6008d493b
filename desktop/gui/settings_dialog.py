"""Settings: the model (one found on this computer, or any file), adapters with a scale each,
GPU layers, threads, context, passages per answer, data folder, OCR and its languages. Saved to
``settings.json`` in the config folder (platformdirs)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.core.answering.reading import reading_by_size
from desktop.core.config import Settings, default_dirs, home
from desktop.gui import theme
from desktop.gui.model_picker import ModelPicker

#: The quote modes (core/answering/quote.py) as the dialog offers them.
QUOTE_CHOICES = {"auto": "Quoted when the model hardly knows the language",
                 "always": "Always quoted from the sources",
                 "never": "In the model's own words"}

#: Slider steps per 1.0 of adapter scale; the slider goes from 0 to 2.
SCALE_STEPS = 100


def parse_languages(text: str) -> list[str]:
    """OCR language codes (Tesseract's: "eng", "chi_sim") from what was typed: "eng+deu",
    "eng, deu" or "eng deu"; each once, in order."""
    codes = re.split(r"[^a-z0-9_]+", text.lower())
    return list(dict.fromkeys(code for code in codes if code))


def installed_ocr_languages() -> list[str]:
    """The OCR languages whose trained data is installed (imported here, not at start-up)."""
    from desktop.core.indexing.extract.ocr import installed_languages

    return installed_languages()


class AdapterRow(QWidget):
    """One adapter: its file, a scale slider (0–2) and a remove button."""

    def __init__(self, path: str, scale: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        name = QLabel(Path(path).name, self)
        name.setToolTip(path)
        name.setMinimumWidth(140)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 2 * SCALE_STEPS)
        self.slider.setValue(round(scale * SCALE_STEPS))
        self.slider.setToolTip("Scale: 0 is the base model, 1 the adapter as trained")
        self.value = QLabel(self)
        self.value.setMinimumWidth(36)
        self.slider.valueChanged.connect(self._show)
        remove = QToolButton(self)
        remove.setText("Remove")
        remove.clicked.connect(self.remove)
        self.removed = False
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(name)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.value)
        layout.addWidget(remove)
        self._show()

    def remove(self) -> None:
        self.removed = True
        self.hide()
        self.deleteLater()

    @property
    def scale(self) -> float:
        return self.slider.value() / SCALE_STEPS

    def _show(self) -> None:
        self.value.setText(f"×{self.scale:.2f}")


def _path_row(edit: QLineEdit, browse) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.clicked.connect(browse)
    row.addWidget(button)
    return row


class SettingsDialog(QDialog):
    """Edits a :class:`Settings`; :meth:`settings` returns the edited copy.

    ``data_dir``: the data folder whose header cache the model list uses (the settings')."""

    def __init__(self, settings: Settings, parent: QWidget | None = None,
                 data_dir: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(640)
        self.original = settings
        self.models = ModelPicker(settings.model, settings.model_folders,
                                  data_dir or home().data, self)
        self.adapter_rows = QVBoxLayout()
        self.adapter_rows.setSpacing(2)
        for adapter in settings.adapters:
            self.add_adapter(str(adapter.get("path", "")), float(adapter.get("scale", 1.0)))
        add = QPushButton("Add adapter…", self)
        add.clicked.connect(self._browse_adapter)
        adapters = QVBoxLayout()
        adapters.addLayout(self.adapter_rows)
        adapters.addWidget(add, 0, Qt.AlignmentFlag.AlignLeft)
        self.gpu_layers = QSpinBox(self)
        self.gpu_layers.setRange(-1, 999)
        self.gpu_layers.setSpecialValueText("Auto (what fits in the GPU memory free)")
        self.gpu_layers.setValue(-1 if settings.n_gpu_layers is None else settings.n_gpu_layers)
        self.threads = QSpinBox(self)
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("Auto (physical cores)")
        self.threads.setValue(settings.n_threads)
        self.n_ctx = QSpinBox(self)
        self.n_ctx.setRange(512, 131072)
        self.n_ctx.setSingleStep(512)
        self.n_ctx.setSuffix(" tokens")
        self.n_ctx.setValue(settings.n_ctx)
        self.passages = QSpinBox(self)
        self.passages.setRange(1, 50)
        self.passages.setValue(settings.passages)
        self.reading = QComboBox(self)
        self.reading.setToolTip("The evidence: the sentences of the passages that best answer "
                                "the question, shown first. By the model's size: two for a "
                                "model under 1B weights, four for a larger one (measured: "
                                "every model tried answered worse from whole passages).")
        self.reading.addItem("By the model's size", None)
        self.reading.addItem("Whole passages", 0)
        for n in sorted({1, 2, 3, 4, 5, settings.focus_sentences or 1}):
            self.reading.addItem(f"{n} evidence sentence{'s' if n != 1 else ''}", n)
        self.reading.setCurrentIndex(self.reading.findData(settings.focus_sentences))
        self.models.combo.currentIndexChanged.connect(self.show_reading)
        self.models.scanned.connect(self.show_reading)
        self.show_reading()
        self.quote = QComboBox(self)
        for mode, label in QUOTE_CHOICES.items():
            self.quote.addItem(label, mode)
        self.quote.setToolTip("A quoted answer copies a passage of one source word for word, "
                              "then cites it: the model cannot reword, translate or invent. "
                              "Automatic quotes when the model hardly knows the question's "
                              "language. Answers with an adapter are never quoted: the adapter "
                              "shapes their wording.")
        self.quote.setCurrentIndex(max(0, self.quote.findData(settings.quote_answers)))
        self.data_dir = QLineEdit(settings.data_dir, self)
        self.data_dir.setPlaceholderText(str(default_dirs().data))
        self.installed = installed_ocr_languages()
        self.ocr = QCheckBox("Read scanned pages and images (OCR)", self)
        self.ocr.setToolTip("Scanned PDF pages and image files are read by Tesseract on this "
                            "computer; without OCR they are listed as problems. Applies at the "
                            "next indexing, to new and changed files.")
        self.ocr.setChecked(settings.ocr)
        self.ocr_languages = QLineEdit("+".join(settings.ocr_languages), self)
        self.ocr_languages.setPlaceholderText("eng")
        self.ocr_languages.setToolTip("Tesseract language codes, joined by +: eng+deu reads "
                                      "pages in English and German")
        self.ocr_note = QLabel(self)
        self.ocr_note.setWordWrap(True)
        self.ocr_note.setTextFormat(Qt.TextFormat.PlainText)
        self.ocr_note.setObjectName("ocrNote")
        ocr_languages = QVBoxLayout()
        ocr_languages.setSpacing(2)
        ocr_languages.addWidget(self.ocr_languages)
        ocr_languages.addWidget(self.ocr_note)
        form = QFormLayout()
        form.addRow("Model", self.models)
        form.addRow("Adapters", adapters)
        form.addRow("GPU layers", self.gpu_layers)
        form.addRow("Threads", self.threads)
        form.addRow("Context size", self.n_ctx)
        form.addRow("Passages per answer", self.passages)
        form.addRow("The model reads", self.reading)
        form.addRow("Answers", self.quote)
        form.addRow("Data folder", _path_row(self.data_dir, self._browse_data))
        form.addRow("Scans", self.ocr)
        form.addRow("OCR languages", ocr_languages)
        note = QLabel("A new data folder holds its own index: folders indexed before stay in "
                      "the old one.", self)
        note.setWordWrap(True)
        note.setObjectName("note")
        self.buttons = buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.ocr_languages.textChanged.connect(self.check_languages)
        self.check_languages()

    def show_reading(self, *_) -> None:
        """Name what "By the model's size" means for the model chosen now."""
        parameters = self.models.parameters()
        text = "By the model's size"
        if parameters:
            from desktop.core.model.discovery import parameters_text  # loaded by the scan

            text += f" (this {parameters_text(parameters)} model: {reading_by_size(parameters)})"
        self.reading.setItemText(0, text)

    def add_adapter(self, path: str, scale: float = 1.0) -> AdapterRow:
        row = AdapterRow(path, scale, self)
        self.adapter_rows.addWidget(row)
        return row

    def rows(self) -> list[AdapterRow]:
        items = (self.adapter_rows.itemAt(i).widget() for i in range(self.adapter_rows.count()))
        return [w for w in items if isinstance(w, AdapterRow) and not w.removed]

    def unknown_languages(self) -> list[str]:
        """The OCR languages typed whose trained data is not installed."""
        return [code for code in parse_languages(self.ocr_languages.text())
                if code not in self.installed]

    def check_languages(self) -> bool:
        """Say which OCR languages are installed; while a language typed is not installed (or
        none is typed), say how to install it and keep OK off: no setting is saved that the
        next indexing could not use."""
        unknown = self.unknown_languages()
        empty = not parse_languages(self.ocr_languages.text())
        installed = ", ".join(self.installed) or "none"
        if unknown:
            packages = " ".join(f"tessdata-fast-{code}" for code in unknown)
            text = (f"Not installed: {', '.join(unknown)} (installed: {installed}). Each "
                    f"language needs its package: pip install {packages}")
        elif empty:
            text = f"Name at least one language (installed: {installed})."
        else:
            text = (f"Installed: {installed}. Join several with + (eng+deu); another language "
                    "needs pip install tessdata-fast-<code>. Applies at the next indexing, to "
                    "new and changed files.")
        colors = theme.colors(self.palette())
        self.ocr_note.setText(text)
        self.ocr_note.setStyleSheet(f"color: {colors.error if unknown or empty else colors.muted}")
        ok = not unknown and not empty
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)
        return ok

    def settings(self) -> Settings:
        """The settings as edited."""
        gpu = self.gpu_layers.value()
        return replace(
            self.original,
            model=self.models.model(),
            model_folders=list(self.models.folders),
            adapters=[{"path": r.path, "scale": r.scale} for r in self.rows()],
            n_gpu_layers=None if gpu < 0 else gpu,
            n_threads=self.threads.value(),
            n_ctx=self.n_ctx.value(),
            passages=self.passages.value(),
            focus_sentences=self.reading.currentData(),
            quote_answers=self.quote.currentData(),
            data_dir=self.data_dir.text().strip(),
            ocr=self.ocr.isChecked(),
            ocr_languages=parse_languages(self.ocr_languages.text()),
        )

    def _browse_adapter(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "LoRA adapter", "", "GGUF adapters (*.gguf)")
        if path:
            self.add_adapter(path)

    def _browse_data(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Data folder", self.data_dir.text())
        if path:
            self.data_dir.setText(path)

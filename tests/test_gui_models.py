"""Settings → Model on real widgets (offscreen): the models other apps keep, a folder added,
a switch to another model that the next answer uses, without a restart.

The fake home (desktop/dev/model_layouts.py) holds the bundled model in the seven apps'
layouts (hard links) plus an adapter, an embedder, a projector and a truncated file; the
switch loads the real model from Ollama's blob. No mocks of the core; only the native folder
dialog is replaced (offscreen it would wait for a person).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from gui_helpers import ANSWER_TIMEOUT_MS, QUESTION, index_by_drop, small_folder
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QPushButton

import desktop.core.workspace as workspace_module
from desktop.core.config import Settings, home
from desktop.core.model.modelfile import bundled_model_path
from desktop.dev.model_layouts import MODELS, make_home
from desktop.gui.settings_dialog import SettingsDialog

MOVED_BY = ("HF_HOME", "HF_HUB_CACHE", "OLLAMA_MODELS", "LLAMA_CACHE")
NOT_MODELS = ("tone-lora", "bge-small", "mmproj-smol", "half-a-model")
SCAN_MS = 60_000


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("person")
    return root, make_home(root)


@pytest.fixture
def person(layouts, monkeypatch) -> tuple[Path, Path]:
    """This test's home is the fake one (the apps' folders found under it), with no
    environment variable moving a store elsewhere."""
    root, own = layouts
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: root))
    for name in MOVED_BY:
        monkeypatch.delenv(name, raising=False)
    return root, own


def scanned(qtbot, picker) -> None:
    """Wait for the picker's scan in flight (and one queued after it) to end."""
    qtbot.waitUntil(lambda: picker.job is not None and picker.job.ended and not picker._again,
                    timeout=SCAN_MS)


def lines(picker) -> list[str]:
    return [picker.combo.itemText(i) for i in range(picker.combo.count())]


def add_folder_by_button(qtbot, monkeypatch, picker, folder: Path) -> None:
    """Click "Add a folder to search…", the folder dialog answering ``folder``."""
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *_a, **_k: str(folder)))
    add = next(b for b in picker.findChildren(QPushButton)
               if b.text() == "Add a folder to search…")
    with qtbot.waitSignal(picker.scanned, timeout=SCAN_MS):
        qtbot.mouseClick(add, Qt.MouseButton.LeftButton)
    scanned(qtbot, picker)


def test_the_dialog_lists_every_apps_models_and_no_other_file(qtbot, person, monkeypatch):
    _, own = person
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    dialog.show()
    picker = dialog.models
    scanned(qtbot, picker)
    first = lines(picker)
    assert first[0].startswith("SmolLM2-135M-Instruct.Q4_1 — bundled (default) · 135M · Q4_1")
    assert picker.model() == "" and picker.combo.currentIndex() == 0  # the default, chosen
    assert not any(line.startswith("my-smollm2") for line in first)  # its folder: not yet

    add_folder_by_button(qtbot, monkeypatch, picker, own)
    shown = lines(picker)
    for source, name in MODELS:  # the seven layouts
        assert any(line.startswith(f"{name} — {source} · 135M · Q4_1 · ") for line in shown), \
            (source, name, shown)
    assert len(shown) == 1 + len(MODELS)
    assert not any(bad in line for line in shown for bad in NOT_MODELS)
    note = picker.note.text()
    assert note.startswith(f"{len(MODELS) + 1} models found on this computer")
    assert "1 LoRA adapter, 1 embedder, 1 vision projector, 1 unreadable file" in note
    assert "half-a-model (broken: truncated" in picker.note.toolTip()
    assert dialog.settings().model_folders == [str(own.resolve())]
    assert dialog.settings().model == ""
    note = picker.note  # the dialog grows to show the note whole
    qtbot.waitUntil(lambda: note.height() >= note.heightForWidth(note.width()), timeout=2000)

    picker.combo.showPopup()
    dialog.grab().save("/tmp/gui_models_dialog.png")
    picker.combo.view().window().grab().save("/tmp/gui_models_list.png")
    picker.combo.hidePopup()

    # "Remove a folder" lists the folder added; choosing it takes its models off the list.
    assert picker.remove.isEnabled()
    (entry,) = picker.remove.menu().actions()
    with qtbot.waitSignal(picker.scanned, timeout=SCAN_MS):
        entry.trigger()
    scanned(qtbot, picker)
    assert lines(picker) == first and not picker.remove.isEnabled()
    assert "Also searching" not in picker.note.text()
    assert dialog.settings().model_folders == []


def test_a_file_outside_the_list_can_still_be_chosen(qtbot, person, tmp_path):
    root, _ = person
    elsewhere = tmp_path / "elsewhere" / "odd-name.gguf"
    elsewhere.parent.mkdir()
    elsewhere.hardlink_to(root / "models" / "my-smollm2.Q4_1.gguf")
    dialog = SettingsDialog(Settings(model=str(elsewhere)))
    qtbot.addWidget(dialog)
    scanned(qtbot, dialog.models)
    assert dialog.models.combo.currentText() == "odd-name.gguf — chosen file"
    assert dialog.settings().model == str(elsewhere)


def test_the_bundled_model_named_by_its_path_stays_as_set(qtbot, person):
    """Listed as the default, but OK leaves the setting alone (no needless reload)."""
    bundled = str(bundled_model_path())
    dialog = SettingsDialog(Settings(model=bundled))
    qtbot.addWidget(dialog)
    scanned(qtbot, dialog.models)
    assert dialog.models.combo.currentIndex() == 0
    assert "bundled (default)" in dialog.models.combo.currentText()
    assert dialog.settings().model == bundled


def test_switching_models_takes_effect_for_the_next_answer(qtbot, make_window, person,
                                                           monkeypatch, tmp_path):
    _, own = person
    window = make_window()
    label = window.model_labels["model"]
    qtbot.waitUntil(lambda: label.text().startswith("Model: SmolLM2-135M-Instruct.Q4_1 · CPU"),
                    timeout=120_000)
    index_by_drop(qtbot, window, [small_folder(tmp_path / "docs")])
    old = window.workspace.engine()

    dialog = window.open_settings()
    picker = dialog.models
    scanned(qtbot, picker)
    add_folder_by_button(qtbot, monkeypatch, picker, own)
    ollama = next(i for i, line in enumerate(lines(picker))
                  if line.startswith("smollm2:135m — Ollama · "))
    picker.combo.setCurrentIndex(ollama)
    blob = picker.model()
    assert Path(blob).name.startswith("sha256-") and ".ollama" in blob
    dialog.grab().save("/tmp/gui_models_ollama_chosen.png")
    with qtbot.waitSignal(window.answers.model_state, timeout=120_000,
                          check_params_cb=lambda s: s.model == "model" and s.state == "ready"):
        qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)

    saved = json.loads((home().config / "settings.json").read_text())
    assert saved["model"] == blob and saved["model_folders"] == [str(own.resolve())]
    assert label.text().startswith("Model: smollm2:135m · CPU · 1 thread")
    assert blob in label.toolTip()
    # A model loaded here for the first time has its speed measured, then shown beside it.
    qtbot.waitUntil(lambda: re.fullmatch(r"Model: smollm2:135m · CPU · 1 thread · \d+ "
                                         r"tokens/s, first token \d+\.\d s", label.text()),
                    timeout=60_000)
    with pytest.raises(RuntimeError, match="closed"):
        _ = old.llama  # the old model was freed when the new one loaded
    qtbot.waitUntil(lambda: label.width() >= label.sizeHint().width())  # laid out again
    window.statusBar().grab().save("/tmp/gui_models_status.png")

    pieces: list[str] = []
    window.answers.token.connect(pieces.append)
    window.chat.question.setText(QUESTION)
    with qtbot.waitSignal(window.answers.answered, timeout=ANSWER_TIMEOUT_MS) as answered:
        qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    answer = answered.args[0]
    assert pieces and answer.text.strip() and answer.sources
    engine = window.workspace.engine()
    assert engine is not old and str(engine.info.path) == blob
    window.grab().save("/tmp/gui_models_window.png")


def test_a_model_chosen_before_is_named_at_start(qtbot, make_window, person):
    root, _ = person
    blob = next(p for p in (root / ".ollama" / "models" / "blobs").iterdir()
                if p.stat().st_size > 50_000_000)
    window = make_window(model=str(blob))
    label = window.model_labels["model"]
    qtbot.waitUntil(lambda: label.text() == "Model: smollm2:135m · CPU · 1 thread",
                    timeout=120_000)


def test_a_question_goes_before_the_speed_measure(qtbot, make_window, monkeypatch):
    """A question asked while the model's speed is measured cancels the measure."""
    monkeypatch.setattr(workspace_module, "SPEED_TOKENS", 100_000)  # minutes, if not cancelled
    window = make_window()
    qtbot.waitUntil(lambda: window.answers.measuring, timeout=120_000)
    t0 = time.perf_counter()
    with qtbot.waitSignal(window.answers.answer_failed, timeout=30_000):
        window.chat.question.setText("anything?")
        qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    assert time.perf_counter() - t0 < 20
    assert "nothing is indexed yet" in window.banner.label.text()
    assert "tokens/s" not in window.model_labels["model"].text()
    assert not window.answers.measuring

"""Adapters in the window: a broken one is an error in the window (the app stays usable); a
real one enables the compare view's adapter columns. Real adapters written with ``gguf``."""

from __future__ import annotations

from pathlib import Path

import pytest
from gui_helpers import QUESTION, anchor_point, drop, small_folder
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop.core.model.adapters import write_lora
from desktop.core.model.engine import bundled_model_path
from desktop.gui.main_window import MainWindow

TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def adapters(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("adapters")
    tone = write_lora(bundled_model_path(), folder / "tone.gguf", seed=0)
    data = tone.read_bytes()
    broken = folder / "broken.gguf"
    broken.write_bytes(data[: len(data) // 2])  # a truncated file
    return {"tone": tone, "broken": broken}


def set_adapter(qtbot, window: MainWindow, path: Path, scale: float, outcome: str) -> None:
    """Add an adapter in the settings dialog and wait for the adapters' ``outcome``."""
    dialog = window.open_settings()
    dialog.add_adapter(str(path), scale)
    with qtbot.waitSignal(window.answers.model_state, timeout=TIMEOUT_MS,
                          check_params_cb=lambda s: s.model == "adapters" and s.state == outcome):
        dialog.accept()


def test_a_broken_adapter_is_an_error_in_the_window_and_the_app_stays_usable(
        qtbot, make_window, adapters, tmp_path):
    window = make_window()
    with qtbot.waitSignal(window.library.index_finished, timeout=TIMEOUT_MS):
        drop(window, [small_folder(tmp_path / "docs")])
    set_adapter(qtbot, window, adapters["broken"], 0.8, "failed")
    assert window.banner.isVisible()
    message = window.banner.label.text()
    assert "broken.gguf" in message and "truncated" in message and "Traceback" not in message
    assert window.model_labels["adapters"].text() == "Adapters: failed"
    assert window.model_labels["model"].text().startswith("Model: SmolLM2")
    assert not window.compare.columns["adapter"].isEnabled()

    window.chat.question.setText(QUESTION)
    with qtbot.waitSignal(window.answers.answered, timeout=TIMEOUT_MS) as answered:
        qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    assert "4471-KESTREL" in answered.args[0].text


def test_compare_answers_four_ways_with_a_real_adapter(qtbot, make_window, adapters, tmp_path):
    window = make_window()
    with qtbot.waitSignal(window.library.index_finished, timeout=TIMEOUT_MS):
        drop(window, [small_folder(tmp_path / "docs")])
    view = window.compare
    assert not view.columns["adapter"].isEnabled()  # no adapter yet
    set_adapter(qtbot, window, adapters["tone"], 1.0, "ready")
    assert view.columns["adapter"].isEnabled() and view.columns["both"].isEnabled()
    assert "tone.gguf" in view.note.text()
    assert window.workspace.adapters_on == [(str(adapters["tone"]), 1.0)]

    window.activateWindow()  # the settings dialog had the focus
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=15_000)
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is view
    view.question.setText(QUESTION)
    with qtbot.waitSignal(window.answers.compare_finished, timeout=4 * TIMEOUT_MS):
        qtbot.keyClick(view.question, Qt.Key.Key_Return)
    answers = {name: column.answer for name, column in view.columns.items()}
    assert all(answers.values()), answers
    assert "4471-KESTREL" in answers["retrieval"].text
    assert not answers["base"].sources and answers["retrieval"].sources
    assert answers["adapter"].text != answers["base"].text  # the adapter changes the answer
    for column in view.columns.values():
        assert column.measures.text().startswith("latency "), column.measures.text()
        assert "tokens/s" in column.measures.text() and "support " in column.measures.text()
    # A source of the retrieval column, clicked, shows its passage.
    column = view.columns["retrieval"]
    point, href = anchor_point(column.text, "cite:0:")
    qtbot.mouseClick(column.text.viewport(), Qt.MouseButton.LeftButton, pos=point)
    qtbot.waitUntil(window.source_panel.isVisible, timeout=15_000)
    clicked = answers["retrieval"].sources[int(href.rsplit(":", 1)[1]) - 1]
    assert window.source_panel.source is clicked
    # The settings' adapter is attached again for the chat.
    assert [a.path for a, _ in window.workspace.engine().adapters] == [adapters["tone"]]

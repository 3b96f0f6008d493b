"""The window never blocks: the event loop's longest stall while indexing and while answering.

A 10 ms timer records how late each tick comes (:class:`desktop.dev.stall.StallMeter`). The
target is under 100 ms; the assertion leaves room for a loaded 2-core CI machine (250 ms),
and the measured numbers are printed (``pytest -s``) and reported in the README.
"""

from __future__ import annotations

import pytest
from gui_helpers import drop, eval_folder
from PySide6.QtCore import Qt

from desktop.core.config import Settings
from desktop.core.workspace import Workspace
from desktop.dev.stall import StallMeter
from desktop.gui.main_window import MainWindow

LIMIT_MS = 250


@pytest.fixture
def window(qtbot, embedder):
    window = MainWindow(Workspace(Settings(n_threads=1, n_ctx=2048), embedder=embedder))
    qtbot.addWidget(window)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: window.model_labels["model"].text().startswith("Model: SmolLM2"),
                    timeout=120_000)  # measure the work, not the first load
    yield window
    window.close()


def test_the_event_loop_never_stalls_while_indexing_and_answering(
        qtbot, window, eval_dir, tmp_path):
    meter = StallMeter()
    meter.start()
    with qtbot.waitSignal(window.library.index_finished, timeout=180_000) as done:
        drop(window, [eval_folder(eval_dir, tmp_path / "squad", 120)])
    indexing = meter.stop()
    ticks_indexing = len(meter.gaps_ms)
    p99_indexing = meter.percentile(0.99)
    assert done.args[0].added == 120

    meter.start()
    window.chat.question.setText("What ctenophore was accidentally introduced into the Black Sea?")
    with qtbot.waitSignal(window.answers.answered, timeout=180_000) as answered:
        qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    answering = meter.stop()
    assert answered.args[0].generation is not None, "the model answered (no refusal)"
    tokens = answered.args[0].generation.completion_tokens
    print(f"\nlongest stall: indexing {indexing:.1f} ms (p99 {p99_indexing:.1f} ms, "
          f"{ticks_indexing} ticks); answering {answering:.1f} ms "
          f"(p99 {meter.percentile(0.99):.1f} ms, {len(meter.gaps_ms)} ticks, {tokens} tokens)")
    assert ticks_indexing > 50 and len(meter.gaps_ms) > 20  # the timer really ran throughout
    assert indexing < LIMIT_MS and answering < LIMIT_MS

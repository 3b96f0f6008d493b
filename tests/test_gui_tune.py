"""Tuning in the window, on real widgets (offscreen) and a real tuning run: examples loaded
from a file, the estimate, the loss curve drawn step by step, base and tuned answers side by
side, the adapter added to the settings; cancel and bad input leave nothing behind."""

from __future__ import annotations

from pathlib import Path

from gui_helpers import QUESTION, drop, small_folder
from PySide6.QtCore import Qt

from desktop.core.tuning.tuner import TuneOptions
from desktop.gui.loss_plot import nice_ticks

REPO = Path(__file__).resolve().parents[1]
MEMO = REPO / "resources" / "tune" / "memo-style.jsonl"
TINY = TuneOptions(epochs=2, learning_rate=3e-3, held_out=2, max_new_tokens=48,
                   check_tokens=160)
TIMEOUT_MS = 600_000


def ten_examples(folder: Path) -> Path:
    path = folder / "memo-window.jsonl"
    path.write_text("".join(MEMO.read_text().splitlines(keepends=True)[:10]))
    return path


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 4.2, 4) == [0, 2, 4, 6]
    assert nice_ticks(0, 42, 5) == [0, 10, 20, 30, 40, 50]
    assert nice_ticks(0, 1, 5) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_bad_input_and_cancel_leave_nothing(qtbot, make_window, tmp_path):
    window = make_window()
    dialog = window.open_tune(TINY)
    dialog.examples.setPlainText('{"prompt": "a", "reply": "b"}\n{oops\n')
    qtbot.waitUntil(lambda: "line 2 is not valid JSON" in dialog.count.text(), timeout=5_000)
    assert dialog.start() is None and dialog.job is None
    dialog.load_file(ten_examples(tmp_path))
    assert dialog.count.text() == "10 examples (JSONL)" and dialog.name.text() == "memo-window"
    dialog.name.setText("no good/name")
    assert dialog.start() is None and "cannot name an adapter" in dialog.count.text()

    dialog.name.setText("cancelled")
    phases = []
    job = dialog.start()
    job.progress.connect(lambda p: (phases.append(p.phase), dialog.cancel()))
    assert not dialog.start_button.isEnabled() and dialog.cancel_button.isEnabled()
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert phases[0] == "loading" and "training" not in phases
    assert dialog.report is not None and dialog.report.cancelled
    assert dialog.status.text() == "Cancelled: no adapter was written."
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()
    adapters = window.workspace.dirs.data / "adapters"
    assert not adapters.exists() or not any(adapters.iterdir())
    assert window.workspace.settings.adapters == []


def test_tune_in_the_window_then_the_adapter_is_in_the_settings(qtbot, make_window, tmp_path):
    window = make_window()
    qtbot.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert window.tune_dialog is not None and window.tune_dialog.isVisible()
    window.tune_dialog.close()
    dialog = window.open_tune(TINY)
    dialog.load_file(ten_examples(tmp_path))
    steps = []
    with qtbot.waitSignal(dialog.tuned, timeout=TIMEOUT_MS) as tuned:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        dialog.job.progress.connect(
            lambda p: steps.append(len(dialog.plot.losses)) if p.phase == "training" else None)
    report = tuned.args[0]
    assert steps == list(range(1, report.steps + 1))  # the curve grew step by step
    assert dialog.plot.losses == report.losses and dialog.plot.steps == report.steps
    assert "estimate:" in dialog.estimate.text() and "peak memory" in dialog.estimate.text()
    assert dialog.status.text().startswith("Saved “memo-window”")
    shown = dialog.results.toPlainText()
    for answer in report.held_out:
        assert answer.prompt in shown and answer.tuned.splitlines()[0] in shown
    assert "Base model" in shown and "Tuned" in shown and "form" in shown
    image = dialog.grab()
    assert not image.isNull() and image.width() > 600
    # The adapter is now in the settings, attached, and the compare view can use it.
    qtbot.waitUntil(lambda: window.workspace.adapters_on == [(report.adapter, 1.0)],
                    timeout=120_000)
    assert window.workspace.settings.adapters == [{"path": report.adapter, "scale": 1.0}]
    qtbot.waitUntil(lambda: window.compare.columns["adapter"].isEnabled(), timeout=60_000)
    assert "memo-window.gguf" in window.compare.note.text()
    # Compare then scores the form of every column against the held-out ideal replies.
    with qtbot.waitSignal(window.library.index_finished, timeout=TIMEOUT_MS):
        drop(window, [small_folder(tmp_path / "docs")])
    window.compare.question.setText(QUESTION)
    with qtbot.waitSignal(window.answers.compare_rows, timeout=TIMEOUT_MS) as rows:
        window.compare._run()
    assert all(r.form is not None for r in rows.args[0] if r.answer and not r.answer.refused)
    for name, column in window.compare.columns.items():
        assert " · form " in column.measures.text(), (name, column.measures.text())

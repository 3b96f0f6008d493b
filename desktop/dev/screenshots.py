"""Regenerate the README's screenshots of the window's main states, from real runs.

    QT_QPA_PLATFORM=offscreen python -m desktop.dev.screenshots [--out resources/screenshots]
    QT_QPA_PLATFORM=offscreen python -m desktop.dev.screenshots --only tune
    QT_QPA_PLATFORM=offscreen python -m desktop.dev.screenshots --only settings

Everything happens in a throwaway GROUNDED_HOME: the bundled sample documents are indexed
(and, for the "indexing" picture, a slice of ../shared/eval when it is there), a question is
asked of the bundled model, a citation opened, the compare view run, the settings shown.
``--only tune`` makes just ``tune.png``: the Tune dialog after a real run on
``resources/tune/memo-style.jsonl`` (about 3 minutes on 2 cores). ``--only settings`` makes
just ``settings.png``, the dialog as the full run leaves it (one adapter), in a few seconds.
HOME points at a fake home (``model_layouts.make_home``: the bundled model as seven apps keep
it, plus files that are not chat models), so the dialog's model list is the same everywhere
and shows none of this computer's own models.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WIKI_QUESTIONS = ("What ctenophore was accidentally introduced into the Black Sea?",
                  "What was the largest pottery company in the world in 1817?")
SAMPLE_QUESTIONS = ("Where is my data stored?", "Which embedding model is used?")


_T0 = time.monotonic()


def _save(widget, path: Path) -> None:
    from PySide6.QtWidgets import QApplication

    for _ in range(20):  # let layouts settle (a status bar label that just grew, …)
        QApplication.processEvents()
        time.sleep(0.01)
    widget.grab().save(str(path))
    print(f"{time.monotonic() - _T0:6.1f} s  {path.name}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "resources" / "screenshots")
    parser.add_argument("--eval", type=Path, default=REPO.parent / "shared" / "eval")
    parser.add_argument("--only", choices=["tune", "settings"],
                        help="Make only this screenshot.")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="grounded-shots-"))
    os.environ["GROUNDED_HOME"] = str(work / "home")
    try:
        if args.only == "tune":
            return _shoot_tune(args.out)
        folders = [_fake_home(work / "person")]
        if args.only == "settings":
            return _shoot_settings(args.out, work, folders)
        return _shoot(args.out, args.eval, work, folders)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fake_home(person: Path) -> str:
    """Make ``person`` the home the model list searches (HOME, no store moved by the
    environment); return its own model folder, for the settings' ``model_folders``."""
    from desktop.dev.model_layouts import make_home

    own = make_home(person)
    os.environ["HOME"] = str(person)
    for name in ("HF_HOME", "HF_HUB_CACHE", "OLLAMA_MODELS", "LLAMA_CACHE"):
        os.environ.pop(name, None)
    return str(own)


def _shoot(out: Path, eval_dir: Path, work: Path, folders: list[str]) -> int:
    from desktop import process

    process.prepare()
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from desktop.core.config import Settings
    from desktop.core.model.adapters import write_lora
    from desktop.core.model.engine import bundled_model_path
    from desktop.core.workspace import Workspace
    from desktop.dev.window_bench import wait_until
    from desktop.gui import theme
    from desktop.gui.main_window import MainWindow

    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(["grounded"])
    theme.apply(app, Qt.ColorScheme.Light)
    docs = work / "Documents"
    shutil.copytree(REPO / "resources" / "samples", docs)
    # One model thread: on a busy 2-core machine, llama.cpp's spinning workers crawl.
    settings = Settings(n_ctx=2048, n_threads=1, model_folders=folders)
    window = MainWindow(Workspace(settings))
    window.resize(1280, 800)
    window.show()
    window.start()
    wait_until(app, lambda: window.library.summary is not None)
    wait_until(app, lambda: window.model_labels["model"].text().startswith("Model: SmolLM2"))
    _save(window, out / "empty.png")

    corpus = eval_dir / "squad_v1.1_dev" / "corpus_small"
    if corpus.is_dir():  # a bigger folder, so that progress shows for a while
        folder, collection, questions = work / "Wikipedia", "wikipedia", WIKI_QUESTIONS
        folder.mkdir()
        for path in sorted(corpus.iterdir())[:150]:
            shutil.copy(path, folder / path.name)
    else:
        folder, collection, questions = docs, "default", SAMPLE_QUESTIONS
    seen = []
    window.library.index_progress.connect(seen.append)
    window.library_pane.set_current(collection)
    window.index_paths([str(folder)])
    wait_until(app, lambda: any(p.files_done >= 40 for p in seen) or not window.library.lane.busy)
    app.processEvents()
    _save(window, out / "indexing.png")
    wait_until(app, lambda: not window.library.lane.busy)
    wait_until(app, lambda: window.library_pane.summary is not None
          and window.library_pane.summary.documents >= 2)

    answers = []
    window.answers.answered.connect(answers.append)
    window.ask(questions[0])
    wait_until(app, lambda: bool(answers))
    wait_until(app, lambda: not window.answers.busy)
    answer = answers[0]
    turn = len(window.chat.transcript.turns) - 1
    if answer.evidence:  # the first evidence sentence, as a click on it shows it
        window.show_evidence(turn, 0)
    else:
        window.show_citation(turn, answer.cited[0] if answer.cited else 1)
    wait_until(app, lambda: window.source_panel.isVisible())
    time.sleep(0.3)
    app.processEvents()
    _save(window, out / "answer.png")
    theme.apply(app, Qt.ColorScheme.Dark)
    app.processEvents()
    _save(window, out / "answer-dark.png")
    theme.apply(app, Qt.ColorScheme.Light)

    adapter = write_lora(bundled_model_path(), work / "demo-lora.gguf", magnitude=0.08, seed=3)
    window.apply_settings(replace(settings, adapters=[{"path": str(adapter), "scale": 1.0}]))
    wait_until(app, lambda: window.compare.columns["adapter"].isEnabled())
    window.tabs.setCurrentWidget(window.compare)
    window.source_panel.close_panel()
    window.compare.question.setText(questions[1])
    window.compare._run()
    wait_until(app, lambda: not window.answers.busy)
    app.processEvents()
    _save(window, out / "compare.png")

    dialog = window.open_settings()
    wait_until(app, lambda: dialog.isVisible() and dialog.models.catalog is not None)
    app.processEvents()
    _save(dialog, out / "settings.png")
    dialog.reject()
    window.close()
    print(f"screenshots in {out}: " + ", ".join(sorted(p.name for p in out.glob("*.png"))))
    return 0


def _shoot_tune(out: Path) -> int:
    """The Tune dialog at the end of a real run on the bundled memo-style examples."""
    from desktop import process

    process.prepare()
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from desktop.core.config import Settings
    from desktop.core.workspace import Workspace
    from desktop.dev.window_bench import wait_until
    from desktop.gui import theme
    from desktop.gui.main_window import MainWindow

    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(["grounded"])
    theme.apply(app, Qt.ColorScheme.Light)
    window = MainWindow(Workspace(Settings(n_ctx=2048)))
    window.show()
    window.start()
    wait_until(app, lambda: window.library.summary is not None)
    dialog = window.open_tune()
    dialog.load_file(REPO / "resources" / "tune" / "memo-style.jsonl")
    dialog.start()
    wait_until(app, lambda: dialog.job is not None and dialog.job.ended, timeout_s=1800)
    dialog.results.verticalScrollBar().setValue(0)
    _save(dialog, out / "tune.png")
    dialog.close()
    window.close()
    return 0 if dialog.report is not None and not dialog.report.cancelled else 1


def _shoot_settings(out: Path, work: Path, folders: list[str]) -> int:
    """The Settings dialog with the settings the full run ends with (one adapter at scale 1,
    the fake home's own model folder searched): no model loads and nothing is indexed."""
    from desktop import process

    process.prepare()
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from desktop.core.config import Settings
    from desktop.dev.window_bench import wait_until
    from desktop.gui import theme
    from desktop.gui.settings_dialog import SettingsDialog

    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(["grounded"])
    theme.apply(app, Qt.ColorScheme.Light)
    adapter = {"path": str(work / "demo-lora.gguf"), "scale": 1.0}
    dialog = SettingsDialog(Settings(n_ctx=2048, n_threads=1, adapters=[adapter],
                                     model_folders=folders))
    dialog.show()
    wait_until(app, lambda: dialog.isVisible() and dialog.models.catalog is not None)
    _save(dialog, out / "settings.png")
    dialog.reject()
    return 0


if __name__ == "__main__":
    sys.exit(main())

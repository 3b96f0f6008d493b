"""Indexing from the window: cancel midway and resume consistently; watched folders; the
re-scan at start. Real index and embedder, real files (a slice of ../shared/eval)."""

from __future__ import annotations

from pathlib import Path

from gui_helpers import drop, eval_folder, small_folder
from PySide6.QtCore import Qt

from desktop.core.config import home
from desktop.core.indexing import indexer as index_mod
from desktop.core.indexing.indexer import Indexer
from desktop.core.jobs import run_job
from desktop.core.storage.store import Store

N_FILES = 327  # all of the SQuAD corpus: ~390 chunks, written every 128 here (512 in the app)


def counts_and_docs(db: Path) -> tuple[dict, dict]:
    with Store.open(db) as store:
        assert store.integrity_check() == "ok"
        docs = {Path(p).name: n for p, n in store.con.execute(
            "SELECT path, n_chunks FROM documents")}
        return store.counts(), docs


def test_cancel_midway_then_resume_gives_the_uninterrupted_index(
        qtbot, make_window, embedder, eval_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(index_mod, "FLUSH_CHUNKS", 128)
    folder = eval_folder(eval_dir, tmp_path / "squad", N_FILES)
    window = make_window()
    seen = []

    def cancel_once_files_are_written(p) -> None:
        seen.append(p)
        if p.files_done > 0 and window.strip.cancel_button.isEnabled():
            qtbot.mouseClick(window.strip.cancel_button, Qt.MouseButton.LeftButton)

    window.library.index_progress.connect(cancel_once_files_are_written)
    with qtbot.waitSignal(window.library.index_finished, timeout=180_000) as first:
        drop(window, [folder])
    window.library.index_progress.disconnect(cancel_once_files_are_written)
    cut = first.args[0]
    assert cut.cancelled and 0 < cut.added < N_FILES, cut
    assert "Stopped" in window.strip.detail.text()
    counts, docs = counts_and_docs(home().database)
    assert counts["chunks"] == counts["vectors"] == counts["keywords"] > 0
    assert counts["documents"] == cut.added  # whole documents only, each with its chunks

    with qtbot.waitSignal(window.library.index_finished, timeout=180_000) as second:
        qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # re-scan
    resumed = second.args[0]
    assert not resumed.cancelled and resumed.added == N_FILES - cut.added
    assert resumed.unchanged == cut.added  # nothing done twice

    # The same folder indexed in one uninterrupted run, straight through the core.
    reference = tmp_path / "reference.sqlite"
    with Store.open(reference) as store:
        run_job(Indexer(store, embedder).run([folder], "default"))
    assert counts_and_docs(home().database) == counts_and_docs(reference)
    qtbot.waitUntil(lambda: window.library_pane.summary.documents == N_FILES, timeout=30_000)


def test_watched_folders_follow_changes_without_a_full_rescan(qtbot, make_window, tmp_path):
    folder = small_folder(tmp_path / "docs")
    window = make_window()
    with qtbot.waitSignal(window.library.index_finished, timeout=60_000):
        drop(window, [folder])
    qtbot.waitUntil(lambda: window.library.watcher.folders == [str(folder)], timeout=30_000)

    def next_report(change) -> object:
        with qtbot.waitSignal(window.library.index_finished, timeout=30_000) as done:
            change()
        return done.args[0]

    added = next_report(lambda: (folder / "river.md").write_text(
        "The ferry across the river leaves every forty minutes.\n"))
    assert added.added == 1 and added.unchanged == 0  # only the new file was looked at
    changed = next_report(lambda: (folder / "garden.txt").write_text(
        "Tomatoes need eight hours of direct sunlight each day.\n"))
    assert changed.updated == 1 and changed.unchanged == 0
    removed = next_report(lambda: (folder / "warehouse.md").unlink())
    assert removed.removed == 1
    renamed = next_report(lambda: (folder / "river.md").rename(folder / "ferry.md"))
    assert renamed.moved == 1 and renamed.added == 0  # a rename is not re-embedded
    qtbot.waitUntil(lambda: window.library_pane.summary.documents == 2, timeout=30_000)
    with Store.open(home().database) as store:
        names = sorted(Path(p).name for (p,) in store.con.execute("SELECT path FROM documents"))
    assert names == ["ferry.md", "garden.txt"]


def test_a_quick_rescan_at_start_catches_changes_made_while_closed(
        qtbot, make_window, tmp_path):
    folder = small_folder(tmp_path / "docs")
    window = make_window()
    with qtbot.waitSignal(window.library.index_finished, timeout=60_000):
        drop(window, [folder])
    window.close()
    (folder / "river.md").write_text("The ferry leaves every forty minutes.\n")
    again = make_window()
    qtbot.waitUntil(lambda: again.library_pane.summary.documents == 3, timeout=60_000)
    # The strip's closing line follows the library's counts.
    qtbot.waitUntil(lambda: again.strip.detail.text().startswith("Indexed:"), timeout=30_000)
    line = again.strip.detail.text()
    assert line.startswith("Indexed: 1 added") and "2 unchanged" in line, line


def test_problem_files_are_listed_with_their_reasons(qtbot, make_window, tmp_path):
    folder = small_folder(tmp_path / "docs")
    (folder / "empty.txt").write_text("")
    (folder / "blob.bin").write_bytes(bytes(range(256)) * 64)
    window = make_window()
    with qtbot.waitSignal(window.library.index_finished, timeout=60_000):
        drop(window, [folder])
    qtbot.waitUntil(lambda: window.library_pane.summary.documents == 4, timeout=30_000)
    problems = window.library_pane.problem_paths("default")
    assert sorted(Path(p).name for p in problems) == ["blob.bin", "empty.txt"]
    top = window.library_pane.tree.topLevelItem(0)
    labels = [top.child(i).text(0) for i in range(top.childCount())]
    assert labels[0] == str(folder) and labels[-1] == "Problems (2)"
    problems_row = top.child(top.childCount() - 1)
    reasons = [problems_row.child(i).text(0) for i in range(2)]
    assert any(r.startswith("empty.txt: ") for r in reasons), reasons
    # A reason is not cut at the first column: its row takes the whole width.
    assert problems_row.isFirstColumnSpanned()
    assert all(problems_row.child(i).isFirstColumnSpanned() for i in range(2))


def test_forget_a_folder_from_its_context_menu(qtbot, make_window, tmp_path, monkeypatch):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    kept, gone = small_folder(tmp_path / "kept"), small_folder(tmp_path / "gone")
    window = make_window()
    for folder in (kept, gone):
        with qtbot.waitSignal(window.library.index_finished, timeout=60_000):
            drop(window, [folder])
    qtbot.waitUntil(lambda: window.library_pane.summary.documents == 4, timeout=30_000)
    tree = window.library_pane.tree
    top = tree.topLevelItem(0)
    item = next(top.child(i) for i in range(top.childCount())
                if top.child(i).text(0) == str(gone))
    asked: list[str] = []

    def confirm(_parent, _title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", confirm)

    def choose() -> None:  # the context menu is modal: pick its action once it is shown
        menu = QApplication.activePopupWidget()
        action = next(a for a in menu.actions() if a.text() == "Forget this folder")
        action.trigger()
        menu.close()

    QTimer.singleShot(200, choose)
    window.library_pane._menu(tree.visualItemRect(item).center())
    qtbot.waitUntil(lambda: window.library_pane.summary.documents == 2, timeout=30_000)
    assert asked and str(gone) in asked[0] and "stay where they are" in asked[0]
    with Store.open(home().database) as store:
        paths = [p for (p,) in store.con.execute("SELECT path FROM documents")]
        assert paths and all(p.startswith(str(kept)) for p in paths)
        assert store.integrity_check() == "ok"

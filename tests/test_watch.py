"""Folder watching in the core (no Qt): changed paths are collected and mapped to the few
paths worth re-scanning."""

from __future__ import annotations

import time
from pathlib import Path

from desktop.core.indexing.watch import FolderWatcher, refresh_targets


def test_refresh_targets_are_the_changed_paths_or_their_nearest_existing_folder(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    kept = root / "sub" / "kept.md"
    kept.write_text("x")
    other = tmp_path / "other"
    other.mkdir()
    roots = [("work", str(root)), ("misc", str(other))]
    changed = [
        str(kept),  # exists: itself
        str(root / "sub" / "gone.md"),  # deleted: its folder (which covers kept.md too)
        str(root / "gone" / "deeper" / "x.txt"),  # a deleted folder: the root
        str(root / ".git" / "index"),  # skipped by the scan
        str(tmp_path / "elsewhere.txt"),  # outside every root
    ]
    assert refresh_targets(changed, roots) == {"work": [str(root)]}
    assert refresh_targets([str(kept)], roots) == {"work": [str(kept)]}
    assert refresh_targets([str(root / "sub" / "gone.md")], roots) == {"work": [str(root / "sub")]}
    # The same folder in two collections is refreshed in both.
    both = [("a", str(root)), ("b", str(root))]
    assert refresh_targets([str(kept)], both) == {"a": [str(kept)], "b": [str(kept)]}
    # A root that is gone (an unplugged drive) is not re-scanned: its documents stay.
    assert refresh_targets([str(tmp_path / "gone" / "f")], [("x", str(tmp_path / "gone"))]) == {}


def wait_for(watcher: FolderWatcher, timeout_s: float = 10.0) -> set[str]:
    deadline = time.monotonic() + timeout_s
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen |= watcher.take(quiet_s=0.2)
        if seen:
            time.sleep(0.3)
            return seen | watcher.take(quiet_s=0.2)
        time.sleep(0.05)
    return seen


def test_the_watcher_reports_created_changed_renamed_and_deleted_files(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    watcher = FolderWatcher()
    try:
        watcher.watch([str(root)])
        assert watcher.folders == [str(root)]
        note = root / "sub" / "note.md"
        note.write_text("hello")
        assert str(note) in wait_for(watcher)
        note.rename(root / "moved.md")
        assert {str(note), str(root / "moved.md")} <= wait_for(watcher)
        (root / "moved.md").unlink()
        assert str(root / "moved.md") in wait_for(watcher)
        watcher.watch([])
        (root / "late.md").write_text("unwatched")
        time.sleep(0.5)
        assert watcher.take(quiet_s=0) == set()
    finally:
        watcher.close()


def test_a_folder_that_cannot_be_watched_is_a_problem_not_an_error(tmp_path):
    watcher = FolderWatcher()
    try:
        watcher.watch([str(tmp_path / "missing"), str(tmp_path)])
        assert watcher.folders == [str(tmp_path)]
        assert str(tmp_path / "missing") in watcher.problems
    finally:
        watcher.close()


def test_take_waits_for_quiet_but_not_forever(tmp_path):
    watcher = FolderWatcher()
    path = str(Path(tmp_path) / "busy.log")
    watcher._record(path)
    assert watcher.take(quiet_s=10.0, max_wait_s=10.0) == set()
    assert watcher.take(quiet_s=10.0, max_wait_s=0.0) == {path}
    watcher.close()

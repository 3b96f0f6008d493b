"""Indexing for the window: the index lane, the library summary, and watching the folders.

Folders dropped or added are indexed one job after another; while the window is open the
indexed folders are watched (:class:`desktop.core.indexing.watch.FolderWatcher`) and a change is
re-indexed within seconds by re-scanning only the paths that changed; at start every folder
gets a quick incremental re-scan (stat only, unless something changed while the app was shut).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from desktop.core.indexing.watch import FolderWatcher, refresh_targets
from desktop.core.workspace import Workspace
from desktop.gui.workers import Job, Lane

log = logging.getLogger(__name__)

#: How often the watcher's queue is looked at; changes wait for half a second of quiet.
WATCH_POLL_MS = 700
#: While indexing, the library's counts are read again at most this often.
LIVE_COUNTS_S = 2.0


class LibraryController(QObject):
    """Runs index jobs, keeps the library summary fresh, watches indexed folders."""

    library_changed = Signal(object)  # LibrarySummary
    index_started = Signal(str)  # a title for the strip
    index_progress = Signal(object)  # Progress
    index_finished = Signal(object)  # IndexReport
    error = Signal(str)

    def __init__(self, workspace: Workspace, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.lane = Lane("index")
        self.watcher = FolderWatcher()
        self.roots: list[tuple[str, str]] = []  # (collection, folder)
        self.summary: Any = None
        self._library_job: Job | None = None
        self._library_again = False
        self._rescanned = False
        self.closed = False
        self._counted_at = 0.0
        self.timer = QTimer(self)
        self.timer.setInterval(WATCH_POLL_MS)
        self.timer.timeout.connect(self.poll_watcher)

    def start(self) -> None:
        """Read the library, then re-scan every folder once and start watching."""
        self.refresh_library()
        self.timer.start()

    # -- indexing -------------------------------------------------------------------------

    def index(self, paths: Sequence[str], collection: str | None, title: str) -> Job:
        """Queue an index job for ``paths`` (every folder when empty) into ``collection``."""
        paths = list(paths)
        job = Job("indexing", lambda cancel: self.workspace.index(paths, collection, cancel))
        job.started.connect(lambda: self.index_started.emit(title))
        job.progress.connect(self.index_progress)
        job.progress.connect(self._live_counts)
        job.done.connect(self._on_index_done)
        job.failed.connect(self._on_index_failed)
        return self.lane.submit(job)

    def rescan(self) -> Job:
        return self.index([], None, "Checking your folders for changes")

    def cancel(self) -> None:
        """Stop the running index job after its batch in flight; drop the queued ones."""
        self.lane.cancel_all()

    def _live_counts(self, progress: Any) -> None:
        """Let the library's counts grow while a long run writes."""
        now = time.monotonic()
        if progress.files_done and now - self._counted_at >= LIVE_COUNTS_S:
            self._counted_at = now
            self.refresh_library()

    def _on_index_done(self, report: Any) -> None:
        self.index_finished.emit(report)
        self.refresh_library()

    def _on_index_failed(self, message: str) -> None:
        self.error.emit(message)
        self.index_finished.emit(None)
        self.refresh_library()

    def forget(self, collection: str, folder: str | None) -> Job:
        job = Job("forgetting", lambda _c: self._forget(collection, folder))
        job.done.connect(lambda _n: self.refresh_library())
        job.failed.connect(self.error)
        return self.lane.submit(job)

    def _forget(self, collection: str, folder: str | None) -> int:
        """Forget one folder of ``collection``, or the whole collection; documents removed."""
        if folder is None:
            return self.workspace.forget(collection=collection).documents
        return self.workspace.forget([folder], within=collection).documents

    # -- the library ----------------------------------------------------------------------

    def refresh_library(self, rescan: bool = False) -> None:
        """Read the summary again in the background (once more if asked while running);
        ``rescan``: then re-scan every folder once, as at start (a new data folder)."""
        if self.closed:
            return
        if rescan:
            self._rescanned = False
        if self._library_job is not None:
            self._library_again = True
            return
        job = Job("reading the library", lambda _c: self.workspace.library())
        job.done.connect(self._on_library)
        job.failed.connect(self.error)
        job.finished.connect(self._library_job_ended)
        self._library_job = job.start()

    def _library_job_ended(self) -> None:
        self._library_job = None
        if self._library_again:
            self._library_again = False
            self.refresh_library()

    def _on_library(self, summary: Any) -> None:
        self.summary = summary
        self.roots = [(c.name, r.path) for c in summary.collections for r in c.roots]
        self.library_changed.emit(summary)
        folders = sorted({path for _, path in self.roots})
        if folders != self.watcher.folders and not self.closed:
            watch = Job("watching folders", lambda _c: self.watcher.watch(folders))
            watch.failed.connect(self.error)
            watch.start()
        if not self._rescanned and not self.closed:
            self._rescanned = True
            if self.roots:
                self.rescan()

    # -- watching -------------------------------------------------------------------------

    def poll_watcher(self) -> None:
        """Re-index what changed under the watched folders (only those paths)."""
        changed = self.watcher.take()
        if not changed or self.closed:
            return
        for collection, targets in refresh_targets(changed, self.roots).items():
            log.info("re-indexing %d changed paths in %s", len(targets), collection)
            self.index(targets, collection, "Updating changed files")

    def close(self, wait_ms: int = 30_000) -> None:
        self.closed = True
        self.timer.stop()
        self.lane.wait(wait_ms)
        if self._library_job is not None:
            self._library_job.wait(wait_ms)
        self.watcher.close()

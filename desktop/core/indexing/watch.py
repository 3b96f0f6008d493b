"""Watch indexed folders and turn file changes into small, targeted re-index runs.

:class:`FolderWatcher` (watchdog: inotify, FSEvents, ReadDirectoryChangesW) collects the paths
that changed under the watched folders; :meth:`FolderWatcher.take` hands them over once they
have been quiet for a moment (a file being written fires many events). :func:`refresh_targets`
maps them to the few paths worth re-scanning in each collection: a changed file itself, or
the nearest folder that still exists for a deleted or renamed one. ``Indexer.run(targets,
collection)`` then stats only those, so a saved file is re-indexed without a full re-scan.
Nothing here imports Qt: the window drives it from a timer, and any other front could too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from desktop.core.indexing.scan import SKIP_DIRS

log = logging.getLogger(__name__)

#: watchdog event types that say nothing about content (inotify reports opens and reads too).
_IGNORED_EVENTS = frozenset({"opened", "closed_no_write"})


class FolderWatcher:
    """Collects changed paths under watched folders (recursively) in a background thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[float, float]] = {}  # path -> (first, last) event time
        self._watches: dict[str, object] = {}
        self._observer = None
        self.problems: dict[str, str] = {}  # folder -> why it cannot be watched

    def watch(self, folders: Iterable[str]) -> None:
        """Watch exactly ``folders`` (recursively): start new ones, stop the others.

        A folder that cannot be watched (missing, or the system's watch limit reached) is
        recorded in :attr:`problems`; the others are still watched.
        """
        wanted = {str(Path(f)) for f in folders}
        with self._lock:
            if self._observer is None and wanted:
                from watchdog.observers import Observer

                self._observer = Observer()
                self._observer.daemon = True
                self._observer.start()
            for folder in set(self._watches) - wanted:
                self._observer.unschedule(self._watches.pop(folder))
            for folder in sorted(wanted - set(self._watches)):
                try:
                    self._watches[folder] = self._observer.schedule(
                        _Handler(self._record), folder, recursive=True)
                    self.problems.pop(folder, None)
                except OSError as exc:
                    self.problems[folder] = exc.strerror or str(exc)
                    log.warning("cannot watch %s: %s", folder, self.problems[folder])

    @property
    def folders(self) -> list[str]:
        with self._lock:
            return sorted(self._watches)

    def _record(self, *paths: str) -> None:
        now = time.monotonic()
        with self._lock:
            for path in paths:
                first, _ = self._pending.get(path, (now, now))
                self._pending[path] = (first, now)

    def take(self, quiet_s: float = 0.5, max_wait_s: float = 5.0) -> set[str]:
        """The changed paths that have been quiet for ``quiet_s`` (or pending ``max_wait_s``,
        so a file written without pause is still picked up); they are removed from the queue."""
        now = time.monotonic()
        with self._lock:
            ready = {p for p, (first, last) in self._pending.items()
                     if now - last >= quiet_s or now - first >= max_wait_s}
            for p in ready:
                del self._pending[p]
        return ready

    def close(self) -> None:
        """Stop watching (once; later calls do nothing)."""
        with self._lock:
            observer, self._observer = self._observer, None
            self._watches.clear()
        if observer is not None:
            observer.stop()
            observer.join(timeout=2.0)


class _Handler:
    """A watchdog event handler that records the paths an event touched."""

    def __init__(self, record) -> None:
        self.record = record

    def dispatch(self, event) -> None:
        if event.event_type in _IGNORED_EVENTS:
            return
        if event.is_directory and event.event_type == "modified":
            return  # a folder's mtime changed because of a child: the child has its own event
        paths = [os.fsdecode(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(os.fsdecode(event.dest_path))
        self.record(*paths)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _skipped(relative: str) -> bool:
    """Whether the scan skips this path (hidden entries, tool folders)."""
    return any(part.startswith(".") or part in SKIP_DIRS for part in Path(relative).parts)


def refresh_targets(changed: Iterable[str], roots: Sequence[tuple[str, str]]
                    ) -> dict[str, list[str]]:
    """The paths to re-scan per collection for ``changed`` paths, given ``roots`` as
    (collection, folder) pairs.

    A path that exists is its own target; a vanished one (deleted, renamed away) is replaced
    by its nearest existing folder inside the root, so the re-scan sees what is gone. Paths the
    scan skips are ignored; targets inside another target are dropped.
    """
    targets: dict[str, set[str]] = {}
    for path in changed:
        for collection, root in roots:
            if not _inside(path, root) or not os.path.exists(root):
                continue
            if path != root and _skipped(os.path.relpath(path, root)):
                continue
            target = path
            while not os.path.exists(target) and _inside(os.path.dirname(target), root):
                target = os.path.dirname(target)
            if os.path.exists(target):
                targets.setdefault(collection, set()).add(target)
    result = {}
    for collection, found in targets.items():
        kept: list[str] = []
        for target in sorted(found):
            if not any(_inside(target, k) for k in kept):
                kept.append(target)
        result[collection] = kept
    return result

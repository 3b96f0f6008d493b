"""Walk folders and diff what is on disk against what the store holds.

A walk costs one ``stat`` per entry; the diff compares (size, mtime_ns) with the stored
values, so re-scanning an unchanged tree reads no file. Hidden entries and tool folders
(``.git``, ``node_modules``, virtual environments) are skipped; symlinked folders are followed
once (a loop is detected by device and inode and skipped).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from desktop.core.storage.store import DocumentRow

SKIP_DIRS = frozenset(
    {
        "node_modules",
        "__pycache__",
        "venv",
        "site-packages",
        "$RECYCLE.BIN",
        "System Volume Information",
    }
)


@dataclass(frozen=True)
class FileStat:
    """A file found on disk."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ScanProblem:
    """A folder or entry that could not be walked, and why."""

    path: str
    reason: str


@dataclass
class Diff:
    """What changed between the disk and the store for one root."""

    new: list[FileStat] = field(default_factory=list)
    changed: list[tuple[FileStat, DocumentRow]] = field(default_factory=list)
    deleted: list[DocumentRow] = field(default_factory=list)
    unchanged: int = 0
    problems: list[ScanProblem] = field(default_factory=list)


def _skip(name: str) -> bool:
    return name.startswith(".") or name in SKIP_DIRS


def walk(root: Path) -> Iterator[FileStat | ScanProblem]:
    """Yield every regular file under ``root`` (or ``root`` itself if it is a file)."""
    try:
        st = os.stat(root)
    except OSError as exc:
        yield ScanProblem(str(root), exc.strerror or str(exc))
        return
    if stat.S_ISREG(st.st_mode):
        yield FileStat(str(root), st.st_size, st.st_mtime_ns)
        return
    seen: set[tuple[int, int]] = {(st.st_dev, st.st_ino)}
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                items = list(entries)
        except OSError as exc:
            yield ScanProblem(folder, f"cannot read folder: {exc.strerror or exc}")
            continue
        for entry in sorted(items, key=lambda e: e.name, reverse=True):
            if _skip(entry.name):
                continue
            try:
                st = entry.stat()  # follows symlinks
            except OSError as exc:  # a dangling link, or a file removed during the walk
                if not entry.is_symlink():
                    yield ScanProblem(entry.path, exc.strerror or str(exc))
                continue
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in seen:  # a symlink loop, or a second link to a folder already walked
                    continue
                seen.add(key)
                stack.append(entry.path)
            elif stat.S_ISREG(st.st_mode):
                yield FileStat(entry.path, st.st_size, st.st_mtime_ns)


def diff(root: Path, stored: dict[str, DocumentRow],
         stale: Callable[[DocumentRow], bool] | None = None) -> Diff:
    """Compare the files under ``root`` with ``stored`` (the store's documents there, by path).

    A file whose stat is unchanged counts as changed when ``stale(document)`` says this run can
    read what an earlier one could not (a format added since, OCR turned on).
    """
    result = Diff()
    found: set[str] = set()
    for item in walk(root):
        if isinstance(item, ScanProblem):
            result.problems.append(item)
            continue
        found.add(item.path)
        doc = stored.get(item.path)
        if doc is None:
            result.new.append(item)
        elif (doc.size == item.size and doc.mtime_ns == item.mtime_ns
              and not (stale is not None and stale(doc))):
            result.unchanged += 1
        else:
            result.changed.append((item, doc))
    # A folder we could not read does not mean its files were deleted.
    unreadable = tuple(p.path.rstrip("/") + "/" for p in result.problems)
    result.deleted = [
        doc for path, doc in stored.items() if path not in found and not path.startswith(unreadable)
    ]
    # Walk order is by name; process new files in the same stable order.
    result.new.reverse()
    return result

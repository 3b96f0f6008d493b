"""Open a cited file in the system's viewer, at the cited page when the viewer allows it.

A ``file://`` URL cannot carry a page to the desktop's default handler, so for a PDF the
default PDF application is looked up (``xdg-mime`` on Linux) and, when it is a viewer that
takes a page on its command line, started at that page. Otherwise the file opens at its
start through :class:`QDesktopServices` and the returned message names the page.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices

#: Desktop-file stems of PDF viewers → the arguments that open a file at a page.
PAGE_ARGS = {
    "evince": ["evince", "-i", "{page}", "{path}"],
    "atril": ["atril", "-i", "{page}", "{path}"],
    "xreader": ["xreader", "-i", "{page}", "{path}"],
    "okular": ["okular", "-p", "{page}", "{path}"],
    "zathura": ["zathura", "-P", "{page}", "{path}"],
    "qpdfview": ["qpdfview", "--unique", "{path}#{page}"],
    "mupdf": ["mupdf", "{path}", "{page}"],
}


def default_pdf_viewer() -> str | None:
    """The default PDF application's short name (e.g. ``evince``), when it can be told."""
    if not sys.platform.startswith("linux") or shutil.which("xdg-mime") is None:
        return None
    try:
        out = subprocess.run(["xdg-mime", "query", "default", "application/pdf"],
                             capture_output=True, text=True, timeout=2).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    stem = out.removesuffix(".desktop").rsplit(".", 1)[-1].lower()
    return stem or None


def page_command(path: str, page: int, viewer: str | None) -> list[str] | None:
    """The command that opens ``path`` at ``page`` in ``viewer`` (None: not a known viewer)."""
    args = PAGE_ARGS.get(viewer or "")
    if args is None or shutil.which(args[0]) is None:
        return None
    return [a.format(path=path, page=page) for a in args]


def open_at_page(path: str, page: int | None) -> str:
    """Open ``path`` (at ``page`` for a PDF when possible); return a line for the status bar."""
    if not Path(path).exists():
        return f"{path} no longer exists"
    if page and path.lower().endswith(".pdf"):
        command = page_command(path, page, default_pdf_viewer())
        if command and QProcess.startDetached(command[0], command[1:])[0]:
            return f"opened {Path(path).name} at page {page}"
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(path)):
        return f"no application opens {Path(path).name}"
    where = f" (the passage is on page {page})" if page else ""
    return f"opened {Path(path).name}{where}"


def show_in_folder(path: str) -> str:
    """Open the folder that holds ``path``."""
    folder = Path(path).parent
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
        return f"cannot open {folder}"
    return f"opened {folder}"

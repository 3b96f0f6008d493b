"""Helpers for the window's tests: real drops, real clicks on citation links, small folders."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QTextCursor
from PySide6.QtWidgets import QApplication, QTextBrowser, QWidget

WAREHOUSE = "# Security\n\nThe access code for the east warehouse is 4471-KESTREL.\n"
GARDEN = "Tomatoes need six hours of direct sunlight each day.\n"
QUESTION = "What is the access code for the east warehouse?"
ANSWER_TIMEOUT_MS = 120_000


def small_folder(root: Path) -> Path:
    """Two small documents, one of which answers :data:`QUESTION`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "warehouse.md").write_text(WAREHOUSE)
    (root / "garden.txt").write_text(GARDEN)
    return root


def eval_folder(eval_dir: Path, root: Path, n: int) -> Path:
    """The first ``n`` files of the SQuAD corpus, copied to a temporary folder."""
    root.mkdir(parents=True, exist_ok=True)
    corpus = eval_dir / "squad_v1.1_dev" / "corpus_small"
    for path in sorted(corpus.iterdir())[:n]:
        shutil.copy(path, root / path.name)
    return root


def drop(widget: QWidget, paths: list[Path]) -> None:
    """A real drag-enter and drop of file URLs on ``widget``."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    center = widget.rect().center()
    enter = QDragEnterEvent(center, Qt.DropAction.CopyAction, mime,  # QPoint (QDropEvent: F)
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(center), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    assert event.isAccepted()


def anchor_point(browser: QTextBrowser, prefix: str) -> tuple[QPoint, str] | None:
    """Where, in the browser's viewport, the first link starting with ``prefix`` is drawn,
    and the link."""
    block = browser.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            href = fragment.charFormat().anchorHref()
            if href.startswith(prefix):
                cursor = QTextCursor(browser.document())
                cursor.setPosition(fragment.position())
                browser.setTextCursor(cursor)
                browser.ensureCursorVisible()
                left = browser.cursorRect(cursor)
                cursor.setPosition(fragment.position() + fragment.length())
                right = browser.cursorRect(cursor)
                return QPoint((left.x() + right.x()) // 2, left.center().y()), href
            it += 1
        block = block.next()
    return None


def index_by_drop(qtbot, window, paths) -> object:
    """Drop ``paths`` on the window and wait for the index report."""
    with qtbot.waitSignal(window.library.index_finished, timeout=120_000) as done:
        drop(window, list(paths))
    return done.args[0]

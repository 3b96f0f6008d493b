"""The indexing strip: files done of total, chunks/s, the OCR page of a scan being read, ETA,
the current file, and Cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA --"
    seconds = int(seconds)
    return f"ETA {seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"ETA {seconds}s"


def pages(n: int) -> str:
    """``n`` pages, in words ("1 page", "3 pages")."""
    return f"{n} page" if n == 1 else f"{n} pages"


def ocr_progress(p: Any) -> str:
    """The OCR part of a progress line: the page of the scan being read and the pages read per
    second (once one is read), else how many pages OCR read so far; "" without OCR."""
    if p.ocr_page is not None:
        done, total = p.ocr_page
        rate = f" · {p.ocr_pages_per_s:.1f} pages/s" if p.ocr_pages_per_s else ""
        return f"OCR page {min(done + 1, total)}/{total}{rate} · "
    if p.ocr_pages_done:
        return f"{pages(p.ocr_pages_done)} read by OCR · "
    return ""


def progress_line(p: Any) -> str:
    """One line for a :class:`desktop.core.indexing.indexer.Progress` record."""
    if p.phase == "scanning":
        return "Looking for new and changed files…"
    current = f" · {Path(p.current).name}" if p.current else ""
    return (f"{p.files_done}/{p.files_total} files · {p.chunks_done} chunks · "
            f"{p.chunks_per_s:.1f} chunks/s · {ocr_progress(p)}{format_eta(p.eta_s)}{current}")


def report_line(report: Any) -> str:
    """One line for a :class:`desktop.core.indexing.indexer.IndexReport`."""
    state = "Stopped (run again to resume)" if report.cancelled else "Indexed"
    problems = len(report.failed) + len(report.skipped) + len(report.empty) + len(
        report.image_only)
    parts = [f"{report.added} added", f"{report.updated} updated"]
    if report.moved:
        parts.append(f"{report.moved} moved")
    if report.removed:
        parts.append(f"{report.removed} removed")
    parts.append(f"{report.unchanged} unchanged")
    if problems:
        parts.append(f"{problems} with problems (see the library)")
    if report.weak_ocr:
        parts.append(f"{len(report.weak_ocr)} with weak OCR (see the library)")
    ocr = f"; {pages(report.ocr_pages)} read by OCR" if report.ocr_pages else ""
    return (f"{state}: {', '.join(parts)}; {report.chunks} chunks in {report.seconds:.1f} s"
            f"{ocr}")


class IndexStrip(QFrame):
    """Shown while an index job runs; a last line stays a few seconds after it ends."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel(self)
        self.title.setObjectName("indexTitle")
        self.bar = QProgressBar(self)
        self.bar.setTextVisible(True)
        self.bar.setMinimumWidth(170)
        self.bar.setMaximumWidth(260)
        self.detail = QLabel(self)
        self.detail.setMinimumWidth(100)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop indexing after the batch in flight (Ctrl+.)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.bar)
        layout.addWidget(self.detail, 1)
        layout.addWidget(self.cancel_button)
        self._hide_timer = QTimer(self)
        self._hide_timer.setSingleShot(True)
        self._hide_timer.timeout.connect(self.hide)
        self.hide()

    def begin(self, title: str) -> None:
        self._hide_timer.stop()
        self.title.setText(title)
        self.bar.setRange(0, 0)  # busy until the plan is known
        self.bar.show()
        self.detail.setText("Looking for new and changed files…")
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.show()

    def update_progress(self, p: Any) -> None:
        if p.phase == "indexing" and p.files_total:
            self.bar.setRange(0, p.files_total)
            self.bar.setValue(p.files_done)
            self.bar.setFormat("%v / %m files")
        self.detail.setText(progress_line(p))

    def cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.detail.setText("Stopping after the batch in flight…")

    def end(self, line: str, linger_ms: int = 6000) -> None:
        self.bar.hide()
        self.cancel_button.hide()
        self.detail.setText(line)
        self._hide_timer.start(linger_ms)

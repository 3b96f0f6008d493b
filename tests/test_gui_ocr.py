"""OCR in the window: the settings' checkbox and languages saved to settings.json, the OCR page
in the indexing strip, the "OCR 95%" mark on a source read from a scan (in the transcript and
the source panel, none on text-layer sources), and weak OCR listed in the library.

Real widgets, real index (the extraction sandbox runs Tesseract on scans made by
``desktop.dev.scans``), the real embedder and bundled model; no mocks. Set GUI_OCR_SHOTS to a
folder to keep screenshots of what a person sees.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gui_helpers import ANSWER_TIMEOUT_MS, GARDEN, QUESTION, anchor_point, index_by_drop
from PIL import ImageFilter
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QTextBrowser, QToolTip, QWidget

from desktop.core.answering.answer import Answer
from desktop.core.answering.conversations import SourceRecord, Turn
from desktop.core.config import Settings, home
from desktop.core.indexing.indexer import IndexReport, Progress
from desktop.dev.scans import save_scan, typeset
from desktop.gui import render, theme
from desktop.gui.index_strip import progress_line, report_line
from desktop.gui.main_window import MainWindow

SCANNED_MEMO = "Security\n\nThe access code for the east warehouse is 4471-KESTREL.\n"
#: Typeset at 100 dpi and blurred (radius 1.6 px), this page reads with a mean word confidence
#: of 0.60 (0.67 and 0.55 at radius 1.5 and 1.7): below the library's weak-OCR line (0.7),
#: above OCR's "no readable text" (0.45).
POOR_MINUTES = ("Minutes of the garden committee\n\nThe committee met on Tuesday to plan the "
                "spring planting. The beds by the south wall get the most sun. Volunteers will "
                "water the seedlings every morning.")
#: Two pages of short lines: reading them takes long enough for the strip to show the page.
INVENTORY = "\n".join(f"Shelf {i}: {3 * i} boxes of copier paper, counted on Monday."
                      for i in range(1, 80))
OK = QDialogButtonBox.StandardButton.Ok


def shot(widget: QWidget, name: str) -> None:
    """Keep a picture of ``widget`` when GUI_OCR_SHOTS names a folder."""
    if folder := os.environ.get("GUI_OCR_SHOTS"):
        QApplication.processEvents()
        widget.grab().save(str(Path(folder) / f"gui_ocr_{name}.png"))


def scanned_folder(root: Path) -> Path:
    """A clean scan that answers :data:`QUESTION`, a clean two-page scan, a poor scan, and a
    text file."""
    root.mkdir(parents=True, exist_ok=True)
    save_scan(typeset(SCANNED_MEMO), root / "memo-scan.pdf")
    inventory = typeset(INVENTORY)
    assert len(inventory) == 2
    save_scan(inventory, root / "inventory-scan.pdf")
    blurred = [page.filter(ImageFilter.GaussianBlur(1.6)) for page in typeset(POOR_MINUTES, 100)]
    save_scan(blurred, root / "minutes-poor-scan.pdf", dpi=100)
    (root / "garden.txt").write_text(GARDEN)
    return root


def tooltip_at(browser: QTextBrowser, text: str) -> str:
    """The tooltip a real hover over the first ``text`` in ``browser`` shows."""
    found = browser.document().find(text)
    assert not found.isNull(), text
    browser.setTextCursor(found)
    browser.ensureCursorVisible()
    found.setPosition((found.selectionStart() + found.selectionEnd()) // 2)
    point = browser.cursorRect(found).center()
    event = QHelpEvent(QEvent.Type.ToolTip, point, browser.viewport().mapToGlobal(point))
    QApplication.sendEvent(browser.viewport(), event)
    found.clearSelection()
    browser.setTextCursor(found)
    return QToolTip.text() if QToolTip.isVisible() else ""


def ask(qtbot, window: MainWindow, question: str) -> Answer:
    """Type ``question``, press Enter once the last answer has ended; the Answer."""
    qtbot.waitUntil(lambda: not window.chat.busy, timeout=ANSWER_TIMEOUT_MS)
    window.chat.question.setText(question)
    with qtbot.waitSignal(window.answers.answered, timeout=ANSWER_TIMEOUT_MS) as answered:
        qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    return answered.args[0]


def plain(browser: QTextBrowser) -> str:
    """The text of ``browser`` as a copy carries it, its white space made single."""
    return " ".join(render.plain_copy(browser.toPlainText()).split())


def test_the_ocr_settings_round_trip_to_settings_json(qtbot, make_window):
    window = make_window()
    dialog = window.open_settings()
    ok = dialog.buttons.button(OK)
    assert dialog.ocr.isChecked() and dialog.ocr_languages.text() == "eng"
    assert "Installed: eng" in dialog.ocr_note.text() and ok.isEnabled()
    shot(dialog, "settings")

    # A language whose trained data is not installed cannot be saved: the dialog says so.
    dialog.ocr_languages.selectAll()
    qtbot.keyClicks(dialog.ocr_languages, "eng+zzz")
    assert not ok.isEnabled()
    assert "Not installed: zzz" in dialog.ocr_note.text()
    assert "pip install tessdata-fast-zzz" in dialog.ocr_note.text()
    shot(dialog, "settings_unknown")
    qtbot.keyClick(dialog.ocr_languages, Qt.Key.Key_Return)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and not (home().config / "settings.json").exists()
    dialog.ocr_languages.clear()
    assert not ok.isEnabled() and "at least one language" in dialog.ocr_note.text()

    qtbot.keyClicks(dialog.ocr_languages, "eng")
    qtbot.mouseClick(dialog.ocr, Qt.MouseButton.LeftButton)
    assert not dialog.ocr.isChecked() and ok.isEnabled()
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    settings_file = home().config / "settings.json"
    qtbot.waitUntil(settings_file.is_file, timeout=120_000)
    saved = Settings.load()
    assert saved.ocr is False and saved.ocr_languages == ["eng"]

    again = window.open_settings()
    assert not again.ocr.isChecked() and again.ocr_languages.text() == "eng"
    qtbot.mouseClick(again.ocr, Qt.MouseButton.LeftButton)
    again.ocr_languages.setText("eng, eng")  # "+", "," or spaces between codes; each once
    qtbot.mouseClick(again.buttons.button(OK), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: Settings.load().ocr, timeout=120_000)
    assert Settings.load().ocr_languages == ["eng"]
    qtbot.waitUntil(lambda: window.workspace.settings.ocr, timeout=120_000)  # the next index


def index_scans(qtbot, window: MainWindow, folder: Path) -> str:
    """Drop the scans on the window; check the strip while OCR reads and after; return the
    path of the poor scan."""
    while_reading: list[str] = []

    def on_progress(p: Progress) -> None:  # runs after the strip's own slot
        if p.ocr_page is not None:
            while_reading.append(window.strip.detail.text())
            if len(while_reading) == 1:
                shot(window.strip, "progress")

    window.library.index_progress.connect(on_progress)
    report = index_by_drop(qtbot, window, [folder])
    assert report is not None and report.added == 4 and report.ocr_pages == 4
    assert while_reading and all(re.search(r"· OCR page [12]/[12] · ", line)
                                 for line in while_reading)
    poor = str(folder / "minutes-poor-scan.pdf")
    assert [path for path, _ in report.weak_ocr] == [poor]
    line = window.strip.detail.text()
    assert "4 pages read by OCR" in line and "1 with weak OCR (see the library)" in line
    return poor


def check_the_library(qtbot, window: MainWindow, poor: str) -> None:
    """The library lists the poor scan (not the clean one) under "Weak OCR"."""
    pane = window.library_pane
    qtbot.waitUntil(lambda: pane.weak_ocr_paths("default") == [poor], timeout=30_000)
    top = pane.tree.topLevelItem(0)
    weak = next(top.child(i) for i in range(top.childCount())
                if top.child(i).text(0).startswith("Weak OCR"))
    assert weak.text(0) == "Weak OCR (1)" and weak.childCount() == 1
    confidence = pane.summary.collections[0].weak_ocr[0].confidence
    assert 0.45 < confidence < 0.7
    assert weak.child(0).text(0) == f"weak OCR {confidence:.0%}: minutes-poor-scan.pdf"
    assert poor in weak.child(0).toolTip(0) and "misread" in weak.child(0).toolTip(0)
    assert "3 of 4 documents read by OCR" in top.toolTip(0)
    weak.setExpanded(True)
    shot(pane, "library")


def check_a_text_layer_answer(qtbot, window: MainWindow) -> None:
    """An answer from the text file: its source has no mark, nor has the panel; a scan
    retrieved with it is marked."""
    answer = ask(qtbot, window, "How many hours of direct sunlight do tomatoes need?")
    garden = next(s for s in answer.sources if s.path.endswith("garden.txt"))
    assert garden.ocr is None
    latest = plain(window.chat.transcript).rsplit("tomatoes need?", 1)[1]
    assert f"[{garden.n}] {garden.label()}" in latest
    assert f"[{garden.n}] {garden.label()} OCR" not in latest
    for source in answer.sources:
        if source.ocr is not None:
            assert f"[{source.n}] {source.label()} OCR {source.ocr:.0%}" in latest
    shot(window, "answer")
    panel = window.source_panel
    window.show_citation(1, garden.n)
    qtbot.waitUntil(lambda: "sunlight" in panel.text.toPlainText(), timeout=15_000)
    assert panel.ocr_badge.isHidden() and "OCR" not in panel.text.toPlainText()


def test_scans_are_marked_in_answers_and_the_passage_and_weak_ocr_is_listed(
        qtbot, make_window, tmp_path):
    window = make_window()
    poor = index_scans(qtbot, window, scanned_folder(tmp_path / "scans"))
    check_the_library(qtbot, window, poor)

    # An answer from the scan: its source carries the OCR mark with its tooltip.
    answer = ask(qtbot, window, QUESTION)
    memo = next(s for s in answer.sources if s.path.endswith("memo-scan.pdf"))
    assert memo.ocr is not None and memo.ocr > 0.8
    transcript = window.chat.transcript
    mark = f"OCR {memo.ocr:.0%}"
    assert f"[{memo.n}] {memo.label()} {mark}" in plain(transcript)
    tip = tooltip_at(transcript, mark)
    assert tip == (f"Read from an image by OCR (mean word confidence {memo.ocr:.0%}): check "
                   "the original for misread words")

    # A real click on the scan's citation: the panel shows the mark and says what it means.
    found = anchor_point(transcript, f"cite:0:{memo.n}")
    assert found is not None
    qtbot.mouseClick(transcript.viewport(), Qt.MouseButton.LeftButton, pos=found[0])
    panel = window.source_panel
    qtbot.waitUntil(lambda: panel.isVisible() and panel.source.n == memo.n, timeout=15_000)
    assert panel.ocr_badge.isVisible() and panel.ocr_badge.text() == mark
    assert "check the original for misread words" in panel.ocr_badge.toolTip()
    qtbot.waitUntil(lambda: "4471" in panel.text.toPlainText(), timeout=15_000)
    assert "Read from an image by OCR" in panel.text.toPlainText()
    shot(window, "panel")
    check_a_text_layer_answer(qtbot, window)


def test_progress_report_and_marks_in_words():
    reading = Progress("indexing", 3, 1, 12, 4.0, 9.0, "/d/scan.pdf", 4, 0.8, (2, 12))
    assert progress_line(reading) == ("1/3 files · 12 chunks · 4.0 chunks/s · OCR page 3/12 · "
                                      "0.8 pages/s · ETA 9s · scan.pdf")
    first = Progress("indexing", 3, 1, 12, 4.0, None, "/d/scan.pdf", 0, 0.0, (0, 12))
    assert "OCR page 1/12 · ETA --" in progress_line(first)
    after = Progress("indexing", 3, 2, 30, 4.0, 1.0, "/d/notes.md", 12, 0.8, None)
    assert "12 pages read by OCR" in progress_line(after) and "OCR page" not in \
        progress_line(after)
    assert "OCR" not in progress_line(Progress("indexing", 3, 1, 12, 4.0, 9.0, "/d/a.md"))
    report = IndexReport(added=2, chunks=5, seconds=1.0, ocr_pages=1,
                         weak_ocr=[("/d/poor.pdf", 0.55)])
    assert report_line(report) == ("Indexed: 2 added, 0 updated, 0 unchanged, 1 with weak OCR "
                                   "(see the library); 5 chunks in 1.0 s; 1 page read by OCR")
    assert "OCR" not in report_line(IndexReport(added=1, chunks=1))

    colors = theme.colors()
    scanned = SourceRecord(1, "/d/scan.pdf", "The code is 12.", page=2, ocr=0.876)
    typed = SourceRecord(2, "/d/notes.md", "The code is 12.")
    html = render.source_links(Turn("q", "It is 12 [1].", (scanned, typed), (1,)), 0, colors)
    first, second = html.split("cite:0:2", 1)
    assert "OCR&nbsp;88%" in first and "title='Read from an image by OCR (mean word " \
        "confidence 88%): check the original for misread words'" in first
    assert "OCR" not in second

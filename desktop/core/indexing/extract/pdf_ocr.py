"""Scanned PDF pages: rendered with PDFium (pypdfium2) and read by OCR, one page at a time.

Only the pages pdf.py found scanned (images and no real text layer) are rendered. A page is
rendered at the OCR resolution, scaled down to the engine's pixel bound first so that no page
can take more memory than that; the OCR text replaces the text layer when it holds more words.
A page that cannot be rendered, or that runs past its time limit, is skipped with a note and
the file's other pages still count. The next page is rendered on a second thread while
Tesseract reads the current one (it releases the GIL), so rendering hides behind OCR; only that
thread touches the PDFium document until it is closed.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from .ocr import MAX_PIXELS, OcrEngine, OcrRun

if TYPE_CHECKING:
    from .pdf import _Page

log = logging.getLogger(__name__)


def _render(document: object, index: int, dpi: int) -> object:
    """Page ``index`` as a grey PIL image at ``dpi``, scaled to fit MAX_PIXELS."""
    page = document[index]
    try:
        width, height = page.get_size()  # points
        scale = dpi / 72
        pixels = width * height * scale * scale
        if pixels > MAX_PIXELS:
            scale *= (MAX_PIXELS / pixels) ** 0.5
        return page.render(scale=scale, grayscale=True).to_pil()
    finally:
        page.close()


def _word_count(text: str) -> int:
    return sum(any(c.isalnum() for c in word) for word in text.split())


def read_scanned_pages(path: Path, pages: list[_Page], ocr: OcrRun) -> list[str]:
    """OCR ``pages`` of the PDF at ``path`` in place (their text and confidence); returns notes
    on the pages that could not be read."""
    import pypdfium2 as pdfium

    notes: list[str] = []
    try:
        document = pdfium.PdfDocument(str(path), password="")
    except pdfium.PdfiumError as exc:
        return [f"scanned pages not read: PDFium cannot open the file ({exc})"]
    engine = OcrEngine.shared(ocr.options.languages)
    renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="grounded-render")

    def render(index: int) -> Future | None:
        if index >= len(pages):
            return None
        return renderer.submit(_render, document, pages[index].number - 1, ocr.options.dpi)

    try:
        ocr.progress(0, len(pages))
        upcoming = render(0)
        for done, page in enumerate(pages, start=1):
            rendering, upcoming = upcoming, render(done)
            try:
                image = rendering.result()  # type: ignore[union-attr]
                result = engine.read(image, ocr.options.page_timeout_s, ocr.options.dpi)
            except TimeoutError as exc:
                notes.append(f"page {page.number}: OCR skipped ({exc})")
            except (pdfium.PdfiumError, ValueError, OSError) as exc:
                notes.append(f"page {page.number}: could not be rendered for OCR ({exc})")
            else:
                if result.text and _word_count(result.text) > _word_count(page.text):
                    page.text, page.confidence = result.text, result.confidence
            ocr.progress(done, len(pages))
    finally:
        renderer.shutdown(wait=True, cancel_futures=True)
        document.close()
    return notes

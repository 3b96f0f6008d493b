"""PDF through pypdf: one section per page, with the page number and the outline heading.

Encrypted files are opened with the empty password when that works. Pages with images and no
real text layer are scans: with OCR on, pdf_ocr.py renders and reads them; otherwise those with
no text at all are reported in ``image_pages``. pypdf's warnings are collected into
the Extraction instead of the log, and its exceptions become ExtractError with a short reason.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, EmptyFileError, PyPdfError
from pypdf.generic import DictionaryObject

from .base import ExtractError, Extraction, join_heading, make_extraction
from .ocr import OcrRun

log = logging.getLogger(__name__)

MAX_WARNINGS = 20
#: A text layer with fewer visible characters than this does not stand for a page that has
#: images (a scan with a stamped page number, a photo with a caption): OCR reads it too.
MIN_LAYER_CHARS = 20
_HEADER_WINDOW = 1024
_MAX_OUTLINE_ITEMS = 10_000
_MAX_FORM_DEPTH = 8
_REPAIR_TAIL = b"\nstartxref\n0\n%%EOF\n"
_PARSE_ERRORS = (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError)
_INLINE_IMAGE_START = re.compile(rb"(?:^|\s)BI\s")
_INLINE_IMAGE_DATA = re.compile(rb"\sID\s")


class _PypdfLog(logging.Handler):
    """Routes pypdf's log records to the extraction running on this thread, if any."""

    local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        messages = getattr(self.local, "messages", None)
        if messages is None:
            log.debug("pypdf: %s", record.getMessage())
        elif len(messages) < MAX_WARNINGS:
            messages.append(record.getMessage())


_pypdf_logger = logging.getLogger("pypdf")
_pypdf_logger.addHandler(_PypdfLog())
_pypdf_logger.propagate = False


@contextmanager
def _collect_messages() -> Iterator[list[str]]:
    """Collect pypdf log records and Python warnings raised while the block runs."""
    messages: list[str] = []
    _PypdfLog.local.messages = messages
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        messages.extend(str(w.message) for w in caught[:MAX_WARNINGS])
    finally:
        _PypdfLog.local.messages = None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:120] if text else type(exc).__name__


def _read(data: bytes) -> tuple[PdfReader, bool]:
    """Parse PDF bytes; a file with no ``startxref`` (damaged, truncated) gets one appended, so
    that pypdf rebuilds the cross-reference table by scanning for objects. Returns
    ``(reader, repaired)``."""
    try:
        return PdfReader(BytesIO(data), strict=False), False
    except EmptyFileError as exc:
        raise ExtractError("empty file (0 bytes)") from exc
    except DependencyError as exc:
        raise ExtractError(f"PDF needs a missing library: {_short(exc)}") from exc
    except _PARSE_ERRORS as exc:
        if b"startxref" in data[-_HEADER_WINDOW:]:
            raise ExtractError(f"corrupt PDF: {_short(exc)}") from exc
        try:
            reader = PdfReader(BytesIO(data + _REPAIR_TAIL), strict=False)
        except _PARSE_ERRORS:
            raise ExtractError(f"corrupt PDF: {_short(exc)}") from exc
        return reader, True


def _open(path: Path) -> tuple[PdfReader, bool]:
    data = path.read_bytes()
    if not data:
        raise ExtractError("empty file (0 bytes)")
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise ExtractError("not a PDF file (no %PDF header)")
    reader, repaired = _read(data)
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
        except DependencyError as exc:
            raise ExtractError(f"encrypted PDF needs a missing library: {_short(exc)}") from exc
        except (PyPdfError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
            raise ExtractError(f"encrypted PDF that cannot be opened: {_short(exc)}") from exc
        if not opened:
            raise ExtractError("encrypted PDF: a password is required")
    return reader, repaired


def _resolve(obj: Any) -> Any:
    return obj.get_object() if obj is not None and hasattr(obj, "get_object") else obj


def _has_images(resources: Any, depth: int = 0) -> bool:
    """True when ``resources`` names an image XObject (looking into form XObjects too)."""
    resources = _resolve(resources)
    if not isinstance(resources, DictionaryObject) or depth > _MAX_FORM_DEPTH:
        return False
    xobjects = _resolve(resources.get("/XObject"))
    if not isinstance(xobjects, DictionaryObject):
        return False
    for ref in xobjects.values():
        xobject = _resolve(ref)
        if not isinstance(xobject, DictionaryObject):
            continue
        subtype = xobject.get("/Subtype")
        if subtype == "/Image":
            return True
        if subtype == "/Form" and _has_images(xobject.get("/Resources"), depth + 1):
            return True
    return False


def page_has_images(page: Any) -> bool:
    """True when a pypdf page draws an image (an XObject, also inside forms, or inline)."""
    if _has_images(page.get("/Resources")):
        return True
    contents = page.get_contents()
    if contents is None:
        return False
    data = contents.get_data()
    return bool(_INLINE_IMAGE_START.search(data) and _INLINE_IMAGE_DATA.search(data))


def _outline_starts(reader: PdfReader) -> dict[int, str]:
    """Map a 0-based page index to the heading path of the first outline entry on that page."""
    starts: dict[int, str] = {}
    count = 0

    def walk(items: list[Any], path: list[str]) -> None:
        nonlocal count
        last_title = ""
        for item in items:
            count += 1
            if count > _MAX_OUTLINE_ITEMS:
                return
            if isinstance(item, list):
                walk(item, [*path, last_title] if last_title else path)
                continue
            last_title = " ".join(str(item.get("/Title", "")).split())
            page = reader.get_destination_page_number(item)
            heading = join_heading([*path, last_title])
            if page is not None and page >= 0 and heading and page not in starts:
                starts[page] = heading

    try:
        walk(reader.outline, [])
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        log.debug("outline unreadable: %s", exc)
    return starts


def weak_text(text: str) -> bool:
    """True when a page's text layer is too thin or too garbled to stand for the page: fewer
    than MIN_LAYER_CHARS visible characters, under half of them letters or digits, or more than
    a tenth of them replacement, private-use or control characters (a broken font encoding)."""
    visible = [c for c in text if not c.isspace()]
    if len(visible) < MIN_LAYER_CHARS:
        return True
    alnum = sum(c.isalnum() for c in visible)
    broken = sum(c == "\ufffd" or unicodedata.category(c) in ("Co", "Cc") for c in visible)
    return alnum * 2 < len(visible) or broken * 10 > len(visible)


@dataclass
class _Page:
    number: int
    text: str
    heading: str | None
    scanned: bool = False  # images and no (or a weak) text layer: a page for OCR
    confidence: float | None = None


def _read_pages(reader: PdfReader, pages: list[Any], notes: list[str]) -> list[_Page]:
    """Each page's text layer and heading, and whether it looks scanned."""
    starts = _outline_starts(reader)
    heading: str | None = None
    found: list[_Page] = []
    for number, page in enumerate(pages, start=1):
        heading = starts.get(number - 1, heading)
        try:
            text = (page.extract_text() or "").replace("\x00", "")
        except MemoryError:
            raise
        except Exception as exc:  # pypdf raises many kinds on damaged pages
            notes.append(f"page {number}: text could not be extracted ({_short(exc)})")
            continue
        scanned = False
        if weak_text(text):
            try:
                scanned = page_has_images(page)
            except MemoryError:
                raise
            except Exception as exc:
                log.debug("page %d: images not inspected: %s", number, exc)
        found.append(_Page(number, text, heading, scanned))
    return found


def extract(path: Path, ocr: OcrRun | None = None) -> Extraction:
    """PDF file: one section per page with text. Scanned pages (images and no real text layer)
    are read by OCR when ``ocr`` is given, else listed in ``image_pages``."""
    notes: list[str] = []
    with _collect_messages() as messages:
        reader, repaired = _open(path)
        if repaired:
            notes.append("damaged PDF (no startxref): text recovered by scanning the file")
        try:
            pages = list(reader.pages)
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            damage = "truncated or damaged" if repaired else "page tree unreadable"
            raise ExtractError(f"corrupt PDF ({damage}): {_short(exc)}") from exc
        found = _read_pages(reader, pages, notes)
    notes.extend(f"pypdf: {m}" for m in messages)
    scanned = [p for p in found if p.scanned]
    if ocr is not None and scanned:
        from .pdf_ocr import read_scanned_pages

        notes.extend(read_scanned_pages(path, scanned, ocr))
    parts = [(p.text, p.number, p.heading, p.confidence) for p in found]
    image_pages = [p.number for p in found if p.scanned and not p.text.strip()]
    return make_extraction(parts, image_pages=image_pages, warnings=notes[:MAX_WARNINGS],
                           ocr_pages=len(scanned) if ocr is not None else 0)

"""Image files (PNG, JPEG, TIFF with its pages, WebP, BMP, GIF) read by OCR.

Each frame of a multi-page TIFF is a page; other images are one page (a GIF's first frame).
With OCR off, or when no frame holds readable text, the file is "image_only" like a scanned
PDF, and the reason says which.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from .base import ExtractError, Extraction, Part, make_extraction
from .ocr import OcrEngine, OcrRun

SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".webp", ".bmp", ".gif")
#: Frames read from one file (a TIFF can hold thousands).
MAX_FRAMES = 2000


def _open(path: Path):  # noqa: ANN202 - a PIL image
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            image.size  # noqa: B018 - the header is read lazily
    except (UnidentifiedImageError, SyntaxError) as exc:
        raise ExtractError("not a readable image (unknown or damaged format)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ExtractError("image too large to read (over 89 million pixels)") from exc
    return image


def extract(path: Path, ocr: OcrRun | None = None) -> Extraction:
    """An image file: one section per frame with the OCR'd text, ``page`` set for TIFF pages."""
    image = _open(path)
    with image:
        frames = min(getattr(image, "n_frames", 1), MAX_FRAMES)
        if image.format == "GIF":
            frames = 1
        if ocr is None:
            return make_extraction([], image_pages=range(1, frames + 1),
                                   warnings=["OCR is off"])
        engine = OcrEngine.shared(ocr.options.languages)
        parts: list[Part] = []
        blank: list[int] = []
        notes: list[str] = []
        ocr.progress(0, frames)
        for index in range(frames):
            number = index + 1
            try:
                image.seek(index)
                image.load()
                page = engine.read(image, ocr.options.page_timeout_s, _dpi(image))
            except TimeoutError as exc:
                notes.append(f"page {number}: skipped ({exc})")
                blank.append(number)
            except (OSError, ValueError, EOFError) as exc:
                notes.append(f"page {number}: image data unreadable ({exc})")
                blank.append(number)
            else:
                if page.text:
                    parts.append((page.text, number if frames > 1 else None, None,
                                  page.confidence))
                else:
                    blank.append(number)
            ocr.progress(number, frames)
    return make_extraction(parts, image_pages=blank, warnings=notes, ocr_pages=frames)


def _dpi(image: object) -> int:
    """The image's own resolution when it records a plausible one, else 300."""
    dpi = getattr(image, "info", {}).get("dpi")
    try:
        value = int(round(float(dpi[0]))) if dpi else 0
    except (TypeError, ValueError, IndexError):
        value = 0
    return value if 70 <= value <= 1200 else 300

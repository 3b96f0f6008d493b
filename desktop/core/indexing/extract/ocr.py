"""Optical character recognition of page images with Tesseract (tesserocr), fully offline.

tesserocr's wheels carry libtesseract and leptonica; the trained data comes from the
``tessdata-fast-*`` packages, which install ``<prefix>/share/tessdata/<lang>.traineddata``
(``tessdata`` adds ``osd.traineddata``, used to turn sideways pages upright). Nothing is
downloaded. One :class:`OcrEngine` keeps a Tesseract instance per process: loading the
trained data costs more than a page.

A page is read in grey at the resolution given; its text comes with Tesseract's mean word
confidence (0–1). A page that finds too few confident words is tried once more turned the way
the orientation detector says, and a page that still finds nothing readable gives "" (a photo,
a drawing). Each page has a time limit inside the engine; a page that runs past it is skipped
and reported, the other pages still count.
"""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import ExtractError

log = logging.getLogger(__name__)

DEFAULT_LANGUAGES = ("eng",)
#: Pages are rendered for OCR at this resolution: Tesseract reads small print best at about
#: 300 dpi, and a 150-dpi scan scaled up to it reads better than at its own size (README).
RENDER_DPI = 300
#: A page image is scaled down to at most this many pixels (an A4 page at 300 dpi is 8.7 M):
#: the bound on the memory one page can take.
MAX_PIXELS = 36_000_000
#: A page whose words are fewer than this, or whose confidence is below MIN_CONFIDENCE, holds
#: no readable text (a photo or drawing reads as a few low-confidence fragments).
MIN_WORDS = 3
MIN_CONFIDENCE = 0.45
#: The orientation detector must be at least this sure before a page is turned.
MIN_ORIENTATION_CONFIDENCE = 2.0

ProgressCallback = Callable[[int, int], None]
"""Called with (pages done, pages to OCR) as a file's pages are read."""


@dataclass(frozen=True)
class OcrOptions:
    """How to OCR: languages (Tesseract codes, "eng", "deu"...) and the per-page time limit."""

    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    page_timeout_s: float = 30.0
    dpi: int = RENDER_DPI


@dataclass
class OcrRun:
    """The OCR options of one extraction and where its page progress goes."""

    options: OcrOptions = field(default_factory=OcrOptions)
    on_progress: ProgressCallback | None = None

    def progress(self, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total)


@dataclass(frozen=True)
class OcrPage:
    """The text Tesseract read on one page and its mean word confidence (0–1)."""

    text: str
    confidence: float
    words: int
    rotated: int = 0  # degrees the page was turned before it was read


def tessdata_dirs() -> list[Path]:
    """Where trained data may be: the environment's ``share/tessdata`` (pip's data scheme, the
    virtual environment, or the packaged app's folder)."""
    bases = [sysconfig.get_path("data"), sys.prefix, getattr(sys, "_MEIPASS", None)]
    seen: list[Path] = []
    for base in bases:
        if base:
            path = Path(base) / "share" / "tessdata"
            if path not in seen:
                seen.append(path)
    return seen


def tessdata_dir(languages: tuple[str, ...] = DEFAULT_LANGUAGES) -> Path:
    """The first tessdata folder holding every language; ExtractError naming the package to
    install otherwise."""
    for path in tessdata_dirs():
        if all((path / f"{lang}.traineddata").is_file() for lang in languages):
            return path
    missing = [lang for lang in languages
               if not any((p / f"{lang}.traineddata").is_file() for p in tessdata_dirs())]
    packages = " ".join(f"tessdata-fast-{lang}" for lang in missing)
    raise ExtractError(f"OCR language not installed: {', '.join(missing)} "
                       f"(pip install {packages})")


def installed_languages() -> list[str]:
    """Every language whose trained data is installed (not the orientation model)."""
    found = {p.stem for d in tessdata_dirs() if d.is_dir() for p in d.glob("*.traineddata")}
    return sorted(found - {"osd"})


def _words_and_confidence(api: Any) -> tuple[int, float]:
    confidences = [c for c in api.AllWordConfidences() if c >= 0]
    if not confidences:
        return 0, 0.0
    return len(confidences), sum(confidences) / len(confidences) / 100.0


class OcrEngine:
    """One Tesseract instance for this process (thread-safe: pages are read one at a time)."""

    _shared: dict[tuple[str, ...], OcrEngine] = {}
    _shared_lock = threading.Lock()

    def __init__(self, languages: tuple[str, ...] = DEFAULT_LANGUAGES) -> None:
        import tesserocr

        self.languages = languages
        self.datapath = tessdata_dir(languages)
        self._api = tesserocr.PyTessBaseAPI(path=f"{self.datapath}{os.sep}",
                                            lang="+".join(languages))
        self._osd: Any = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, languages: tuple[str, ...] = DEFAULT_LANGUAGES) -> OcrEngine:
        """The process's engine for ``languages`` (made on first use)."""
        with cls._shared_lock:
            engine = cls._shared.get(languages)
            if engine is None:
                engine = cls._shared[languages] = cls(languages)
            return engine

    def read(self, image: Any, timeout_s: float = 30.0, dpi: int = RENDER_DPI) -> OcrPage:
        """OCR a PIL image; raises TimeoutError when the page runs past ``timeout_s``."""
        image = fit(image.convert("L"))
        with self._lock:
            page = self._recognize(image, timeout_s, dpi)
            if page.words < MIN_WORDS or page.confidence < MIN_CONFIDENCE:
                angle = self._orientation(image)
                if angle:
                    turned = self._recognize(image.rotate(angle, expand=True), timeout_s, dpi)
                    if turned.words * turned.confidence > page.words * page.confidence:
                        page = OcrPage(turned.text, turned.confidence, turned.words, angle)
        if page.words < MIN_WORDS or page.confidence < MIN_CONFIDENCE:
            return OcrPage("", page.confidence, 0, page.rotated)
        return page

    def _recognize(self, image: Any, timeout_s: float, dpi: int) -> OcrPage:
        api = self._api
        api.SetImage(image)
        api.SetSourceResolution(dpi)
        if not api.Recognize(timeout=int(timeout_s * 1000)):
            api.Clear()
            raise TimeoutError(f"OCR ran past {timeout_s:g} s")
        text = api.GetUTF8Text()
        words, confidence = _words_and_confidence(api)
        api.Clear()
        return OcrPage(text.strip(), confidence, words)

    def _orientation(self, image: Any) -> int:
        """Degrees clockwise the page's text is turned (0 when unsure or no detector)."""
        import tesserocr

        if not (self.datapath / "osd.traineddata").is_file():
            return 0
        if self._osd is None:
            self._osd = tesserocr.PyTessBaseAPI(path=f"{self.datapath}{os.sep}", lang="osd",
                                                psm=tesserocr.PSM.OSD_ONLY)
        self._osd.SetImage(image)
        try:
            found = self._osd.DetectOrientationScript()
        except RuntimeError as exc:  # too little text to tell
            log.debug("orientation not detected: %s", exc)
            return 0
        finally:
            self._osd.Clear()
        if not found or found.get("orient_conf", 0.0) < MIN_ORIENTATION_CONFIDENCE:
            return 0
        return int(found.get("orient_deg", 0)) % 360


def fit(image: Any, max_pixels: int = MAX_PIXELS) -> Any:
    """``image`` scaled down to at most ``max_pixels`` (aspect kept)."""
    pixels = image.width * image.height
    if pixels <= max_pixels:
        return image
    scale = (max_pixels / pixels) ** 0.5
    size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    return image.resize(size)

"""Text extraction: one small module per format behind one interface.

``extract(path)`` returns an :class:`Extraction` (sections that remember their page, heading
path and character offset) or raises :class:`ExtractError` with a reason a person can act on.
``kind_for(path)`` names the format cheaply. Extractors are looked up in ``EXTRACTORS`` and
imported on first use; a new format is one module with an ``extract(path)`` function plus one
line in ``EXTRACTORS`` and its suffixes in ``_SUFFIX_KINDS``. Untrusted files should go through
:class:`desktop.core.indexing.extract.sandbox.ExtractionSandbox`, which bounds time and memory.
"""

from __future__ import annotations

import importlib
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

from . import code, image
from .base import ExtractError, Extraction, Section
from .ocr import OcrOptions, OcrRun
from .text import looks_like_text

__all__ = [
    "EXTRACTORS",
    "OcrOptions",
    "OcrRun",
    "SUPPORTED_SUFFIXES",
    "Extraction",
    "ExtractError",
    "Section",
    "extract",
    "kind_by_suffix",
    "kind_for",
]

log = logging.getLogger(__name__)

Extractor = Callable[[Path, OcrRun | None], Extraction]
#: Formats that read images by OCR when an extraction is given an OcrRun.
OCR_FORMATS = frozenset(("pdf", "image"))


def _lazy(module: str) -> Extractor:
    """An extractor that imports its module on first use (keeps this package light to import).
    The formats in OCR_FORMATS take the OCR run as a second argument."""

    def run(path: Path, ocr: OcrRun | None = None) -> Extraction:
        extractor = importlib.import_module(f"{__name__}.{module}").extract
        return extractor(path, ocr) if module in OCR_FORMATS else extractor(path)

    run.__name__ = run.__qualname__ = f"extract_{module}"
    return run


FORMATS = (
    "pdf", "markdown", "text", "html", "code", "docx", "epub", "image",
    "slides", "sheet", "odt", "rtf", "email",
)  # fmt: skip
EXTRACTORS: dict[str, Extractor] = {kind: _lazy(kind) for kind in FORMATS}

_SUFFIX_KINDS: dict[str, str] = {
    ".pdf": "pdf",
    **dict.fromkeys((".md", ".markdown", ".mdown", ".mkd", ".mkdn"), "markdown"),
    **dict.fromkeys(
        (".txt", ".text", ".rst", ".log", ".org", ".adoc", ".asciidoc", ".nfo"),
        "text",
    ),
    **dict.fromkeys((".html", ".htm", ".xhtml", ".shtml"), "html"),
    **dict.fromkeys(code.SUFFIXES, "code"),
    ".docx": "docx",
    ".epub": "epub",
    **dict.fromkeys(image.SUFFIXES, "image"),
    **dict.fromkeys((".pptx", ".odp"), "slides"),
    **dict.fromkeys((".xlsx", ".ods", ".csv", ".tsv"), "sheet"),
    ".odt": "odt",
    ".rtf": "rtf",
    **dict.fromkeys((".eml", ".mbox"), "email"),
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_SUFFIX_KINDS)

# Known binary formats: refused without reading a byte.
# fmt: off
_BINARY_SUFFIXES = frozenset((
    ".heic", ".ico", ".psd",
    ".raw", ".cr2", ".nef", ".svgz", ".mp3", ".wav", ".flac", ".ogg", ".m4a", ".aac", ".mp4",
    ".mkv", ".mov", ".avi", ".webm", ".wmv", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z",
    ".rar", ".tar", ".iso", ".dmg", ".img", ".exe", ".dll", ".so", ".dylib", ".o", ".a", ".class",
    ".jar", ".pyc", ".whl", ".deb", ".rpm", ".msi", ".apk", ".wasm", ".doc", ".xls", ".ppt",
    ".pages", ".key", ".numbers", ".sqlite", ".db", ".sqlite3", ".gguf", ".bin", ".safetensors",
    ".pt", ".pth", ".onnx", ".npy", ".npz", ".pkl", ".parquet", ".ttf", ".otf", ".woff", ".woff2",
    ".eot",
))
# fmt: on


def kind_by_suffix(path: str) -> str | None:
    """The format a file's name alone gives (None when it takes a sniff, or none): no I/O,
    no Path object (it runs for every stored file on a re-scan)."""
    name = os.path.basename(path)
    if name in code.NAMES:
        return "code"
    return _SUFFIX_KINDS.get(os.path.splitext(name)[1].lower())


def kind_for(path: Path) -> str | None:
    """The format of ``path`` ("pdf", "markdown", "text", "html", "code", "docx", "epub",
    "image", "slides", "sheet", "odt", "rtf", "email").

    Decided by suffix; a file with an unknown suffix (or none) is "text" when its first 8 KiB
    decode as text, else None (unsupported, or unreadable).
    """
    if path.name in code.NAMES:
        return "code"
    suffix = path.suffix.lower()
    if suffix in _SUFFIX_KINDS:
        return _SUFFIX_KINDS[suffix]
    if suffix in _BINARY_SUFFIXES:
        return None
    try:
        return "text" if looks_like_text(path) else None
    except OSError as exc:
        log.debug("cannot sniff %s: %s", path, exc)
        return None


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found (it was moved or deleted)"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not a file"
    return f"cannot read the file: {exc.strerror or exc}"


def extract(path: Path, kind: str | None = None, ocr: OcrRun | None = None) -> Extraction:
    """Extract the text of ``path`` as sections; ``kind`` defaults to :func:`kind_for`. Scanned
    pages and images are read by OCR when ``ocr`` is given (else reported as image pages).

    Runs in this process, unbounded: use ExtractionSandbox for untrusted files. Raises
    ExtractError (unreadable, unsupported, encrypted, corrupt, binary, missing file);
    MemoryError passes through, and so does ImportError (a broken installation).
    """
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise ExtractError("not a regular file")
        kind = kind or kind_for(path)
        if kind is None:
            raise ExtractError("unsupported file type")
        extractor = EXTRACTORS.get(kind)
        if extractor is None:
            raise ExtractError(f"unsupported format: {kind}")
        return extractor(path, ocr)
    except (ExtractError, MemoryError, ImportError):
        raise
    except OSError as exc:
        raise ExtractError(_os_reason(exc)) from exc
    except RecursionError as exc:
        raise ExtractError(f"{kind} file nested too deeply to read") from exc
    except Exception as exc:  # a library bug or an odd file must not stop a run
        log.warning("%s extractor failed on %s", kind, path, exc_info=True)
        detail = " ".join(str(exc).split())[:120]
        raise ExtractError(
            f"could not read this {kind} file ({type(exc).__name__}: {detail})"
        ) from exc

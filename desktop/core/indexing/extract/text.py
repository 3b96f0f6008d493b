"""Plain text, and the decoder that every text-based format (Markdown, HTML, code) shares.

UTF-8 (with or without a BOM) and BOM-marked UTF-16/32 are taken as they are; anything else goes
to charset-normalizer (latin-1, cp1252, cp1251, Shift-JIS, ...). NUL bytes or text that decodes
only to control characters mean binary data, which is refused.
"""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path

from .base import ExtractError, Extraction, make_extraction

log = logging.getLogger(__name__)

BINARY = "binary data, not text"
SNIFF_BYTES = 8192

# UTF-32 before UTF-16: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# C0/C1 control characters other than tab, newlines, form feed and escape.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f]")
_CONTROL_SAMPLE = 65536
# fmt: off
_LATIN_CODE_PAGES = frozenset((
    "cp1250", "cp1252", "cp1254", "cp1257", "cp1258", "latin_1", "iso8859_2", "iso8859_3",
    "iso8859_4", "iso8859_9", "iso8859_10", "iso8859_13", "iso8859_14", "iso8859_15", "iso8859_16",
    "mac_latin2", "mac_roman", "mac_iceland", "mac_turkish", "cp437", "cp850", "cp858",
))
# fmt: on
_CP1252_TOLERANCE = 0.1


def _bom_encoding(data: bytes) -> str | None:
    return next((enc for bom, enc in _BOMS if data.startswith(bom)), None)


def _mostly_controls(text: str) -> bool:
    """True when more than 1 % of the (first 64 Ki) characters are control characters."""
    sample = text[:_CONTROL_SAMPLE]
    return len(_CONTROLS.findall(sample)) * 100 > len(sample)


def _guess(data: bytes) -> tuple[str, str] | None:
    """Decode non-UTF-8 bytes with charset-normalizer; None when it finds no text encoding.

    Detection is weak on short Latin-script texts (French in latin-1 comes out as cp1257), so
    when the best guess is a Latin code page and cp1252 (which includes latin-1's letters)
    decodes the bytes nearly as cleanly, cp1252 wins: it is by far the most common of them.
    """
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        return None
    best = matches[0]
    encoding = best.encoding
    if encoding in _LATIN_CODE_PAGES and any(
        "cp1252" in m.could_be_from_charset and m.chaos <= best.chaos + _CP1252_TOLERANCE
        for m in matches
    ):
        try:
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            text = str(best)
    else:
        text = str(best)
    if _mostly_controls(text):
        return None
    return text, encoding


def decode(data: bytes) -> tuple[str, str]:
    """Decode a whole file's bytes to ``(text, encoding)`` with newlines normalized to ``\\n``.

    Raises ExtractError("binary data, not text") for binary data.
    """
    encoding = _bom_encoding(data)
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ExtractError(f"text could not be decoded as {encoding} ({exc.reason})") from exc
    elif b"\x00" in data:
        raise ExtractError(BINARY)
    else:
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            guessed = _guess(data)
            if guessed is None:
                raise ExtractError(BINARY) from None
            text, encoding = guessed
            log.debug("decoded as %s", encoding)
    if _mostly_controls(text):
        raise ExtractError(BINARY)
    return normalize_newlines(text), encoding


def normalize_newlines(text: str) -> str:
    """Turn ``\\r\\n`` and lone ``\\r`` into ``\\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(path: Path) -> tuple[str, str]:
    """Read and decode a text file: ``(text, encoding)``; raises ExtractError for binary data."""
    return decode(path.read_bytes())


def looks_like_text(path: Path) -> bool:
    """Cheaply decide from the first 8 KiB whether a file of unknown type is text."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    encoding = _bom_encoding(head)
    if encoding is None and b"\x00" in head:
        return False
    # An incremental decoder tolerates a character cut in two at the 8 KiB boundary.
    decoder = codecs.getincrementaldecoder(encoding or "utf-8")()
    try:
        text = decoder.decode(head, final=False)
    except UnicodeDecodeError:
        if encoding is not None:
            return False
        guessed = _guess(head)
        return guessed is not None
    return not _mostly_controls(text)


def extract(path: Path) -> Extraction:
    """Plain text: the whole file as one section."""
    text, encoding = read_text(path)
    return make_extraction([(text, None, None)], encoding=encoding)

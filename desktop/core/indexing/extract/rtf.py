"""Rich Text Format (.rtf) through striprtf: the text as one section, paragraphs kept.

RTF is 7-bit text with escapes (``\\'e9``, ``\\u233``) for other characters; a few writers put
raw 8-bit bytes in the document's code page (``\\ansicpgN``), so the bytes are decoded with
that code page when it is a one-byte one, else cp1252: either way one byte stays one character,
which ``\\binN`` (N raw bytes) relies on. Long runs of hex digits (embedded pictures and
objects) are removed first: striprtf steps through them a character at a time.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from .base import ExtractError, Extraction, make_extraction
from .text import normalize_newlines

_CODE_PAGE = re.compile(rb"\\ansicpg(\d{3,5})")
_HEX_BLOB = re.compile(r"[0-9a-fA-F\r\n]{1024,}")
_BLANK_LINES = re.compile(r"\n{3,}")
_ALL_BYTES = bytes(range(256))


def _code_page(head: bytes) -> str:
    """The one-byte code page the RTF header names, else cp1252."""
    match = _CODE_PAGE.search(head)
    if match is not None:
        name = f"cp{int(match.group(1))}"
        try:
            codecs.lookup(name)
            if len(_ALL_BYTES.decode(name, "replace")) == len(_ALL_BYTES):
                return name
        except LookupError:
            pass
    return "cp1252"


def _table_row(line: str) -> str:
    """striprtf ends each table cell with "|": "a|b|" becomes "a | b"."""
    if not line.endswith("|"):
        return line
    return " | ".join(cell.strip() for cell in line[:-1].split("|") if cell.strip())


def extract(path: Path) -> Extraction:
    """RTF file: its text as one section."""
    from striprtf.striprtf import rtf_to_text

    data = path.read_bytes()
    if not data.strip():
        return make_extraction([])
    if not data.lstrip().startswith(b"{\\rtf"):
        raise ExtractError("not an RTF file (it does not start with {\\rtf)")
    encoding = _code_page(data[:4096])
    source = _HEX_BLOB.sub("", data.decode(encoding, "replace"))
    text = rtf_to_text(source, encoding=encoding, errors="replace")
    # \uN escapes give UTF-16 code units: pair the surrogates into real characters.
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    lines = [_table_row(line.rstrip()) for line in normalize_newlines(text).split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines).replace("\xad", ""))
    return make_extraction([(text, None, None)], encoding=encoding)

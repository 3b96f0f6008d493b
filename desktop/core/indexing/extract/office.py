"""What the office formats share: package checks, and the OpenDocument XML text walker.

Office Open XML files (.docx, .xlsx, .pptx) are zip archives; a password-protected one is an
OLE compound file instead (an ``EncryptedPackage`` stream inside), and so is an Office 97-2003
file that was renamed. OpenDocument files are zip archives too; an encrypted one says so in its
manifest. :func:`check_package` and :func:`open_odf` turn each case into a reason a person can
act on. The ODF walker reads ``content.xml`` with the standard library's ElementTree (expat: no
external entities, bounded entity expansion) rather than odfpy, whose loader keeps every
picture in memory and builds a DOM far heavier than ElementTree's.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from xml.etree import ElementTree

from .base import ExtractError

ENCRYPTED_OFFICE = "password-protected (encrypted) Office file: a password is required"
ENCRYPTED_ODF = "password-protected OpenDocument file: a password is required"

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")  # an OLE directory entry's name
_SCAN_CHUNK = 1 << 20


def _holds_encrypted_package(fh: IO[bytes]) -> bool:
    """True when an OLE file has an ``EncryptedPackage`` stream (its name anywhere in it)."""
    fh.seek(0)
    tail = b""
    while chunk := fh.read(_SCAN_CHUNK):
        if _ENCRYPTED_PACKAGE in tail + chunk:
            return True
        tail = chunk[-len(_ENCRYPTED_PACKAGE) :]
    return False


def check_package(path: Path, label: str) -> None:
    """Refuse an Office Open XML file (``label`` "DOCX", "XLSX", "PPTX") that is not a zip.

    An OLE compound file is either encrypted (a password is needed) or an old binary Office
    file under a new suffix; anything else that is not a zip archive is damaged or not Office.
    """
    with path.open("rb") as fh:
        if fh.read(len(_OLE_MAGIC)) == _OLE_MAGIC:
            if _holds_encrypted_package(fh):
                raise ExtractError(ENCRYPTED_OFFICE)
            raise ExtractError(
                f"an old-format (Office 97-2003) file named .{label.lower()}: "
                f"save it again as .{label.lower()}"
            )
    if not zipfile.is_zipfile(path):
        raise ExtractError(f"not a valid {label} file (not a zip archive)")


# OpenDocument namespaces, in ElementTree's "{uri}local" form.
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
DRAW = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
PRESENTATION = "{urn:oasis:names:tc:opendocument:xmlns:presentation:1.0}"

_MIMETYPES = {
    "ODT": "application/vnd.oasis.opendocument.text",
    "ODS": "application/vnd.oasis.opendocument.spreadsheet",
    "ODP": "application/vnd.oasis.opendocument.presentation",
}


def open_odf(path: Path, label: str) -> IO[bytes]:
    """The ``content.xml`` stream of an OpenDocument file (``label`` "ODT", "ODS", "ODP").

    Raises ExtractError when the file is not a zip, is encrypted, is another kind of
    OpenDocument file, or has no content. The caller closes the stream (the archive closes
    with it).
    """
    if not zipfile.is_zipfile(path):
        raise ExtractError(f"not a valid {label} file (not a zip archive)")
    archive = zipfile.ZipFile(path)
    try:
        names = set(archive.namelist())
        manifest = "META-INF/manifest.xml"
        if manifest in names and b"encryption-data" in archive.read(manifest):
            raise ExtractError(ENCRYPTED_ODF)
        if "mimetype" in names:
            mimetype = archive.read("mimetype")[:200].decode("ascii", "replace").strip()
            if not mimetype.startswith(_MIMETYPES[label]):
                raise ExtractError(f"not an {label} file (it is {mimetype or 'unknown'})")
        if "content.xml" not in names:
            raise ExtractError(f"not a valid {label} file (content.xml is missing)")
        stream = archive.open("content.xml")
    except zipfile.BadZipFile as exc:
        archive.close()
        raise ExtractError(f"damaged {label} file ({exc})") from exc
    except BaseException:
        archive.close()
        raise
    archive.close()  # the open member keeps its own reference to the file
    return stream


def parse_odf(path: Path, label: str) -> ElementTree.Element:
    """The parsed ``content.xml`` of an OpenDocument file (see :func:`open_odf`)."""
    with open_odf(path, label) as stream:
        try:
            return ElementTree.parse(stream).getroot()
        except ElementTree.ParseError as exc:
            raise ExtractError(f"damaged {label} file (content.xml: {exc})") from exc
        except zipfile.BadZipFile as exc:
            raise ExtractError(f"damaged {label} file ({exc})") from exc


_SPACE = re.compile(r"[ \t\r\n]+")
_MAX_SPACES = 100
# Inline elements whose text is not part of the sentence: footnotes and frames (text boxes)
# are read as their own lines after the paragraph; comments, footnote numbers and ruby
# (pronunciation) text are dropped.
_AFTER = frozenset((TEXT + "note", DRAW + "frame", DRAW + "custom-shape", DRAW + "g"))
_DROP_INLINE = frozenset((OFFICE + "annotation", TEXT + "note-citation", TEXT + "ruby-text"))
# Block-level elements that hold no document text, deleted text (tracked changes) or a copy
# of it (a table of contents repeats the headings).
# fmt: off
_DROP_BLOCK = frozenset((
    TEXT + "tracked-changes", TEXT + "table-of-content", TEXT + "sequence-decls",
    TEXT + "variable-decls", TEXT + "user-field-decls", TEXT + "dde-connection-decls",
    OFFICE + "forms", OFFICE + "annotation", TABLE + "table-columns", TABLE + "table-column",
    TABLE + "table-header-columns", PRESENTATION + "notes",
))
# fmt: on


def inline_text(element: ElementTree.Element) -> tuple[str, list[ElementTree.Element]]:
    """A paragraph's text (ODF whitespace rules), and the elements to read after it."""
    parts: list[str] = []
    after: list[ElementTree.Element] = []

    def walk(node: ElementTree.Element) -> None:
        if node.text:
            parts.append(_SPACE.sub(" ", node.text))
        for child in node:
            tag = child.tag
            if tag == TEXT + "s":
                count = child.get(TEXT + "c", "1")
                parts.append(" " * min(int(count) if count.isdigit() else 1, _MAX_SPACES))
            elif tag == TEXT + "tab":
                parts.append("\t")
            elif tag == TEXT + "line-break":
                parts.append("\n")
            elif tag in _AFTER:
                after.append(child)
            elif tag not in _DROP_INLINE:
                walk(child)
            if child.tail:
                parts.append(_SPACE.sub(" ", child.tail))

    walk(element)
    text = "\n".join(line.strip() for line in "".join(parts).split("\n"))
    return text.strip(), after


def cell_text(cell: ElementTree.Element) -> str:
    """A table cell's text on one line."""
    return " ".join(" ".join(text for _, text in blocks(cell)).split())


_ROW_GROUPS = frozenset(
    (TABLE + "table-header-rows", TABLE + "table-rows", TABLE + "table-row-group")
)


def table_rows(table: ElementTree.Element) -> Iterator[ElementTree.Element]:
    """The rows of a table (through header rows and row groups), not those of nested tables."""
    for child in table:
        if child.tag == TABLE + "table-row":
            yield child
        elif child.tag in _ROW_GROUPS:
            yield from table_rows(child)


def table_lines(table: ElementTree.Element) -> Iterator[str]:
    """One line per row of a text table, non-empty cells joined by " | "."""
    for row in table_rows(table):
        cells = [cell_text(cell) for cell in row if cell.tag == TABLE + "table-cell"]
        if line := " | ".join(cell for cell in cells if cell):
            yield line


def blocks(
    element: ElementTree.Element, styles: dict[str, int] | None = None
) -> Iterator[tuple[int | None, str]]:
    """The text blocks under ``element`` in document order: ``(heading level or None, text)``.

    ``text:h`` gives its outline level; a ``text:p`` whose style is in ``styles`` gives the
    level mapped there (the "Title" style). Tables give one block per row; containers (lists,
    sections, frames, text boxes, shapes, groups) are read through.
    """
    for child in element:
        tag = child.tag
        if tag in (TEXT + "p", TEXT + "h"):
            text, after = inline_text(child)
            level = None
            if tag == TEXT + "h":
                raw = child.get(TEXT + "outline-level", "1")
                level = int(raw) if raw.isdigit() else 1
            elif styles:
                level = styles.get(child.get(TEXT + "style-name", ""))
            if text:
                yield level, text
            for extra in after:
                yield from blocks(extra)
        elif tag == TABLE + "table":
            yield from ((None, line) for line in table_lines(child))
        elif tag not in _DROP_BLOCK:
            yield from blocks(child, styles)

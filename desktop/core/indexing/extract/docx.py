"""Word documents (.docx) through python-docx: headings make the path, tables are kept.

Paragraphs styled "Title" or "Heading N" start sections; table rows become lines with cells
joined by " | " (a merged cell counts once).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from .base import ExtractError, Extraction, SectionBuilder, make_extraction, missing_member
from .office import check_package

_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.I)
_MAX_TABLE_DEPTH = 5


def _heading_level(paragraph: object) -> int | None:
    try:
        name = (paragraph.style.name or "") if paragraph.style is not None else ""
    except (KeyError, AttributeError, ValueError):
        return None
    if name.lower() == "title":
        return 0
    match = _HEADING_STYLE.match(name.strip())
    return int(match.group(1)) if match else None


def _table_lines(table: object, depth: int = 0) -> list[str]:
    """One line per row, cells joined by " | "; nested tables follow their row."""
    lines: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        nested: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell repeats across the columns it spans
                continue
            seen.add(id(cell._tc))
            text = " ".join(p.text.strip() for p in cell.paragraphs if p.text.strip())
            if text:
                cells.append(text)
            if depth < _MAX_TABLE_DEPTH:
                for inner in cell.tables:
                    nested.extend(_table_lines(inner, depth + 1))
        if cells:
            lines.append(" | ".join(cells))
        lines.extend(nested)
    return lines


def _open(path: Path) -> object:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    check_package(path, "DOCX")  # encrypted, an old .doc renamed, or not a zip
    try:
        return docx.Document(str(path))
    except PackageNotFoundError as exc:
        raise ExtractError("not a valid DOCX file (no Word document inside)") from exc
    except KeyError as exc:
        raise ExtractError(f"not a valid DOCX file ({missing_member(exc)})") from exc
    except ValueError as exc:  # e.g. a .docm or a template: another content type
        raise ExtractError(f"not a Word document ({' '.join(str(exc).split())[:100]})") from exc
    except zipfile.BadZipFile as exc:
        raise ExtractError(f"damaged DOCX file ({exc})") from exc


def extract(path: Path) -> Extraction:
    """DOCX file: one section per heading; table cell text included."""
    from docx.table import Table

    document = _open(path)
    builder = SectionBuilder()
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            builder.add("\n".join(_table_lines(block)))
            continue
        text = block.text.strip()
        level = _heading_level(block)
        if level is not None and text:
            builder.heading(level, " ".join(text.split()))
        elif text:
            builder.add(text)
    return make_extraction(builder.flush())

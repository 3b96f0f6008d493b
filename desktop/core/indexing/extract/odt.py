"""OpenDocument text (.odt): headings make the path, lists and tables are kept.

``text:h`` elements (by outline level) and paragraphs styled "Title" start sections;
paragraphs and list items are lines; table rows become lines with cells joined by " | ";
footnotes and text boxes follow their paragraph. Comments and deleted (tracked) text are left
out.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from .base import ExtractError, Extraction, SectionBuilder, make_extraction
from .office import OFFICE, STYLE, blocks, parse_odf


def _title_styles(root: ElementTree.Element) -> dict[str, int]:
    """Paragraph style names that mean "Title" (level 0), automatic styles based on it too."""
    styles = {"Title": 0}
    automatic = root.find(OFFICE + "automatic-styles")
    for style in automatic if automatic is not None else ():
        if style.get(STYLE + "parent-style-name") == "Title" and style.get(STYLE + "name"):
            styles[style.get(STYLE + "name", "")] = 0
    return styles


def extract(path: Path) -> Extraction:
    """ODT file: one section per heading."""
    root = parse_odf(path, "ODT")
    body = root.find(f"{OFFICE}body/{OFFICE}text")
    if body is None:
        raise ExtractError("not a valid ODT file (it has no text body)")
    builder = SectionBuilder()
    for level, text in blocks(body, _title_styles(root)):
        if level is not None:
            builder.heading(level, " ".join(text.split()))
        else:
            builder.add(text)
    return make_extraction(builder.flush())

"""Markdown: sections per heading (ATX ``#`` and setext underlines), with the heading path.

Lines inside fenced code blocks are never headings. A heading's own title opens its section's
text; a heading with no text under it folds into the next section rather than standing alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import Extraction, SectionBuilder, make_extraction
from .text import read_text

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_NOT_PARAGRAPH = re.compile(r"^(?: {4}|\t| {0,3}(?:[-*+>|]|\d{1,9}[.)])(?:\s|$))")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|`)")


def _clean_title(title: str) -> str:
    title = _LINK.sub(r"\1", title)
    return " ".join(_EMPHASIS.sub("", title).split())


def _front_matter_end(lines: list[str]) -> int:
    """Index after a leading YAML front matter block (``---`` ... ``---``), else 0."""
    if not lines or lines[0].strip() != "---":
        return 0
    for i, line in enumerate(lines[1:200], start=1):
        if line.strip() in ("---", "..."):
            return i + 1
    return 0


def parse(text: str) -> list[tuple[str, int | None, str | None]]:
    """Split Markdown text into ``(text, None, heading path)`` parts."""
    lines = text.split("\n")
    builder = SectionBuilder()
    start = _front_matter_end(lines)
    builder.lines.extend(lines[:start])
    fence: str | None = None
    previous_is_paragraph = False
    for line in lines[start:]:
        if fence is not None:
            builder.add(line)
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped.lstrip(fence[0]):
                fence = None
            previous_is_paragraph = False
            continue
        if match := _FENCE.match(line):
            marker, info = match.groups()
            if not (marker[0] == "`" and "`" in info):
                fence = marker
                builder.add(line)
                previous_is_paragraph = False
                continue
        if match := _ATX.match(line):
            builder.heading(len(match.group(1)), _clean_title(match.group(2) or ""))
            previous_is_paragraph = False
            continue
        if previous_is_paragraph and _SETEXT.match(line) and builder.lines:
            title = builder.lines.pop()
            builder.heading(1 if line.strip()[0] == "=" else 2, _clean_title(title))
            previous_is_paragraph = False
            continue
        builder.add(line)
        previous_is_paragraph = bool(line.strip()) and not _NOT_PARAGRAPH.match(line)
    return builder.flush()


def extract(path: Path) -> Extraction:
    """Markdown file: one section per heading, heading path kept."""
    text, encoding = read_text(path)
    return make_extraction(parse(text), encoding=encoding)

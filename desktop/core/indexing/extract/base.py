"""The types every extractor returns, and the helper that assembles them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

SEPARATOR = "\n\n"
"""What joins section texts into a document's full text (section offsets count it)."""


@dataclass(frozen=True)
class Section:
    """A run of text from one place in a document.

    ``page`` is the 1-based page for paged formats (PDF), else None. ``heading`` is the heading
    path ("Intro > Scope") or None. ``offset`` is where the text starts in the document's full
    text, which is all section texts joined with ``"\\n\\n"``.
    """

    text: str
    page: int | None = None
    heading: str | None = None
    offset: int = 0
    ocr: float | None = None
    """The OCR's mean word confidence (0–1) when the text was read from an image, else None."""


@dataclass(frozen=True)
class Extraction:
    """What an extractor found in one file.

    ``status`` is "ok", "empty" (readable but no text) or "image_only" (no text layer, the
    pages are images: it needs OCR). ``image_pages`` lists pages that have images but no text.
    ``warnings`` are notes a person can read; ``encoding`` is the encoding of a text format.
    ``ocr_pages`` counts the pages OCR read (whether or not they held text).
    """

    sections: list[Section] = field(default_factory=list)
    status: str = "ok"
    image_pages: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()
    encoding: str | None = None
    ocr_pages: int = 0

    @property
    def ocr_confidence(self) -> float | None:
        """The mean OCR confidence over the sections OCR read (None when none was)."""
        scores = [s.ocr for s in self.sections if s.ocr is not None]
        return sum(scores) / len(scores) if scores else None

    @property
    def text(self) -> str:
        """The document's full text: section texts joined with ``"\\n\\n"``."""
        return SEPARATOR.join(s.text for s in self.sections)


class ExtractError(Exception):
    """A file that cannot be read, with a one-line reason a person can act on."""

    @property
    def reason(self) -> str:
        """The one-line reason."""
        return str(self.args[0]) if self.args else "unreadable file"


Part = tuple[str, int | None, str | None] | tuple[str, int | None, str | None, float | None]
"""``(text, page, heading)``, or with a fourth item, the OCR confidence of the text."""


def make_extraction(
    parts: Iterable[Part],
    *,
    image_pages: Iterable[int] = (),
    warnings: Iterable[str] = (),
    encoding: str | None = None,
    ocr_pages: int = 0,
) -> Extraction:
    """Build an Extraction from ``(text, page, heading[, ocr confidence])`` parts.

    Texts are stripped; empty parts are dropped; offsets are computed. The status is "ok" when
    any text remains, else "image_only" when there are image pages, else "empty".
    """
    sections: list[Section] = []
    offset = 0
    for part in parts:
        text, page, heading = part[:3]
        confidence = part[3] if len(part) > 3 else None
        text = text.strip()
        if not text:
            continue
        sections.append(Section(text=text, page=page, heading=heading or None, offset=offset,
                                ocr=confidence))
        offset += len(text) + len(SEPARATOR)
    pages = tuple(sorted(set(image_pages)))
    if sections:
        status = "ok"
    elif pages:
        status = "image_only"
    else:
        status = "empty"
    return Extraction(
        sections=sections,
        status=status,
        image_pages=pages,
        warnings=tuple(dict.fromkeys(warnings)),
        encoding=encoding,
        ocr_pages=ocr_pages,
    )


def missing_member(exc: KeyError) -> str:
    """``zipfile``'s "There is no item named 'X' in the archive" as "X is missing"."""
    message = str(exc.args[0]) if exc.args else ""
    match = re.search(r"named '([^']*)'", message)
    return f"{match.group(1)} is missing" if match else f"missing part {message}"


def join_heading(path: Iterable[str]) -> str | None:
    """Join a heading path with " > " (None when empty)."""
    parts = [p for p in (" ".join(p.split()) for p in path) if p]
    return " > ".join(parts) or None


class SectionBuilder:
    """Collects lines into ``(text, None, heading path)`` parts under a stack of headings.

    A heading's title opens its section's text. A heading with no text under it is not a
    section of its own: its title folds into the next section, whose path it no longer heads
    unless it is an ancestor.
    """

    def __init__(self) -> None:
        self.parts: list[tuple[str, int | None, str | None]] = []
        self.stack: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.title_lines = 0  # leading lines of self.lines that are heading titles

    def add(self, line: str) -> None:
        self.lines.append(line)

    def has_content(self) -> bool:
        return any(line.strip() for line in self.lines[self.title_lines :])

    def heading(self, level: int, title: str) -> None:
        if self.has_content():
            self.flush()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, title))
        if title:
            self.lines.append(title)
        self.title_lines = len(self.lines)

    def flush(self) -> list[tuple[str, int | None, str | None]]:
        heading = join_heading(title for _, title in self.stack)
        self.parts.append(("\n".join(self.lines), None, heading))
        self.lines = []
        self.title_lines = 0
        return self.parts

"""HTML: the visible text only, split into sections at ``h1``-``h6`` with the heading path.

Scripts, styles, ``noscript``, templates, the ``head`` and elements marked ``hidden`` are dropped.
Block elements become paragraph breaks, ``pre`` keeps its layout. EPUB reuses :func:`parse`.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser, LexborNode

from .base import ExtractError, Extraction, join_heading, make_extraction
from .text import decode, normalize_newlines

# fmt: off
_DROP = frozenset((
    "script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object", "embed",
    "canvas", "select",
))
# fmt: on
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
# fmt: off
_PARAGRAPH = frozenset((
    "address", "article", "aside", "blockquote", "details", "dialog", "div", "dl", "fieldset",
    "figcaption", "figure", "footer", "form", "header", "hgroup", "hr", "main", "nav", "ol", "p",
    "pre", "section", "table", "ul", "caption", "summary", "legend", "center",
))
# fmt: on
_LINE = frozenset(["li", "dt", "dd", "tr", "br", "option"])
_CELL = frozenset(("td", "th"))
_SPACE = re.compile(r"\s+")
_UNICODE = frozenset(("utf-8", "utf-8-sig", "utf-16", "utf-32"))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


class _Writer:
    """Accumulates visible text with collapsed whitespace and paragraph breaks."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.newlines = 2  # trailing newlines so far (2 = at the start)

    def text(self, raw: str) -> None:
        text = _SPACE.sub(" ", raw)
        if self.newlines or (self.parts and self.parts[-1].endswith(" ")):
            text = text.lstrip(" ")
        if text:
            self.parts.append(text)
            self.newlines = 0

    def pre(self, raw: str) -> None:
        text = normalize_newlines(raw)
        if text:
            self.parts.append(text)
            stripped = text.rstrip("\n")
            self.newlines = len(text) - len(stripped) if stripped else self.newlines + len(text)

    def separator(self, text: str) -> None:
        """Put ``text`` between two inline runs (not at the start of a line)."""
        if not self.newlines and self.parts:
            self.parts[-1] = self.parts[-1].rstrip(" ")
            self.parts.append(text)

    def newline(self, count: int = 1) -> None:
        if self.parts and self.parts[-1].endswith(" "):
            self.parts[-1] = self.parts[-1].rstrip(" ")
        if self.newlines < count:
            self.parts.append("\n" * (count - self.newlines))
            self.newlines = count

    def value(self) -> str:
        return "".join(self.parts).strip()


def _children(node: LexborNode) -> list[LexborNode]:
    children = []
    child = node.first_child
    while child is not None:
        children.append(child)
        child = child.next
    return children


Part = tuple[str, int | None, str | None]


class _Sections:
    """The text written so far, cut into one part per heading, with the heading path."""

    def __init__(self, prefix: str | None) -> None:
        self.prefix = prefix
        self.parts: list[Part] = []
        self.stack: list[tuple[int, str]] = []  # (level, title) of the open headings
        self.writer = _Writer()
        self.pre_depth = 0

    def heading_path(self) -> str | None:
        titles = [self.prefix] if self.prefix else []
        for _, title in self.stack:
            if not titles or title.casefold() != titles[-1].casefold():
                titles.append(title)
        return join_heading(titles)

    def close(self) -> None:
        """End the current part."""
        self.parts.append((self.writer.value(), None, self.heading_path()))
        self.writer = _Writer()

    def heading(self, level: int, title: str) -> None:
        """A new part under ``title``, closing the headings at its level and below."""
        self.close()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, title))
        self.writer.text(title)
        self.writer.newline(2)

    def text(self, content: str) -> None:
        self.writer.pre(content) if self.pre_depth else self.writer.text(content)

    def enter(self, tag: str) -> None:
        """The breaks an element's start makes."""
        if tag == "pre":
            self.pre_depth += 1
        if tag in _PARAGRAPH:
            self.writer.newline(2)
        elif tag in _LINE:
            self.writer.newline(1)
        elif tag in _CELL:
            self.writer.separator(" | ")

    def leave(self, tag: str) -> None:
        """The breaks an element's end makes."""
        if tag == "pre":
            self.pre_depth -= 1
        if tag in _PARAGRAPH:
            self.writer.newline(2)
        elif tag in _LINE:
            self.writer.newline(1)


def parse(html: str, prefix: str | None = None) -> list[Part]:
    """Split HTML into ``(text, None, heading path)`` parts; ``prefix`` heads every path.

    A depth-first walk with an explicit stack (deep documents do not hit the recursion
    limit); each element is visited on the way in and, for its closing breaks, on the way out.
    """
    root = LexborHTMLParser(html).root
    out = _Sections(prefix)
    todo: list[tuple[LexborNode, bool]] = [(root, True)] if root is not None else []
    while todo:
        node, entering = todo.pop()
        tag = node.tag or ""
        if not entering:
            out.leave(tag)
        elif node.is_text_node:
            out.text(node.text_content or "")
        elif not node.is_element_node or tag in _DROP or "hidden" in node.attributes:
            continue
        elif tag in _HEADINGS:
            if title := " ".join(node.text(deep=True).split()):
                out.heading(_HEADINGS[tag], title)
        else:
            out.enter(tag)
            todo.append((node, False))
            todo.extend((child, True) for child in reversed(_children(node)))
    out.close()
    return out.parts


def decode_html(data: bytes) -> tuple[str, str]:
    """Decode HTML: a BOM or valid UTF-8 first, then its ``<meta charset>``, then detection."""
    try:
        text, encoding = decode(data)
    except ExtractError as exc:
        text, encoding, error = None, None, exc
    if encoding in _UNICODE:
        return text, encoding
    match = _META_CHARSET.search(data[:4096])
    if match is not None:
        try:
            declared = codecs.lookup(match.group(1).decode("ascii")).name
            return normalize_newlines(data.decode(declared)), declared
        except (LookupError, UnicodeDecodeError):
            pass
    if text is None:
        raise error
    return text, encoding


def extract(path: Path) -> Extraction:
    """HTML file: visible text, one section per heading."""
    html, encoding = decode_html(path.read_bytes())
    return make_extraction(parse(html), encoding=encoding)

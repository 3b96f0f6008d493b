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


def parse(html: str, prefix: str | None = None) -> list[tuple[str, int | None, str | None]]:
    """Split HTML into ``(text, None, heading path)`` parts; ``prefix`` heads every path."""
    root = LexborHTMLParser(html).root
    parts: list[tuple[str, int | None, str | None]] = []
    stack: list[tuple[int, str]] = []
    writer = _Writer()

    def heading_path() -> str | None:
        titles = [prefix] if prefix else []
        for _, title in stack:
            if not titles or title.casefold() != titles[-1].casefold():
                titles.append(title)
        return join_heading(titles)

    pre_depth = 0
    todo: list[tuple[LexborNode, bool]] = [(root, True)] if root is not None else []
    while todo:
        node, entering = todo.pop()
        tag = node.tag or ""
        if not entering:  # leaving an element
            if tag == "pre":
                pre_depth -= 1
            if tag in _PARAGRAPH:
                writer.newline(2)
            elif tag in _LINE:
                writer.newline(1)
            continue
        if node.is_text_node:
            content = node.text_content or ""
            writer.pre(content) if pre_depth else writer.text(content)
            continue
        if not node.is_element_node or tag in _DROP or "hidden" in node.attributes:
            continue
        if tag in _HEADINGS:
            title = " ".join(node.text(deep=True).split())
            if title:
                parts.append((writer.value(), None, heading_path()))
                writer = _Writer()
                level = _HEADINGS[tag]
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, title))
                writer.text(title)
                writer.newline(2)
            continue
        if tag == "pre":
            pre_depth += 1
        if tag in _PARAGRAPH:
            writer.newline(2)
        elif tag in _LINE:
            writer.newline(1)
        elif tag in _CELL:
            writer.separator(" | ")
        todo.append((node, False))
        todo.extend((child, True) for child in reversed(_children(node)))
    parts.append((writer.value(), None, heading_path()))
    return parts


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

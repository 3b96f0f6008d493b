"""EPUB e-books through ebooklib: each spine document through the HTML extractor.

Section headings start with the chapter title from the book's table of contents, when it has
one for that document. A DRM-encrypted book is refused with a clear reason.
"""

from __future__ import annotations

import logging
import posixpath
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from .base import ExtractError, Extraction, make_extraction, missing_member
from .html import decode_html, parse

log = logging.getLogger(__name__)

# Font obfuscation (IDPF, Adobe) is allowed; any other encrypted content is DRM.
_FONT_OBFUSCATION = ("http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC")
_ENC_NS = "{http://www.w3.org/2001/04/xmlenc#}"


def _check_drm(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        try:
            data = archive.read("META-INF/encryption.xml")
        except KeyError:
            return
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return
    for method in root.iter(f"{_ENC_NS}EncryptionMethod"):
        if method.get("Algorithm") not in _FONT_OBFUSCATION:
            raise ExtractError("DRM-protected EPUB: the text is encrypted")


def _toc_titles(toc: Iterable[Any], titles: dict[str, str]) -> dict[str, str]:
    """Map a document href (no fragment) to the first TOC title that points into it."""
    for entry in toc:
        if isinstance(entry, tuple | list) and len(entry) == 2:
            section, children = entry
            _add_title(section, titles)
            _toc_titles(children, titles)
        else:
            _add_title(entry, titles)
    return titles


def _add_title(entry: Any, titles: dict[str, str]) -> None:
    href = (getattr(entry, "href", "") or "").split("#")[0]
    title = " ".join((getattr(entry, "title", "") or "").split())
    if href and title:
        titles.setdefault(posixpath.normpath(href), title)


def _chapter_title(name: str, titles: dict[str, str]) -> str | None:
    name = posixpath.normpath(name)
    if name in titles:
        return titles[name]
    # TOC hrefs may be relative to another folder than the manifest's: match on the tail.
    for href, title in titles.items():
        if href.endswith("/" + name) or name.endswith("/" + href):
            return title
    return None


def _is_nav(item: Any) -> bool:
    """The EPUB 3 navigation document (a table of contents, not content)."""
    from ebooklib import epub

    return isinstance(item, epub.EpubNav) or "nav" in (getattr(item, "properties", None) or [])


def _read(path: Path) -> Any:
    from ebooklib import epub

    if not zipfile.is_zipfile(path):
        raise ExtractError("not a valid EPUB file (not a zip archive)")
    _check_drm(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return epub.read_epub(str(path), {"ignore_ncx": True})
    except epub.EpubException as exc:
        raise ExtractError(f"not a valid EPUB file ({exc.msg})") from exc
    except KeyError as exc:
        raise ExtractError(f"not a valid EPUB file ({missing_member(exc)})") from exc
    except (zipfile.BadZipFile, ElementTree.ParseError) as exc:
        raise ExtractError(f"damaged EPUB file ({type(exc).__name__}: {exc})") from exc


def extract(path: Path) -> Extraction:
    """EPUB file: the spine's documents in reading order, one section per heading."""
    import ebooklib

    book = _read(path)
    titles = _toc_titles(book.toc, {})
    parts: list[tuple[str, int | None, str | None]] = []
    notes: list[str] = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or _is_nav(item):
            continue
        name = item.get_name()
        try:
            html, _ = decode_html(item.get_content())
        except ExtractError as exc:
            notes.append(f"{name}: {exc}")
            continue
        parts.extend(parse(html, prefix=_chapter_title(name, titles)))
    return make_extraction(parts, warnings=notes)

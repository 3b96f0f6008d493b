"""Presentations (.pptx through python-pptx, .odp from its XML): one section per slide.

A slide's text is its title, then the text of its other shapes in their stacking order (text
frames, grouped shapes, chart titles, tables as rows with cells joined by " | "), then its
speaker notes after "Notes: "; footer, date and slide-number placeholders are left out. The
heading is "Slide N: <title>" ("Slide N" without a title), N counting every slide, hidden ones
included; a slide without text is left out.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import ExtractError, Extraction, make_extraction, missing_member
from .office import DRAW, OFFICE, PRESENTATION, blocks, check_package, parse_odf

_MAX_GROUP_DEPTH = 20
# Placeholders that repeat on every slide and hold fields, not content (.odp classes).
_FURNITURE = frozenset(("page-number", "date-time", "footer", "header"))


@dataclass
class _Slide:
    title: str = ""
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def part(self, number: int) -> tuple[str, int | None, str | None]:
        """``(text, page, heading)`` for make_extraction (page stays None: slides are not pages)."""
        body = [self.title] if self.title else []
        body += self.lines
        if notes := "\n".join(self.notes).strip():
            body.append(f"Notes: {notes}")
        heading = f"Slide {number}: {self.title}" if self.title else f"Slide {number}"
        return "\n".join(body), None, heading


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _frame_lines(frame: Any) -> list[str]:
    """The non-empty lines of a python-pptx text frame (a line break splits a paragraph)."""
    lines: list[str] = []
    for paragraph in frame.paragraphs:
        for line in paragraph.text.replace("\v", "\n").split("\n"):
            if line := line.strip():
                lines.append(line)
    return lines


def _table_lines(table: Any) -> list[str]:
    lines: list[str] = []
    for row in table.rows:
        cells = [_one_line(cell.text) for cell in row.cells if not cell.is_spanned]
        if line := " | ".join(cell for cell in cells if cell):
            lines.append(line)
    return lines


def _is_furniture(shape: Any) -> bool:
    """A footer, slide number or date placeholder: the same on every slide, not content."""
    from pptx.enum.shapes import PP_PLACEHOLDER

    if not shape.is_placeholder:
        return False
    kind = shape.placeholder_format.type
    return kind in (PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.SLIDE_NUMBER, PP_PLACEHOLDER.DATE)


def _shape_lines(shape: Any, depth: int = 0) -> list[str]:
    from pptx.shapes.group import GroupShape

    if _is_furniture(shape):
        return []
    if isinstance(shape, GroupShape):
        if depth >= _MAX_GROUP_DEPTH:
            return []
        return [line for inner in shape.shapes for line in _shape_lines(inner, depth + 1)]
    if shape.has_text_frame:
        return _frame_lines(shape.text_frame)
    if shape.has_table:
        return _table_lines(shape.table)
    if shape.has_chart and shape.chart.has_title:
        return _frame_lines(shape.chart.chart_title.text_frame)
    return []


def _pptx_slide(slide: Any) -> _Slide:
    out = _Slide()
    title = slide.shapes.title
    if title is not None and title.has_text_frame:
        out.title = _one_line(title.text_frame.text)
    for shape in slide.shapes:
        if title is not None and shape.shape_id == title.shape_id:
            continue
        out.lines.extend(_shape_lines(shape))
    if slide.has_notes_slide:
        frame = slide.notes_slide.notes_text_frame
        if frame is not None:
            out.notes = _frame_lines(frame)
    return out


def _open_pptx(path: Path) -> Any:
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    check_package(path, "PPTX")
    try:
        return Presentation(str(path))
    except PackageNotFoundError as exc:
        raise ExtractError("not a valid PPTX file (no presentation inside)") from exc
    except KeyError as exc:
        raise ExtractError(f"not a valid PPTX file ({missing_member(exc)})") from exc
    except ValueError as exc:  # another content type, e.g. a slide show (.ppsx) or a .pptm
        detail = " ".join(str(exc).split())[:100]
        raise ExtractError(f"not a PowerPoint presentation ({detail})") from exc
    except zipfile.BadZipFile as exc:
        raise ExtractError(f"damaged PPTX file ({exc})") from exc


def _pptx(path: Path) -> list[_Slide]:
    return [_pptx_slide(slide) for slide in _open_pptx(path).slides]


def _odp(path: Path) -> list[_Slide]:
    root = parse_odf(path, "ODP")
    presentation = root.find(f"{OFFICE}body/{OFFICE}presentation")
    if presentation is None:
        raise ExtractError("not a valid ODP file (it has no slides)")
    slides: list[_Slide] = []
    for page in presentation.iter(DRAW + "page"):
        slide = _Slide()
        for child in page:
            kind = child.get(PRESENTATION + "class")
            texts = [text for _, text in blocks(child)]
            if child.tag == PRESENTATION + "notes":
                slide.notes.extend(texts)
            elif kind == "title" and not slide.title:
                slide.title = _one_line(" ".join(texts))
            elif kind not in _FURNITURE:
                slide.lines.extend(texts)
        slides.append(slide)
    return slides


def extract(path: Path) -> Extraction:
    """PPTX or ODP file: one section per slide with text."""
    slides = _odp(path) if path.suffix.lower() == ".odp" else _pptx(path)
    return make_extraction(slide.part(number) for number, slide in enumerate(slides, start=1))

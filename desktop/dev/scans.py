"""Scanned documents made from text, as a scanner would give them, for tests and benchmarks.

A page is typeset (Pillow's scalable default font) or rendered from a PDF (pypdfium2) at the
scan resolution, turned grey, tilted slightly and passed through JPEG, then saved as an
image-only PDF (no text layer) or an image file. ``python -m desktop.dev.scans SRC DEST`` makes a
scanned copy of an evaluation dataset: every corpus file becomes a scanned PDF of the same name,
so ``grounded eval DEST`` measures retrieval on scans against the text version.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SKEW_DEGREES = 0.7
JPEG_QUALITY = 75
FONT_POINTS = 11
A4_INCHES = (8.27, 11.69)
MARGIN_INCHES = 0.9


def scanner_look(image: Image.Image, skew: float = SKEW_DEGREES) -> Image.Image:
    """``image`` as a flatbed scan gives it: grey, tilted by ``skew`` degrees, JPEG'd."""
    grey = image.convert("L").rotate(skew, expand=True, fillcolor=255,
                                     resample=Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    grey.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return Image.open(io.BytesIO(buffer.getvalue()))


def typeset(text: str, dpi: int = 150) -> list[Image.Image]:
    """A4 pages of ``text`` at ``dpi`` (paragraphs kept, lines wrapped), before scanning."""
    size = round(FONT_POINTS / 72 * dpi)
    font = ImageFont.load_default(size=size)
    width, height = (round(v * dpi) for v in A4_INCHES)
    margin = round(MARGIN_INCHES * dpi)
    chars = max(20, int((width - 2 * margin) / (size * 0.5)))
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(textwrap.wrap(paragraph, chars) or [""])
    step = round(size * 1.35)
    per_page = max(1, (height - 2 * margin) // step)
    pages = []
    for first in range(0, max(1, len(lines)), per_page):
        page = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(page)
        for i, line in enumerate(lines[first : first + per_page]):
            draw.text((margin, margin + i * step), line, fill=0, font=font)
        pages.append(page)
    return pages


def render_pdf(path: Path, dpi: int = 150, pages: Iterable[int] | None = None
               ) -> list[Image.Image]:
    """The pages of the PDF at ``path`` rendered at ``dpi`` (all, or the 0-based ``pages``)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(path))
    try:
        indexes = range(len(document)) if pages is None else pages
        return [document[i].render(scale=dpi / 72).to_pil() for i in indexes]
    finally:
        document.close()


def save_scan(pages: list[Image.Image], dest: Path, dpi: int = 150) -> Path:
    """Scan ``pages`` and save them as an image-only PDF (or an image, by ``dest``'s suffix)."""
    scanned = [scanner_look(p) for p in pages]
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix.lower() == ".pdf" or len(scanned) > 1:
        scanned[0].save(dest, save_all=True, append_images=scanned[1:], resolution=dpi)
    else:
        scanned[0].save(dest, dpi=(dpi, dpi))
    return dest


def scan_dataset(source: Path, dest: Path, dpi: int = 150) -> int:
    """Copy an evaluation dataset with every corpus file typeset and scanned as a PDF."""
    corpus = next(source / n for n in ("corpus_small", "corpus") if (source / n).is_dir())
    target = dest / corpus.name
    target.mkdir(parents=True, exist_ok=True)
    for questions in source.glob("questions*.jsonl"):
        shutil.copy(questions, dest / questions.name)
    count = 0
    for file in sorted(corpus.iterdir()):
        pdf = target / f"{file.stem}.pdf"
        if not pdf.exists():
            save_scan(typeset(file.read_text(encoding="utf-8")), pdf, dpi)
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a dataset folder of ../shared/eval")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--dpi", type=int, default=150)
    args = parser.parse_args(argv)
    count = scan_dataset(args.source, args.dest, args.dpi)
    print(f"{count} files scanned into {args.dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`grounded bench ocr`: OCR quality on scans of real PDFs, its speed and memory in the pipeline.

The text PDFs of ../shared/eval/pdfs are rendered at 150 and 300 dpi and "scanned" (grey,
tilted, JPEG: desktop.dev.scans) into image-only PDFs; the pipeline's PDF extractor reads them
back by OCR and each page is scored against its own text layer: word recall (the share of the
layer's words, counted with repeats, that OCR found) and character error rate (edit distance
over the layer's length, whitespace collapsed). Then, in the same run: OCR pages/s through the
indexing pipeline against the engine alone on the very same page images; text-document
throughput with OCR on against off; the extraction child's peak memory on the largest page;
and what becomes of the scanned PDFs of ../shared/eval/pdfs.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from desktop.core.config import Settings
from desktop.core.embedding.embedder import OnnxEmbedder
from desktop.core.indexing.extract import extract
from desktop.core.indexing.extract.ocr import RENDER_DPI, OcrEngine, OcrOptions, OcrRun
from desktop.core.indexing.extract.sandbox import ExtractionSandbox
from desktop.core.indexing.indexer import Indexer
from desktop.core.jobs import run_job
from desktop.core.storage.store import Store
from desktop.dev.benchmarks import Report
from desktop.dev.scans import render_pdf, save_scan

#: English text PDFs of ../shared/eval/pdfs with their kind of page. "prose" pages are the
#: target's; the table is reported beside them. A page that also has images (a figure, a
#: pictured form) is reported as "figures": its text layer misses the words in the pictures,
#: which OCR reads, so the layer is no reference for it.
TEXT_PDFS = {
    "pdfplumber_federal-register-2020-17221.pdf": "prose",
    "pysample_004_pdflatex-4-pages.pdf": "prose",
    "pysample_006_pdflatex-outline.pdf": "prose",
    "pysample_026_latex-multicolumn.pdf": "prose",
    "pysample_002_libreoffice-writer.pdf": "prose",
    "pysample_011_google-doc-document.pdf": "prose",
    "pysample_021_crazyones-pdfa.pdf": "prose",
    "pdfplumber_nics-background-checks-2015-11.pdf": "table",
}
#: Pages whose text layer holds fewer characters than this are not scored (a title page, a
#: page of figures): recall over a handful of words says nothing.
MIN_SCORED_CHARS = 300
KINDS = ("prose", "table", "figures")
SCANNED_EVAL_PDFS = ("docling_ocr_test.pdf", "docling_ocr_test_rotated_90.pdf",
                     "pysample_007_imagemagick-CCITTFaxDecode.pdf",
                     "pysample_007_imagemagick-images.pdf", "pysample_019_grayscale-image.pdf",
                     "pysample_023_cmyk-image.pdf")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def word_recall(reference: str, text: str) -> float:
    """The share of the reference's words (with repeats) that ``text`` holds."""
    ref, got = Counter(words(reference)), Counter(words(text))
    total = sum(ref.values())
    return sum(min(n, got[w]) for w, n in ref.items()) / total if total else 1.0


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one numpy row at a time (insertions by a running minimum)."""
    if not a or not b:
        return len(a) or len(b)
    source = np.frombuffer(a.encode("utf-32-le"), dtype=np.uint32)
    target = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    idx = np.arange(len(b) + 1)
    row = idx.copy()
    for i, code in enumerate(source, start=1):
        new = np.empty_like(row)
        new[0] = i
        new[1:] = np.minimum(row[1:] + 1, row[:-1] + (target != code))
        row = np.minimum.accumulate(new - idx) + idx  # insertions: new[j] <= new[j-1] + 1
    return int(row[-1])


def char_error_rate(reference: str, text: str) -> float:
    ref, got = " ".join(reference.split()), " ".join(text.split())
    return edit_distance(ref, got) / max(1, len(ref))


def _pages_with_images(path: Path) -> set[int]:
    from pypdf import PdfReader

    from desktop.core.indexing.extract.pdf import page_has_images

    return {n for n, page in enumerate(PdfReader(path).pages, start=1) if page_has_images(page)}


def _quality(pdfs: Path, work: Path, dpi: int, say: Report) -> dict:
    """Scan each text PDF at ``dpi``, OCR it through the extractor, score every page."""
    rows = []
    for name, file_kind in TEXT_PDFS.items():
        source = pdfs / name
        layer = {s.page: s.text for s in extract(source).sections}
        pictured = _pages_with_images(source)
        scan = save_scan(render_pdf(source, dpi), work / f"{dpi}" / name, dpi)
        started = time.perf_counter()
        read = extract(scan, ocr=OcrRun())
        seconds = time.perf_counter() - started
        got = {s.page: s.text for s in read.sections}
        for page, text in layer.items():
            if len(text) < MIN_SCORED_CHARS:
                continue
            kind = "figures" if page in pictured else file_kind
            rows.append({"file": name, "page": page, "kind": kind,
                         "recall": word_recall(text, got.get(page, "")),
                         "cer": char_error_rate(text, got.get(page, "")),
                         "seconds_per_page": seconds / max(1, read.ocr_pages)})
        say(f"  {dpi} dpi {name}: {sum(r['file'] == name for r in rows)} pages scored")
    result: dict = {"pages": rows}
    for kind in KINDS:
        chosen = [r for r in rows if r["kind"] == kind]
        if chosen:
            result[kind] = {
                "pages": len(chosen),
                "word_recall": float(np.mean([r["recall"] for r in chosen])),
                "word_recall_min": float(min(r["recall"] for r in chosen)),
                "cer": float(np.mean([r["cer"] for r in chosen])),
                "seconds_per_page": float(np.mean([r["seconds_per_page"] for r in chosen])),
            }
    return result


def _pipeline_against_engine(scans: Path, work: Path, embedder: OnnxEmbedder,
                             say: Report) -> dict:
    """OCR pages/s indexing ``scans`` against the engine alone on the same page images."""
    images = [img for pdf in sorted(scans.glob("*.pdf")) for img in render_pdf(pdf, RENDER_DPI)]
    engine = OcrEngine.shared()
    started = time.perf_counter()
    for image in images:
        engine.read(image)
    alone = len(images) / (time.perf_counter() - started)
    with Store.open(work / "pipeline.sqlite") as store:
        report = run_job(Indexer(store, embedder).run([scans], "scans"), lambda p: None)
    pipeline = report.ocr_pages / report.seconds
    say(f"  OCR pages/s: pipeline {pipeline:.2f}, engine alone {alone:.2f} "
        f"({report.ocr_pages} pages)")
    return {"pages": report.ocr_pages, "pipeline_pages_per_s": pipeline,
            "engine_pages_per_s": alone, "ratio": pipeline / alone}


def _text_with_and_without_ocr(corpus: list[Path], work: Path, embedder: OnnxEmbedder,
                               say: Report) -> dict:
    """Chunks/s indexing text documents with OCR on and off (the same files, fresh indexes)."""
    rates = {}
    for ocr in (False, True, False, True):
        with Store.open(work / f"text-{ocr}-{time.monotonic_ns()}.sqlite") as store:
            report = run_job(Indexer(store, embedder, Settings(ocr=ocr)).run(corpus, "text"),
                             lambda p: None)
        rates.setdefault(ocr, []).append(report.chunks / report.seconds)
    on, off = max(rates[True]), max(rates[False])
    say(f"  text chunks/s: OCR on {on:.1f}, off {off:.1f}")
    return {"chunks_per_s_ocr_on": on, "chunks_per_s_ocr_off": off, "ratio": on / off}


def _child_peak_mb(pdf: Path) -> dict:
    """The extraction child's resident memory at rest and its peak OCRing ``pdf``."""
    def status_mb(pid: int, key: str) -> float:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
        return 0.0

    with ExtractionSandbox(timeout_s=120) as box:
        box.start()
        rest = status_mb(box.pid, "VmRSS")
        box.extract(pdf, "pdf", OcrOptions())
        peak = status_mb(box.pid, "VmHWM")
    return {"file": pdf.name, "rest_mb": rest, "peak_mb": peak}


def _scanned_eval_pdfs(pdfs: Path) -> dict:
    result = {}
    for name in SCANNED_EVAL_PDFS:
        read = extract(pdfs / name, ocr=OcrRun())
        result[name] = {"status": read.status, "chars": len(read.text),
                        "ocr_pages": read.ocr_pages, "confidence": read.ocr_confidence}
    return result


def bench_ocr(eval_dir: Path, say: Report) -> dict:
    """Every OCR measure of the README, in one run (a few minutes on two cores)."""
    pdfs = eval_dir / "pdfs"
    with tempfile.TemporaryDirectory(prefix="grounded-bench-ocr-") as tmp:
        work = Path(tmp)
        say("OCR quality: text PDFs scanned at 150 and 300 dpi, read back, scored per page")
        quality = {str(dpi): _quality(pdfs, work, dpi, say) for dpi in (150, 300)}
        largest = max((work / "300").glob("*.pdf"), key=lambda p: p.stat().st_size)
        memory = _child_peak_mb(largest)
        say(f"  extraction child: {memory['rest_mb']:.0f} MB at rest, peak "
            f"{memory['peak_mb']:.0f} MB OCRing {largest.name} at 300 dpi")
        say("speed: the 150-dpi scans through the indexing pipeline, and the engine alone")
        embedder = OnnxEmbedder()
        embedder.load()
        speed = _pipeline_against_engine(work / "150", work, embedder, say)
        corpus = [eval_dir / "squad_v1.1_dev" / "corpus_small",
                  *(pdfs / name for name in TEXT_PDFS)]
        text = _text_with_and_without_ocr(corpus, work, embedder, say)
    scanned = _scanned_eval_pdfs(pdfs)
    for name, row in scanned.items():
        say(f"  {name}: {row['status']}, {row['chars']} characters")
    for dpi, q in quality.items():
        for kind in KINDS:
            if kind in q:
                r = q[kind]
                say(f"{dpi} dpi {kind}: word recall {r['word_recall']:.3f} (min "
                    f"{r['word_recall_min']:.3f}), CER {r['cer']:.3f}, "
                    f"{r['seconds_per_page']:.2f} s/page over {r['pages']} pages")
    say(f"pipeline / engine alone: {speed['ratio']:.2f}; text with OCR on / off: "
        f"{text['ratio']:.2f}")
    return {"quality": {dpi: {k: v for k, v in q.items() if k != "pages"}
                        for dpi, q in quality.items()},
            "pages": {dpi: q["pages"] for dpi, q in quality.items()},
            "speed": speed, "text_throughput": text, "memory": memory,
            "scanned_eval_pdfs": scanned}


if __name__ == "__main__":  # python -m desktop.dev.bench_ocr EVAL_DIR
    import sys

    print(json.dumps(bench_ocr(Path(sys.argv[1]), lambda s: print(s, file=sys.stderr)),
                     indent=1))

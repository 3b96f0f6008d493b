"""OCR of scanned PDF pages and image files, on real scans the tests make themselves.

Pages are typeset, then "scanned" as a flatbed scanner gives them (grey, tilted 0.7°, JPEG) by
desktop.dev.scans, and saved as image-only PDFs or image files; Tesseract reads them for real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from desktop.core.config import Settings
from desktop.core.errors import GroundedError
from desktop.core.indexing.extract import ExtractError, extract, kind_for, pdf
from desktop.core.indexing.extract.ocr import OcrEngine, OcrOptions, OcrRun, tessdata_dir
from desktop.core.indexing.extract.sandbox import ExtractionCancelled, ExtractionSandbox
from desktop.core.indexing.indexer import Indexer
from desktop.core.storage.store import Store
from desktop.dev.scans import save_scan, scanner_look, typeset

PUMPS = ("Quarterly travel report. In March the team spent 1,240 euros on train tickets to "
         "Lyon for the supplier audit. The spare pumps are kept in building C of the "
         "Villeurbanne warehouse.")
GATE = "The access code for the north gate is 7731-HERON. Deliveries arrive on Tuesdays."
DENSE = ("The quick brown fox jumps over the lazy dog near the riverbank while the "
         "heron waits. " * 8 + "\n") * 4  # one full page


def words(text: str) -> set[str]:
    return {w.strip(".,:;").lower() for w in text.split()}


def recall(reference: str, text: str) -> float:
    ref = words(reference)
    return len(ref & words(text)) / len(ref)


def run_index(indexer: Indexer, paths: list[Path], cancel: threading.Event | None = None):
    gen = indexer.run(paths, "scans", cancel)
    seen = []
    try:
        while True:
            seen.append(next(gen))
    except StopIteration as stop:
        return stop.value, seen


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scans")
    save_scan(typeset(PUMPS) + typeset(GATE), root / "two-pages.pdf", dpi=150)
    save_scan(typeset(GATE, dpi=300), root / "gate-300dpi.pdf", dpi=300)
    return root


def test_scanned_pdf_pages_are_read_with_their_page_numbers(scans: Path) -> None:
    progress: list[tuple[int, int]] = []
    run = OcrRun(on_progress=lambda done, total: progress.append((done, total)))
    result = pdf.extract(scans / "two-pages.pdf", run)
    assert result.status == "ok" and result.image_pages == ()
    assert [s.page for s in result.sections] == [1, 2]
    assert recall(PUMPS, result.sections[0].text) >= 0.95
    assert "7731-HERON" in result.sections[1].text
    assert all(s.ocr is not None and s.ocr > 0.8 for s in result.sections)
    assert result.ocr_pages == 2 and result.ocr_confidence > 0.8
    assert progress == [(0, 2), (1, 2), (2, 2)]


def test_a_300_dpi_scan_reads_too(scans: Path) -> None:
    result = extract(scans / "gate-300dpi.pdf", ocr=OcrRun())
    assert "7731-HERON" in result.text


def test_without_ocr_a_scan_is_image_only(scans: Path) -> None:
    result = extract(scans / "two-pages.pdf")
    assert result.status == "image_only" and result.image_pages == (1, 2)
    assert result.ocr_pages == 0


def test_pages_with_a_text_layer_are_not_read_by_ocr(scans: Path, eval_dir: Path,
                                                     tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_page(PdfReader(eval_dir / "pdfs" / "pysample_001_minimal-document.pdf").pages[0])
    writer.add_page(PdfReader(scans / "two-pages.pdf").pages[1])
    mixed = tmp_path / "mixed.pdf"
    writer.write(mixed)
    progress: list[tuple[int, int]] = []
    result = extract(mixed, ocr=OcrRun(on_progress=lambda d, t: progress.append((d, t))))
    assert result.ocr_pages == 1 and progress[-1] == (1, 1)
    first, second = result.sections
    assert first.page == 1 and first.ocr is None
    assert second.page == 2 and second.ocr is not None and "7731-HERON" in second.text


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".gif"])
def test_image_files_are_read(tmp_path: Path, suffix: str) -> None:
    path = save_scan(typeset(GATE), tmp_path / f"note{suffix}")
    assert kind_for(path) == "image"
    result = extract(path, ocr=OcrRun())
    assert "7731-HERON" in result.text
    assert result.sections[0].page is None and result.sections[0].ocr > 0.8


def test_a_multi_page_tiff_gives_one_page_per_frame(tmp_path: Path) -> None:
    frames = [scanner_look(typeset(text)[0]) for text in (PUMPS, GATE)]
    path = tmp_path / "fax.tiff"
    frames[0].save(path, save_all=True, append_images=frames[1:], dpi=(150, 150))
    result = extract(path, ocr=OcrRun())
    assert [s.page for s in result.sections] == [1, 2]
    assert "7731-HERON" in result.sections[1].text


def test_a_photo_without_text_is_not_text(tmp_path: Path) -> None:
    photo = Image.radial_gradient("L").resize((600, 400))
    path = tmp_path / "sky.jpg"
    photo.save(path)
    result = extract(path, ocr=OcrRun())
    assert result.status == "image_only" and result.sections == []


def test_damaged_and_bomb_images_are_clear_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(ExtractError, match="not a readable image"):
        extract(broken, ocr=OcrRun())
    bomb = tmp_path / "bomb.png"
    Image.new("1", (12_000, 12_000)).save(bomb)  # 144 Mpx: over Pillow's bomb limit
    with pytest.raises(ExtractError, match="too large"):
        extract(bomb, ocr=OcrRun())


def test_a_page_past_its_time_limit_is_skipped_and_the_others_count(tmp_path: Path) -> None:
    assert len(typeset(DENSE)) == 1
    path = save_scan(typeset("Short line here.") + typeset(DENSE), tmp_path / "slow.pdf")
    result = extract(path, ocr=OcrRun(OcrOptions(page_timeout_s=0.3)))
    assert "Short line here" in result.text
    assert result.image_pages == (2,)
    assert any("page 2: OCR skipped" in w for w in result.warnings)


def test_a_sideways_scan_is_turned_upright(tmp_path: Path) -> None:
    page = typeset(PUMPS)[0].rotate(90, expand=True, fillcolor=255)
    result = extract(save_scan([page], tmp_path / "sideways.pdf"), ocr=OcrRun())
    assert recall(PUMPS, result.text) >= 0.9


def test_a_missing_language_says_which_package_to_install(store, embedder) -> None:
    assert tessdata_dir(("eng",)).is_dir()
    with pytest.raises(ExtractError, match=r"not installed: xyz \(pip install tessdata-fast-xyz\)"):
        tessdata_dir(("eng", "xyz"))
    indexer = Indexer(store, embedder, Settings(ocr_languages=["xyz"]))
    with pytest.raises(GroundedError, match="tessdata-fast-xyz"):
        indexer.ocr_options()


def test_the_sandbox_streams_pages_and_cancel_stops_within_one_page(tmp_path: Path) -> None:
    path = save_scan(typeset(DENSE) * 4, tmp_path / "long.pdf")
    cancel = threading.Event()
    seen: list[tuple[int, int]] = []
    stopped_at: list[float] = []

    def on_progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 1:
            cancel.set()
            stopped_at.append(time.perf_counter())

    with ExtractionSandbox(timeout_s=30) as box:
        with pytest.raises(ExtractionCancelled):
            box.extract(path, "pdf", OcrOptions(), on_progress, cancel)
        assert time.perf_counter() - stopped_at[0] < 1.0
        assert seen == [(0, 4), (1, 4)]
        # The child was stopped; the next file gets a fresh one and reads.
        result = box.extract(save_scan(typeset(GATE), tmp_path / "gate.pdf"), "pdf",
                             OcrOptions())
        assert "7731-HERON" in result.text and box.starts == 2


def test_indexing_reads_scans_counts_ocr_pages_and_cites_them(store, embedder, scans) -> None:
    report, seen = run_index(Indexer(store, embedder), [scans])
    assert report.ocr_pages == 3 and not report.image_only and not report.failed
    assert max(p.ocr_pages_done for p in seen) == 3
    rows = store.con.execute(
        "SELECT c.page, c.page_end, c.ocr FROM chunks c JOIN documents d ON d.id = c.document_id "
        "WHERE d.path LIKE '%two-pages.pdf' ORDER BY c.page").fetchall()
    # Two short OCR'd pages make one chunk that knows both pages and its confidence.
    assert [(page, end) for page, end, _ in rows] == [(1, 2)] and rows[0][2] > 0.8


def test_with_ocr_off_indexing_says_the_scan_needs_it(store, embedder, scans) -> None:
    report, _ = run_index(Indexer(store, embedder, Settings(ocr=False)), [scans])
    assert report.ocr_pages == 0 and len(report.image_only) == 2
    reasons = [r for (r,) in store.con.execute("SELECT reason FROM documents")]
    assert all(r.startswith("no text layer (scanned?): needs OCR") for r in reasons)


def test_a_kill_during_ocr_leaves_a_consistent_index_and_the_rerun_finishes(tmp_path: Path,
                                                                           eval_dir: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    save_scan(typeset(DENSE) * 3 + typeset(GATE), docs / "long-scan.pdf")
    for f in sorted((eval_dir / "squad_v1.1_dev" / "corpus_small").iterdir())[:20]:
        (docs / f.name).write_bytes(f.read_bytes())
    home = tmp_path / "home"
    env = {**os.environ, "GROUNDED_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "desktop", "index", str(docs)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # type: ignore[union-attr]
        if "OCR page" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    with Store.open(home / "data" / "index.sqlite") as s:
        assert s.integrity_check() == "ok"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with Store.open(home / "data" / "index.sqlite") as s:
        counts = s.counts()
        assert counts["chunks"] == counts["vectors"] == counts["keywords"]
        statuses = dict(s.con.execute("SELECT path, status FROM documents"))
        assert len(statuses) == 21 and set(statuses.values()) == {"indexed"}
        assert s.con.execute("SELECT count(*) FROM chunks WHERE text LIKE '%7731-HERON%'"
                             ).fetchone()[0] == 1


def test_the_engine_is_shared_per_language_set() -> None:
    assert OcrEngine.shared(("eng",)) is OcrEngine.shared(("eng",))


@pytest.mark.parametrize("name", ["docling_ocr_test.pdf", "docling_ocr_test_rotated_90.pdf"])
def test_the_scanned_pdfs_of_the_eval_set_are_read(eval_dir: Path, name: str) -> None:
    with ExtractionSandbox() as box:
        result = box.extract(eval_dir / "pdfs" / name, "pdf", OcrOptions())
    assert result.status == "ok" and result.ocr_pages == 1
    assert "Docling bundles PDF document conversion to JSON and Markdown" in " ".join(
        result.text.split())


def test_turning_ocr_on_reads_the_scans_left_unread(store, embedder, scans) -> None:
    run_index(Indexer(store, embedder, Settings(ocr=False)), [scans])
    again, _ = run_index(Indexer(store, embedder, Settings(ocr=False)), [scans])
    assert again.unchanged == 2 and again.ocr_pages == 0  # nothing to gain: not read again
    report, _ = run_index(Indexer(store, embedder), [scans])
    assert report.updated == 2 and report.ocr_pages == 3 and not report.image_only


def test_files_an_older_version_skipped_are_read_now(store, embedder, tmp_path: Path) -> None:
    from desktop.core.storage.store import DocumentUpdate

    folder = tmp_path / "photos"
    note = save_scan(typeset(GATE), folder / "note.png")
    root = store.add_root(store.collection_id("scans", create=True), str(folder))
    stat = note.stat()
    store.write_documents([DocumentUpdate(root, str(note), stat.st_size, stat.st_mtime_ns,
                                          None, None, "skipped", "not a supported format")])
    report, _ = run_index(Indexer(store, embedder), [folder])
    assert report.updated == 1 and report.ocr_pages == 1
    assert _statuses(store) == {"note.png": "indexed"}
    # A file skipped for another reason (too large) is not read again while unchanged.
    stat = note.stat()
    store.write_documents([DocumentUpdate(root, str(note), stat.st_size, stat.st_mtime_ns,
                                          None, None, "skipped", "larger than the limit")])
    again, _ = run_index(Indexer(store, embedder), [folder])
    assert again.unchanged == 1 and again.updated == 0


def _statuses(store) -> dict[str, str]:
    return {Path(p).name: s for p, s in store.con.execute("SELECT path, status FROM documents")}


def test_a_file_read_as_another_format_before_is_read_again(store, embedder, tmp_path) -> None:
    from desktop.core.storage.store import ChunkRecord, DocumentUpdate

    folder = tmp_path / "books"
    sheet = folder / "budget.csv"
    folder.mkdir()
    sheet.write_text("Month,Category,Amount\nMarch,Travel,1200\n", encoding="utf-8")
    root = store.add_root(store.collection_id("scans", create=True), str(folder))
    stat = sheet.stat()
    text = sheet.read_text(encoding="utf-8")
    store.bind_embedder(embedder.model_id, embedder.dim)
    store.write_documents([DocumentUpdate(
        root, str(sheet), stat.st_size, stat.st_mtime_ns, "old", "text", "indexed",
        chunks=[ChunkRecord(text, None, None, 0, len(text), 9)],
        vectors=embedder.embed([text]))])
    report, _ = run_index(Indexer(store, embedder), [folder])
    assert report.updated == 1
    kind, chunk = store.con.execute(
        "SELECT d.kind, c.text FROM documents d JOIN chunks c ON c.document_id = d.id").fetchone()
    assert kind == "sheet" and "Month: March | Category: Travel | Amount: 1200" in chunk

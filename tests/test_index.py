"""The indexing pipeline end to end: real files, real extractors, real embedder, real SQLite."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from desktop.core.config import Settings
from desktop.core.indexing import indexer as index_mod
from desktop.core.indexing.indexer import Indexer, IndexReport
from desktop.core.jobs import run_job


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.model_id, self.dim, self.max_tokens = inner.model_id, inner.dim, inner.max_tokens
        self.tokenizer = inner.tokenizer
        self.embedded = 0

    def embed(self, texts):
        self.embedded += len(texts)
        return self.inner.embed(texts)


def run(indexer: Indexer, *args, **kw) -> IndexReport:
    return run_job(indexer.run(*args, **kw))



@pytest.fixture
def docs(tmp_path, eval_dir) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "notes.md").write_text(
        "# Lease\n\nThe tenant must give ninety days notice.\n\n## Rent\n\nRent is due monthly.\n"
    )
    (root / "plain.txt").write_text("Zebras graze on the savanna at dawn.\n")
    (root / "page.html").write_text(
        "<html><head><script>var hidden='scriptword';</script><style>p{}</style></head>"
        "<body><h1>Title</h1><p>Visible aardvark paragraph.</p></body></html>"
    )
    (root / "sub" / "code.py").write_text("def quokka():\n    return 'marsupial'\n")
    (root / "sub" / "latin1.txt").write_bytes("Café crème brûlée in Zürich.".encode("latin-1"))
    (root / "binary.txt").write_bytes(b"\x00\x01\x02\xff" * 500)
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.txt").write_text("never indexed")
    pdfs = eval_dir / "pdfs"
    for name in ("pysample_001_minimal-document.pdf", "pdfminer_enc_rc4-40.pdf",
                 "docling_ocr_test.pdf", "synthetic_not-a-pdf.pdf"):
        shutil.copy(pdfs / name, root / name)
    return root


def _statuses(store) -> dict[str, tuple[str, str | None]]:
    rows = store.con.execute("SELECT path, status, reason FROM documents")
    return {Path(p).name: (s, r) for p, s, r in rows}


def _fts(store, word: str) -> int:
    return store.con.execute(
        "SELECT count(*) FROM chunk_fts WHERE chunk_fts MATCH ?", (f'"{word}"',)
    ).fetchone()[0]


def _consistent(store) -> None:
    counts = store.counts()
    assert counts["chunks"] == counts["vectors"] == counts["keywords"], counts
    assert store.integrity_check() == "ok"
    total = store.con.execute("SELECT coalesce(sum(n_chunks), 0) FROM documents").fetchone()[0]
    assert total == counts["chunks"]


def test_every_file_gets_a_status_a_person_can_act_on(store, embedder, docs):
    report = run(Indexer(store, embedder), [docs], "work")
    st = _statuses(store)
    assert st["notes.md"][0] == st["plain.txt"][0] == st["page.html"][0] == "indexed"
    assert st["code.py"][0] == st["latin1.txt"][0] == "indexed"
    assert st["pysample_001_minimal-document.pdf"][0] == "indexed"
    assert st["binary.txt"][0] == "skipped" and "binary" in st["binary.txt"][1]
    assert st["image.png"] == ("failed", "not a readable image (unknown or damaged format)")
    assert st["pdfminer_enc_rc4-40.pdf"][0] == "failed"
    assert "password" in st["pdfminer_enc_rc4-40.pdf"][1]
    assert st["synthetic_not-a-pdf.pdf"][0] == "failed"
    assert st["docling_ocr_test.pdf"] == ("indexed", None)  # its one page read by OCR
    pages, confidence = store.con.execute(
        "SELECT ocr_pages, ocr_confidence FROM documents WHERE path LIKE '%docling_ocr_test.pdf'"
    ).fetchone()
    assert pages == 1 and confidence > 0.8
    assert _fts(store, "docling") >= 1
    assert "secret.txt" not in st
    assert report.added == len(st)
    assert {Path(p).name for p, _ in report.failed} == {
        "pdfminer_enc_rc4-40.pdf", "synthetic_not-a-pdf.pdf", "image.png"}
    # What was indexed is findable, in the right encoding, and scripts are not text.
    assert _fts(store, "ninety") == 1 and _fts(store, "aardvark") == 1
    assert _fts(store, "scriptword") == 0
    assert store.con.execute("SELECT count(*) FROM chunks WHERE text LIKE '%Zürich%'").fetchone()[0]
    heading = store.con.execute(
        "SELECT heading FROM chunks WHERE text LIKE '%Rent is due%'").fetchone()[0]
    assert "Rent" in heading
    _consistent(store)


def test_an_unchanged_tree_costs_only_stat_calls(store, embedder, docs, monkeypatch):
    run(Indexer(store, embedder), [docs])
    reads = []
    monkeypatch.setattr(index_mod, "file_hash", lambda p: reads.append(p) or "x")
    counting = CountingEmbedder(embedder)
    report = run(Indexer(store, counting), [docs])
    assert reads == [] and counting.embedded == 0
    assert report.unchanged == len(_statuses(store)) and report.added == report.updated == 0


def test_changed_deleted_and_moved_files(store, embedder, docs):
    run(Indexer(store, embedder), [docs])
    (docs / "plain.txt").write_text("Okapis live in the rainforest.\n")
    (docs / "page.html").unlink()
    before = store.con.execute(
        "SELECT c.id FROM chunks c JOIN documents d ON d.id=c.document_id "
        "WHERE d.path LIKE '%notes.md'").fetchall()
    (docs / "notes.md").rename(docs / "sub" / "renamed.md")
    counting = CountingEmbedder(embedder)
    report = run(Indexer(store, counting), [docs])
    assert (report.updated, report.removed, report.moved) == (1, 1, 1)
    assert counting.embedded == 1  # only the changed file's one chunk
    assert _fts(store, "okapis") == 1 and _fts(store, "zebras") == 0
    assert _fts(store, "aardvark") == 0
    after = store.con.execute(
        "SELECT c.id FROM chunks c JOIN documents d ON d.id=c.document_id "
        "WHERE d.path LIKE '%renamed.md'").fetchall()
    assert after == before  # same chunks and vectors, new path
    _consistent(store)


def test_a_file_deleted_between_scan_and_read_is_dropped(store, embedder, docs):
    gen = Indexer(store, embedder).run([docs])
    for p in gen:
        if p.phase == "indexing":  # the plan is made; nothing read yet
            (docs / "plain.txt").unlink()
            break
    report = run_job(gen)
    assert any(v.endswith("plain.txt") for v in report.vanished)
    assert "plain.txt" not in _statuses(store)
    _consistent(store)


def test_symlink_loops_and_links_are_walked_once(store, embedder, tmp_path):
    root = tmp_path / "loop"
    (root / "a").mkdir(parents=True)
    (root / "a" / "doc.txt").write_text("Capybaras are large rodents.")
    os.symlink(root, root / "a" / "back")  # a loop
    os.symlink(root / "a", root / "alias")  # a second path to the same folder
    report = run(Indexer(store, embedder), [root])
    assert report.added == 1 and _fts(store, "capybaras") == 1


def test_files_over_the_size_limit_are_skipped_with_the_reason(store, embedder, tmp_path):
    root = tmp_path / "big"
    root.mkdir()
    (root / "large.txt").write_text("lorem ipsum " * 200_000)  # 2.4 MB
    (root / "small.txt").write_text("small")
    run(Indexer(store, embedder, Settings(max_file_mb=1)), [root])
    st = _statuses(store)
    assert st["large.txt"][0] == "skipped" and "1 MB limit" in st["large.txt"][1]
    assert st["small.txt"][0] == "indexed"


def test_cancel_stops_and_the_next_run_completes_the_same_index(store, embedder, tmp_path,
                                                               eval_dir, monkeypatch):
    monkeypatch.setattr(index_mod, "FLUSH_CHUNKS", 64)  # several writes from 200 small files
    corpus = eval_dir / "squad_v1.1_dev" / "corpus_small"
    files = sorted(corpus.iterdir())[:200]
    root = tmp_path / "squad"
    root.mkdir()
    for f in files:
        shutil.copy(f, root / f.name)
    cancel = threading.Event()
    gen = Indexer(store, embedder).run([root], cancel=cancel)
    for p in gen:
        if p.chunks_done > 0:
            cancel.set()
    first = store.counts()["documents"]
    assert 0 < first < len(files)
    report = run(Indexer(store, embedder), [root])
    assert report.added == len(files) - first
    assert store.counts()["documents"] == len(files)
    _consistent(store)


def test_a_pdf_that_hangs_or_balloons_is_cut_off_and_the_run_goes_on(store, embedder, tmp_path,
                                                                    eval_dir):
    root = tmp_path / "slow"
    root.mkdir()
    shutil.copy(eval_dir / "pdfs" / "pysample_009_GeoTopo-komprimiert.pdf", root / "slow.pdf")
    (root / "ok.txt").write_text("Wombats dig burrows.")
    run(Indexer(store, embedder, Settings(extract_timeout_s=0.3)), [root])
    st = _statuses(store)
    assert st["slow.pdf"][0] == "failed" and "timed out" in st["slow.pdf"][1]
    assert st["ok.txt"][0] == "indexed"

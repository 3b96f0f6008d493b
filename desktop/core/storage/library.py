"""Read-only views of the index for people: what is indexed, what failed and why."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from desktop.core.storage.store import Store

#: Statuses that carry a reason a person may act on.
PROBLEM_STATUSES = ("failed", "skipped", "image_only", "empty")
#: A file whose OCR'd text has a lower mean word confidence than this is listed as weak: on
#: clean scans Tesseract's confidence is 0.85–0.95, on dense tables and poor scans it falls
#: to 0.5–0.6 with many words misread (README, "Reading scans").
WEAK_OCR_CONFIDENCE = 0.7


@dataclass(frozen=True)
class FileProblem:
    path: str
    status: str
    reason: str
    pages: tuple[int, ...] = ()


@dataclass(frozen=True)
class WeakOcr:
    """A file whose text OCR read with a low mean confidence: worth a look."""

    path: str
    pages: int
    confidence: float


@dataclass
class RootSummary:
    path: str
    documents: int
    chunks: int
    by_status: dict[str, int]
    scanned_at: float | None


@dataclass
class CollectionSummary:
    name: str
    documents: int = 0
    chunks: int = 0
    roots: list[RootSummary] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    ocr_documents: int = 0  # documents with text read by OCR
    weak_ocr: list[WeakOcr] = field(default_factory=list)


@dataclass
class LibrarySummary:
    database: str
    database_bytes: int
    embedder: str | None
    embedder_dim: int | None
    documents: int
    chunks: int
    collections: list[CollectionSummary]
    #: The vector index's cells (1: not yet trained) and what searching it holds in memory
    #: (the cells' centroids: the vectors themselves stay on disk).
    vector_cells: int = 1
    search_memory_bytes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _db_bytes(path: Path | None) -> int:
    if path is None:
        return 0
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
               if p.exists())


def _add_ocr(con: object, coll_id: int, coll: CollectionSummary) -> None:
    """How many documents OCR read, and those it read with a weak confidence."""
    rows = con.execute(
        "SELECT d.path, d.ocr_pages, d.ocr_confidence FROM documents d JOIN roots r "
        "ON r.id = d.root_id WHERE r.collection_id=? AND d.ocr_confidence IS NOT NULL "
        "ORDER BY d.ocr_confidence", (coll_id,)).fetchall()
    coll.ocr_documents = len(rows)
    coll.weak_ocr = [WeakOcr(path, pages, confidence) for path, pages, confidence in rows
                     if confidence < WEAK_OCR_CONFIDENCE]


def summarize(store: Store) -> LibrarySummary:
    """Collections, folders, document and chunk counts, problem files, embedder, database."""
    con = store.con
    emb = store.embedder()
    collections = []
    for coll_id, name in store.collections():
        coll = CollectionSummary(name)
        for root_id, _, path in store.roots(coll_id):
            by_status = dict(con.execute(
                "SELECT status, count(*) FROM documents WHERE root_id=? GROUP BY status",
                (root_id,),
            ))
            docs, chunks = con.execute(
                "SELECT count(*), coalesce(sum(n_chunks), 0) FROM documents WHERE root_id=?",
                (root_id,),
            ).fetchone()
            scanned = con.execute("SELECT scanned_at FROM roots WHERE id=?", (root_id,)).fetchone()
            coll.roots.append(RootSummary(path, docs, chunks, by_status, scanned[0]))
            coll.documents += docs
            coll.chunks += chunks
        marks = ",".join("?" * len(PROBLEM_STATUSES))
        for path, status, reason, pages in con.execute(
            f"SELECT d.path, d.status, d.reason, d.image_pages FROM documents d "
            f"JOIN roots r ON r.id = d.root_id WHERE r.collection_id=? AND d.status IN ({marks}) "
            f"ORDER BY d.status, d.path",
            (coll_id, *PROBLEM_STATUSES),
        ):
            coll.problems.append(FileProblem(path, status, reason or status,
                                             tuple(json.loads(pages)) if pages else ()))
        _add_ocr(con, coll_id, coll)
        collections.append(coll)
    counts = store.counts()
    return LibrarySummary(
        database=str(store.path),
        database_bytes=_db_bytes(store.path),
        embedder=emb[0] if emb else None,
        embedder_dim=emb[1] if emb else None,
        documents=counts["documents"],
        chunks=counts["chunks"],
        collections=collections,
        vector_cells=store.vectors.cells() if emb else 1,
        search_memory_bytes=store.vectors.memory_bytes() if emb else 0,
    )

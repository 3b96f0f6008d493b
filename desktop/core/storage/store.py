"""The SQLite store: one file holding documents, chunks, vectors (sqlite-vec) and keywords (FTS5).

One connection layer for the whole core (apsw: this Python's sqlite3 cannot load extensions).
WAL mode; every mutation that touches chunks runs in one transaction together with the
document row that describes it, so a kill at any moment leaves either the old or the new state
of a document, never a half of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import apsw
import numpy as np
import sqlite_vec

from desktop.core.errors import EmbedderMismatch, GroundedError
from desktop.core.storage import keywords, migrations, vectors
from desktop.core.storage.vectors import VectorTable


@dataclass(frozen=True)
class DocumentRow:
    """What the store knows about one file."""

    id: int
    root_id: int
    path: str
    size: int
    mtime_ns: int
    hash: str | None
    kind: str | None
    status: str
    reason: str | None
    n_chunks: int


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk ready to be written: text, where it came from, and its embedding."""

    text: str
    page: int | None
    heading: str | None
    start: int
    end: int
    n_tokens: int
    page_end: int | None = None
    ocr: float | None = None  # the OCR confidence when the text was read from an image


@dataclass(frozen=True)
class DocumentUpdate:
    """The new state of one file, written atomically with its chunks and vectors."""

    root_id: int
    path: str
    size: int
    mtime_ns: int
    hash: str | None
    kind: str | None
    status: str
    reason: str | None = None
    image_pages: tuple[int, ...] = ()
    chunks: Sequence[ChunkRecord] = ()
    vectors: np.ndarray | None = None
    ocr_pages: int = 0
    ocr_confidence: float | None = None


def connect(path: Path | str) -> apsw.Connection:
    """Open ``path`` with sqlite-vec loaded, WAL on, and a busy timeout for concurrent readers."""
    con = apsw.Connection(str(path))
    con.enable_load_extension(True)
    con.load_extension(sqlite_vec.loadable_path())
    con.enable_load_extension(False)
    con.set_busy_timeout(10_000)
    if str(path) != ":memory:":
        _set_wal(con)
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA foreign_keys=ON")
    return con


def _set_wal(con: apsw.Connection, wait_s: float = 10.0) -> None:
    """Switch to WAL. On a new database the switch needs a lock SQLite does not wait for (no
    busy handler), so connections opened at the same moment retry here for up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            return
        except apsw.BusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Store:
    """The index database. Create with :meth:`open`; close with :meth:`close` or ``with``."""

    def __init__(self, con: apsw.Connection, path: Path | None) -> None:
        self.con = con
        self.path = path
        self.vectors = VectorTable(con)

    @classmethod
    def open(cls, path: Path | str) -> Store:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date."""
        path = Path(path) if str(path) != ":memory:" else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = connect(path if path is not None else ":memory:")
            migrations.apply(con)
        except apsw.Error as exc:
            raise GroundedError(f"cannot open the index database {path}: {exc}") from exc
        return cls(con, path)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta and the embedder ------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def embedder(self) -> tuple[str, int] | None:
        """The (model id, dimension) the vectors were made with, or None for a new index."""
        model, dim = self.meta("embedder_id"), self.meta("embedder_dim")
        return (model, int(dim)) if model and dim else None

    def bind_embedder(self, model_id: str, dim: int, reembed: bool = False) -> bool:
        """Record the embedder; create the vector table for its dimension.

        Raises EmbedderMismatch when the index was built with another embedder, unless
        ``reembed`` is set: then every chunk and vector is dropped and every document is
        marked for re-indexing. Returns True when that happened.
        """
        current = self.embedder()
        if current == (model_id, dim):
            return False
        if current is not None and not reembed:
            raise EmbedderMismatch(
                f"this index was built with the embedder {current[0]} ({current[1]} dims); "
                f"the settings name {model_id} ({dim} dims). Re-embedding every document is "
                "needed: run `grounded index --reembed` to do it."
            )
        with self.con:
            vectors.drop(self.con)
            self.con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('embedder_id', ?), ('embedder_dim', ?)",
                (model_id, str(dim)),
            )
            vectors.create(self.con, dim)
            if current is not None:
                self.con.execute("DELETE FROM chunk_fts")
                self.con.execute("DELETE FROM chunks")
                self.con.execute("UPDATE documents SET hash=NULL, n_chunks=0, size=-1")
        return current is not None

    # -- collections and roots ------------------------------------------------------------

    def collection_id(self, name: str, create: bool = False) -> int | None:
        row = self.con.execute("SELECT id FROM collections WHERE name=?", (name,)).fetchone()
        if row:
            return row[0]
        if not create:
            return None
        with self.con:
            self.con.execute(
                "INSERT INTO collections(name, created_at) VALUES (?, ?)", (name, time.time())
            )
        return self.con.last_insert_rowid()

    def collections(self) -> list[tuple[int, str]]:
        return list(self.con.execute("SELECT id, name FROM collections ORDER BY name"))

    def roots(self, collection_id: int | None = None) -> list[tuple[int, int, str]]:
        """(root id, collection id, path) for one collection or all."""
        if collection_id is None:
            return list(self.con.execute("SELECT id, collection_id, path FROM roots ORDER BY path"))
        return list(
            self.con.execute(
                "SELECT id, collection_id, path FROM roots WHERE collection_id=? ORDER BY path",
                (collection_id,),
            )
        )

    def add_root(self, collection_id: int, path: str) -> int:
        """Return the root that covers ``path`` in the collection, adding it if needed.

        A path inside an existing root is covered by that root. A new root that contains
        existing roots absorbs them: their documents move to it, nothing is re-embedded.
        """
        for root_id, _, root_path in self.roots(collection_id):
            if path == root_path or path.startswith(root_path.rstrip("/") + "/"):
                return root_id
        with self.con:
            self.con.execute(
                "INSERT INTO roots(collection_id, path, added_at) VALUES (?, ?, ?)",
                (collection_id, path, time.time()),
            )
            new_id = self.con.last_insert_rowid()
            prefix = path.rstrip("/") + "/"
            for root_id, _, root_path in self.roots(collection_id):
                if root_id != new_id and root_path.startswith(prefix):
                    self.con.execute(
                        "UPDATE documents SET root_id=? WHERE root_id=?", (new_id, root_id)
                    )
                    self.con.execute("DELETE FROM roots WHERE id=?", (root_id,))
        return new_id

    def mark_scanned(self, root_id: int) -> None:
        with self.con:
            self.con.execute("UPDATE roots SET scanned_at=? WHERE id=?", (time.time(), root_id))

    # -- documents ------------------------------------------------------------------------

    def documents(self, root_id: int, under: str | None = None) -> dict[str, DocumentRow]:
        """Documents of a root (optionally only those under a path), by path."""
        sql = (
            "SELECT id, root_id, path, size, mtime_ns, hash, kind, status, reason, n_chunks "
            "FROM documents WHERE root_id=?"
        )
        args: tuple = (root_id,)
        if under is not None:
            sql += " AND (path=? OR substr(path, 1, ?)=?)"
            prefix = under.rstrip("/") + "/"
            args = (root_id, under, len(prefix), prefix)
        return {row[2]: DocumentRow(*row) for row in self.con.execute(sql, args)}

    def write_documents(self, updates: Iterable[DocumentUpdate]) -> list[int]:
        """Write a batch of documents with their chunks, vectors and keywords in one transaction.

        An existing document at the same (root, path) is replaced whole: its old chunks,
        vectors and keywords are deleted in the same transaction. Returns the document ids.
        """
        ids = []
        with self.con:
            for up in updates:
                ids.append(self._write_document(up))
        return ids

    def _write_document(self, up: DocumentUpdate) -> int:
        row = self.con.execute(
            "SELECT id FROM documents WHERE root_id=? AND path=?", (up.root_id, up.path)
        ).fetchone()
        values = (
            up.size,
            up.mtime_ns,
            up.hash,
            up.kind,
            up.status,
            up.reason,
            json.dumps(list(up.image_pages)) if up.image_pages else None,
            len(up.chunks),
            time.time(),
            up.ocr_pages,
            up.ocr_confidence,
        )
        if row:
            doc_id = row[0]
            self._delete_chunks(doc_id)
            self.con.execute(
                "UPDATE documents SET size=?, mtime_ns=?, hash=?, kind=?, status=?, reason=?, "
                "image_pages=?, n_chunks=?, indexed_at=?, ocr_pages=?, ocr_confidence=? "
                "WHERE id=?",
                (*values, doc_id),
            )
        else:
            self.con.execute(
                "INSERT INTO documents(root_id, path, size, mtime_ns, hash, kind, status, reason, "
                "image_pages, n_chunks, indexed_at, ocr_pages, ocr_confidence) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (up.root_id, up.path, *values),
            )
            doc_id = self.con.last_insert_rowid()
        if up.chunks:
            collection = self.con.execute(
                "SELECT collection_id FROM roots WHERE id=?", (up.root_id,)).fetchone()[0]
            self._insert_chunks(doc_id, collection, up.chunks, up.vectors)
        return doc_id

    def _insert_chunks(self, doc_id: int, collection: int, chunks: Sequence[ChunkRecord],
                       vectors: np.ndarray | None) -> None:
        if vectors is None or len(vectors) != len(chunks):
            raise ValueError("every chunk needs exactly one vector")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        cur = self.con.cursor()
        ids = []
        for ord_, chunk in enumerate(chunks):
            cur.execute(
                "INSERT INTO chunks(document_id, ord, text, page, page_end, heading, start, end, "
                "n_tokens, ocr) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    doc_id,
                    ord_,
                    chunk.text,
                    chunk.page,
                    chunk.page_end,
                    chunk.heading,
                    chunk.start,
                    chunk.end,
                    chunk.n_tokens,
                    chunk.ocr,
                ),
            )
            chunk_id = self.con.last_insert_rowid()
            ids.append(chunk_id)
            fts = keywords.index_text(
                f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text
            )
            cur.execute("INSERT INTO chunk_fts(rowid, text) VALUES (?, ?)", (chunk_id, fts))
        self.vectors.add(ids, collection, vectors)

    def _delete_chunks(self, doc_id: int) -> None:
        ids = [
            r[0] for r in self.con.execute("SELECT id FROM chunks WHERE document_id=?", (doc_id,))
        ]
        if not ids:
            return
        cur = self.con.cursor()
        self.vectors.delete(ids)
        cur.executemany("DELETE FROM chunk_fts WHERE rowid=?", ((i,) for i in ids))
        self.con.execute("DELETE FROM chunks WHERE document_id=?", (doc_id,))

    def touch_document(
        self, doc_id: int, size: int, mtime_ns: int, path: str | None = None
    ) -> None:
        """Record a new stat (and path, for a move) for a document whose content is unchanged."""
        with self.con:
            if path is None:
                self.con.execute(
                    "UPDATE documents SET size=?, mtime_ns=? WHERE id=?", (size, mtime_ns, doc_id)
                )
            else:
                self.con.execute(
                    "UPDATE documents SET size=?, mtime_ns=?, path=? WHERE id=?",
                    (size, mtime_ns, path, doc_id),
                )

    def delete_documents(self, doc_ids: Iterable[int]) -> int:
        """Delete documents with their chunks, vectors and keywords; return how many."""
        n = 0
        with self.con:
            for doc_id in doc_ids:
                self._delete_chunks(doc_id)
                self.con.execute("DELETE FROM documents WHERE id=?", (doc_id,))
                n += 1
        return n

    def forget_root(self, root_id: int) -> int:
        """Remove a root and everything indexed under it; return the documents removed."""
        docs = [
            r[0] for r in self.con.execute("SELECT id FROM documents WHERE root_id=?", (root_id,))
        ]
        with self.con:
            n = self.delete_documents(docs)
            self.con.execute("DELETE FROM roots WHERE id=?", (root_id,))
        return n

    def forget_collection(self, collection_id: int) -> int:
        """Remove a collection, its roots and documents; return the documents removed."""
        with self.con:
            n = sum(self.forget_root(root_id) for root_id, _, _ in self.roots(collection_id))
            self.con.execute("DELETE FROM collections WHERE id=?", (collection_id,))
        return n

    # -- reading --------------------------------------------------------------------------

    def chunk_rows(self) -> Iterator[tuple[int, str, int | None, int | None, str | None, str]]:
        """Every chunk as (id, document path, page, page_end, heading, text), in file order."""
        return self.con.execute(
            "SELECT c.id, d.path, c.page, c.page_end, c.heading, c.text FROM chunks c "
            "JOIN documents d ON d.id = c.document_id ORDER BY d.path, c.ord")

    def has_chunks(self) -> bool:
        """Whether any chunk is indexed (one row read, whatever the index's size)."""
        return self.con.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is not None

    def counts(self) -> dict[str, int]:
        """Row counts of the chunk-bearing tables (a consistent index has them all equal)."""
        one = lambda sql: self.con.execute(sql).fetchone()[0]  # noqa: E731
        has_vec = self.embedder() is not None
        return {
            "documents": one("SELECT count(*) FROM documents"),
            "chunks": one("SELECT count(*) FROM chunks"),
            "vectors": one("SELECT count(*) FROM vector_codes_rowids") if has_vec else 0,
            "keywords": one("SELECT count(*) FROM chunk_fts"),
        }

    def integrity_check(self) -> str:
        return self.con.execute("PRAGMA integrity_check").fetchone()[0]

"""Schema migrations: an append-only list of small named steps, each in its own transaction.

Never edit or reorder a step that has shipped; add a new one. ``_migrations`` records which
steps ran, so a database written by any older version is brought up to date on open.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import apsw
import numpy as np

from desktop.core.storage import vectors

Migration = Callable[[apsw.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration, named after the function."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(con: apsw.Connection) -> None:
    con.execute(
        """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE collections(
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL
        );
        CREATE TABLE roots(
            id INTEGER PRIMARY KEY,
            collection_id INTEGER NOT NULL REFERENCES collections(id),
            path TEXT NOT NULL,
            added_at REAL NOT NULL,
            scanned_at REAL,
            UNIQUE(collection_id, path)
        );
        CREATE TABLE documents(
            id INTEGER PRIMARY KEY,
            root_id INTEGER NOT NULL REFERENCES roots(id),
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            hash TEXT,
            kind TEXT,
            status TEXT NOT NULL,
            reason TEXT,
            image_pages TEXT,
            n_chunks INTEGER NOT NULL DEFAULT 0,
            indexed_at REAL NOT NULL,
            UNIQUE(root_id, path)
        );
        CREATE INDEX documents_hash ON documents(hash);
        CREATE TABLE chunks(
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id),
            ord INTEGER NOT NULL,
            text TEXT NOT NULL,
            page INTEGER,
            page_end INTEGER,
            heading TEXT,
            start INTEGER NOT NULL,
            end INTEGER NOT NULL,
            n_tokens INTEGER NOT NULL
        );
        CREATE INDEX chunks_document ON chunks(document_id);
        CREATE VIRTUAL TABLE chunk_fts USING fts5(
            text, content='', contentless_delete=1,
            tokenize="unicode61 remove_diacritics 2 categories 'L* N* Co M*'"
        );
        """
    )


@migration
def m002_ocr(con: apsw.Connection) -> None:
    """Text read by OCR: each chunk's confidence, each document's page count and mean."""
    con.execute(
        """
        ALTER TABLE chunks ADD COLUMN ocr REAL;
        ALTER TABLE documents ADD COLUMN ocr_pages INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE documents ADD COLUMN ocr_confidence REAL;
        """
    )


@migration
def m003_vector_cells(con: apsw.Connection) -> None:
    """Vectors move from one float ``vec0`` table to int8 codes in cells plus exact floats
    (:mod:`desktop.core.storage.vectors`), filed in cells when there are enough of them."""
    dim = con.execute("SELECT value FROM meta WHERE key='embedder_dim'").fetchone()
    if dim is None:
        return
    vectors.create(con, int(dim[0]))
    table = vectors.VectorTable(con)
    rows = con.execute(
        "SELECT v.rowid, r.collection_id, v.embedding FROM chunk_vectors v "
        "JOIN chunks c ON c.id = v.rowid JOIN documents d ON d.id = c.document_id "
        "JOIN roots r ON r.id = d.root_id ORDER BY r.collection_id")
    by_collection: dict[int, list[tuple[int, bytes]]] = {}
    for chunk_id, collection, blob in rows:
        by_collection.setdefault(collection, []).append((chunk_id, blob))
    for collection, items in by_collection.items():
        blob = b"".join(b for _, b in items)
        table.add([i for i, _ in items], collection,
                  np.frombuffer(blob, dtype=np.float32).reshape(len(items), -1))
    con.execute("DROP TABLE chunk_vectors")
    if table.needs_training():
        table.train()


@migration
def m004_vector_log(con: apsw.Connection) -> None:
    """The log of added and removed chunks that keeps in-memory copies of a one-cell library's
    vectors up to date (:class:`desktop.core.storage.vectors.ExactCopy`)."""
    if con.execute("SELECT 1 FROM meta WHERE key='embedder_dim'").fetchone():
        vectors.create_log(con)


def apply(con: apsw.Connection) -> list[str]:
    """Run every pending migration, each in its own transaction; return the names applied.

    A step that fails rolls back and stays pending; the error propagates.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS _migrations(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    done = {row[0] for row in con.execute("SELECT name FROM _migrations")}
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        # IMMEDIATE takes the write lock before looking again: two connections opening a new
        # database at once (the window's jobs do) must not both run the step.
        con.execute("BEGIN IMMEDIATE")
        try:
            if con.execute("SELECT 1 FROM _migrations WHERE name=?", (name,)).fetchone():
                con.execute("COMMIT")
                continue
            step(con)
            con.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied

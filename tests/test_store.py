"""The store on real SQLite + sqlite-vec + FTS5."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.core.errors import EmbedderMismatch
from desktop.core.storage import migrations
from desktop.core.storage.store import ChunkRecord, DocumentUpdate, Store, connect


def _vectors(n: int, dim: int = 4, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _doc(root_id: int, path: str, texts: list[str], seed: int = 0) -> DocumentUpdate:
    chunks = [ChunkRecord(t, None, None, 0, len(t), len(t.split())) for t in texts]
    return DocumentUpdate(root_id, path, 10, 1, f"h-{path}-{seed}", "text", "indexed",
                          chunks=chunks, vectors=_vectors(len(texts), seed=seed))


def _root(store: Store) -> int:
    store.bind_embedder("test-model", 4)
    return store.add_root(store.collection_id("c", create=True), "/docs")


def test_wal_mode_and_sqlite_vec_loaded(store):
    assert store.con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.con.execute("SELECT vec_version()").fetchone()[0].startswith("v")


def test_replacing_a_document_replaces_its_chunks_vectors_and_keywords(store):
    root = _root(store)
    store.write_documents([_doc(root, "/docs/a.txt", ["alpha one", "alpha two", "alpha three"])])
    assert store.counts() == {"documents": 1, "chunks": 3, "vectors": 3, "keywords": 3}
    store.write_documents([_doc(root, "/docs/a.txt", ["beta"], seed=1)])
    assert store.counts() == {"documents": 1, "chunks": 1, "vectors": 1, "keywords": 1}
    hits = store.con.execute("SELECT rowid FROM chunk_fts WHERE chunk_fts MATCH 'alpha'")
    assert list(hits) == []


def test_deleting_documents_leaves_no_orphans(store):
    root = _root(store)
    ids = store.write_documents([_doc(root, f"/docs/{i}.txt", ["x y", "z"], seed=i)
                                 for i in range(5)])
    store.delete_documents(ids[:3])
    assert store.counts() == {"documents": 2, "chunks": 4, "vectors": 4, "keywords": 4}
    for table, key in (("chunk_floats", "id"), ("vector_codes", "rowid")):
        orphans = store.con.execute(
            f"SELECT count(*) FROM {table} WHERE {key} NOT IN (SELECT id FROM chunks)"
        ).fetchone()[0]
        assert orphans == 0, table
    assert store.has_chunks()
    store.delete_documents(ids[3:])
    assert not store.has_chunks()


def test_a_failed_batch_writes_nothing(store):
    root = _root(store)
    good = _doc(root, "/docs/good.txt", ["fine"])
    bad = DocumentUpdate(root, "/docs/bad.txt", 1, 1, "h", "text", "indexed",
                         chunks=[ChunkRecord("t", None, None, 0, 1, 1)], vectors=None)
    with pytest.raises(ValueError):
        store.write_documents([good, bad])
    assert store.counts() == {"documents": 0, "chunks": 0, "vectors": 0, "keywords": 0}


def test_vector_search_finds_the_nearest_chunk(store):
    root = _root(store)
    store.write_documents([_doc(root, "/docs/a.txt", [f"t{i}" for i in range(20)], seed=3)])
    target = _vectors(20, seed=3)[7]
    ids, scores = store.vectors.search(target, 1)
    row = store.con.execute("SELECT text FROM chunks WHERE id=?", (ids[0],)).fetchone()
    assert row[0] == "t7" and scores[0] > 0.999


def test_another_embedder_is_refused_until_reembed(store):
    root = _root(store)
    store.write_documents([_doc(root, "/docs/a.txt", ["alpha"])])
    with pytest.raises(EmbedderMismatch, match="--reembed"):
        store.bind_embedder("other-model", 8)
    assert store.bind_embedder("other-model", 8, reembed=True) is True
    assert store.embedder() == ("other-model", 8)
    assert store.counts()["chunks"] == 0
    assert store.documents(root)["/docs/a.txt"].hash is None  # will be re-indexed


def test_a_root_inside_a_root_is_the_same_root_and_a_parent_absorbs(store):
    coll = store.collection_id("c", create=True)
    inner = store.add_root(coll, "/docs/sub")
    store.bind_embedder("m", 4)
    store.write_documents([_doc(inner, "/docs/sub/a.txt", ["x"])])
    outer = store.add_root(coll, "/docs")
    assert store.add_root(coll, "/docs/sub/deeper") == outer
    assert [r[2] for r in store.roots(coll)] == ["/docs"]
    assert "/docs/sub/a.txt" in store.documents(outer)
    assert store.add_root(coll, "/docsx") != outer  # a sibling with a common prefix


def test_forget_collection_removes_everything(store):
    root = _root(store)
    store.write_documents([_doc(root, "/docs/a.txt", ["alpha", "beta"])])
    store.forget_collection(store.collection_id("c"))
    assert store.counts() == {"documents": 0, "chunks": 0, "vectors": 0, "keywords": 0}
    assert store.collections() == []


def test_a_database_from_an_older_version_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    con = connect(path)
    con.execute("CREATE TABLE _migrations(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    name, first = migrations.MIGRATIONS[0]
    first(con)
    con.execute("INSERT INTO _migrations VALUES (?, 0)", (name,))
    con.execute("INSERT INTO collections(name, created_at) VALUES ('old', 0)")
    con.close()
    with Store.open(path) as s:
        done = {r[0] for r in s.con.execute("SELECT name FROM _migrations")}
        assert done == {n for n, _ in migrations.MIGRATIONS}
        assert [c[1] for c in s.collections()] == ["old"]


def test_a_failing_migration_rolls_back_and_stays_pending(tmp_path, monkeypatch):
    def broken(con):
        con.execute("CREATE TABLE half_done(x)")
        raise RuntimeError("boom")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, ("m999", broken)])
    con = connect(tmp_path / "db.sqlite")
    with pytest.raises(RuntimeError):
        migrations.apply(con)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in tables
    assert "m999" not in {r[0] for r in con.execute("SELECT name FROM _migrations")}

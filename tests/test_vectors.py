"""Vector search in cells (int8 codes in sqlite-vec partitions, floats re-scored) against exact
search, on vectors made from real embeddings, with changes, scopes, training and migration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from desktop.core.storage import migrations, vectors
from desktop.core.storage.store import ChunkRecord, DocumentUpdate, Store, connect
from desktop.dev.bench_vector_layouts import vectors as mixed_vectors


@pytest.fixture(scope="module")
def real(embedder, eval_dir) -> tuple[np.ndarray, np.ndarray]:
    """(300 real passage embeddings, 40 real question embeddings) of SQuAD dev."""
    with (eval_dir / "squad_v1.1_dev" / "corpus.jsonl").open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"][:300] for line in f][:300]
    with (eval_dir / "squad_v1.1_dev" / "questions.jsonl").open(encoding="utf-8") as f:
        questions = [json.loads(line)["question"] for line in f][:400:10]
    return embedder.embed(texts), embedder.embed(questions)


def _library(base: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct unit vectors near the real ones, as ``bench retrieve`` makes them."""
    return mixed_vectors("mixtures", n, base, seed)


def _write(store: Store, root: int, vecs: np.ndarray, prefix: str = "d") -> list[int]:
    updates = []
    for d in range(0, len(vecs), 500):
        part = vecs[d:d + 500]
        chunks = [ChunkRecord(f"chunk {d + i}", None, None, 0, 1, 2) for i in range(len(part))]
        updates.append(DocumentUpdate(root, f"/lib/{prefix}{d}.txt", 1, 1, f"{prefix}{d}", "text",
                                      "indexed", chunks=chunks, vectors=part))
    return store.write_documents(updates)


def _exact(store: Store, query: np.ndarray, k: int) -> list[int]:
    rows = store.con.execute("SELECT id, embedding FROM chunk_floats").fetchall()
    floats = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    return [rows[i][0] for i in np.argsort(-(floats @ query))[:k]]


@pytest.fixture(scope="module")
def trained(real, tmp_path_factory):
    """A store of 20,000 vectors filed in cells (416 cells; a search reads 64)."""
    base, _ = real
    store = Store.open(tmp_path_factory.mktemp("cells") / "index.sqlite")
    store.bind_embedder("test", base.shape[1])
    root = store.add_root(store.collection_id("lib", create=True), "/lib")
    _write(store, root, _library(base, 20_000))
    store.vectors.train()
    yield store, root
    store.close()


def test_search_in_cells_finds_what_exact_search_finds(trained, real):
    store, _ = trained
    _, questions = real
    assert store.vectors.cells() == 20_000 // vectors.SAMPLE_PER_CELL
    recall = []
    for q in questions:
        ids, scores = store.vectors.search(q, 10)
        recall.append(len(set(ids) & set(_exact(store, q, 10))) / 10)
        assert scores == sorted(scores, reverse=True)
        floats = store.vectors._floats(np.asarray([ids[0]]))[0]
        assert scores[0] == pytest.approx(float(floats @ q), abs=1e-5)  # re-scored exactly
    assert np.mean(recall) >= 0.97, np.mean(recall)


def test_a_change_is_seen_by_the_very_next_search(trained, real):
    store, root = trained
    base, _ = real
    new = _library(base, 3, seed=99)
    doc = _write(store, root, new, prefix="new")[0]
    first = store.con.execute("SELECT min(id) FROM chunks WHERE document_id=?", (doc,)).fetchone()
    ids, scores = store.vectors.search(new[1], 1)
    assert ids == [first[0] + 1] and scores[0] > 0.999
    store.delete_documents([doc])
    assert store.vectors.search(new[1], 1)[0] != ids


def test_a_collection_scope_is_applied_inside_the_search(trained, real):
    store, _ = trained
    base, questions = real
    other = store.add_root(store.collection_id("other", create=True), "/other")
    near = questions[:1] + np.random.default_rng(1).normal(scale=0.01, size=(1, base.shape[1]))
    doc = _write(store, other, (near / np.linalg.norm(near)).astype(np.float32), prefix="o")[0]
    mine = store.con.execute("SELECT id FROM chunks WHERE document_id=?", (doc,)).fetchone()[0]
    assert store.vectors.search(questions[0], 1)[0] == [mine]
    lib = store.collection_id("lib")
    scoped, _ = store.vectors.search(questions[0], 10, [lib])
    assert mine not in scoped and len(scoped) == 10
    assert store.vectors.search(questions[0], 5, [store.collection_id("other")])[0] == [mine]
    store.delete_documents([doc])


def test_cells_are_trained_at_the_first_size_and_again_when_the_library_doubles(
        real, store, monkeypatch):
    monkeypatch.setattr(vectors, "FIRST_CELLS_AT", 1000)
    base, questions = real
    store.bind_embedder("test", base.shape[1])
    root = store.add_root(store.collection_id("lib", create=True), "/lib")
    _write(store, root, _library(base, 900))
    assert not store.vectors.needs_training() and store.vectors.cells() == 1
    _write(store, root, _library(base, 300, seed=1), prefix="b")
    assert store.vectors.needs_training()
    store.vectors.train()
    assert store.vectors.cells() == 1200 // vectors.SAMPLE_PER_CELL
    assert store.vectors.cells_at() == 1200 and not store.vectors.needs_training()
    _write(store, root, _library(base, 1200, seed=2), prefix="c")
    assert store.vectors.needs_training()
    assert store.counts()["vectors"] == store.vectors.count() == 2400
    assert store.vectors.search(questions[0], 10)[0] == _exact(store, questions[0], 10)


def test_an_index_written_before_cells_is_moved_over_on_open(tmp_path, real, monkeypatch):
    monkeypatch.setattr(vectors, "FIRST_CELLS_AT", 100)
    base, questions = real
    path = tmp_path / "old.sqlite"
    con = connect(path)
    migrations.MIGRATIONS, later = migrations.MIGRATIONS[:2], migrations.MIGRATIONS
    try:
        migrations.apply(con)
    finally:
        migrations.MIGRATIONS = later
    con.execute("INSERT INTO meta VALUES ('embedder_id', 'test'), ('embedder_dim', '384')")
    con.execute("CREATE VIRTUAL TABLE chunk_vectors USING vec0("
                "embedding float[384] distance_metric=cosine)")
    con.execute("INSERT INTO collections VALUES (1, 'lib', 0)")
    con.execute("INSERT INTO roots VALUES (1, 1, '/lib', 0, NULL)")
    con.execute("INSERT INTO documents(id, root_id, path, size, mtime_ns, status, n_chunks, "
                "indexed_at) VALUES (1, 1, '/lib/a.txt', 1, 1, 'indexed', 150, 0)")
    old = _library(base, 150)
    for i, v in enumerate(old, start=1):
        con.execute("INSERT INTO chunks(id, document_id, ord, text, start, end, n_tokens) "
                    "VALUES (?, 1, ?, 'x', 0, 1, 1)", (i, i))
        con.execute("INSERT INTO chunk_vectors(rowid, embedding) VALUES (?, ?)", (i, v.tobytes()))
    con.close()
    with Store.open(path) as store:
        assert store.counts()["vectors"] == store.vectors.count() == 150
        assert store.vectors.cells() == 150 // vectors.SAMPLE_PER_CELL
        assert not store.con.execute(
            "SELECT 1 FROM sqlite_master WHERE name='chunk_vectors'").fetchone()
        ids, _ = store.vectors.search(old[7], 1)
        assert ids == [8]
        assert store.vectors.search(questions[0], 5, [1])[0] == _exact(store, questions[0], 5)


def test_a_training_that_fails_midway_leaves_the_old_cells(real, store, monkeypatch):
    base, questions = real
    store.bind_embedder("test", base.shape[1])
    root = store.add_root(store.collection_id("lib", create=True), "/lib")
    _write(store, root, _library(base, 3000))
    store.vectors.train()
    cells = store.vectors.cells()
    _write(store, root, _library(base, 3000, seed=1), prefix="b")
    monkeypatch.setattr(vectors, "REFILE_BATCH", 1000)
    calls = []

    def fail_on_the_third_batch(vecs, scale):
        calls.append(len(vecs))
        if len(calls) == 3:
            raise MemoryError("killed midway")
        return quantize(vecs, scale)

    quantize = vectors.quantize
    monkeypatch.setattr(vectors, "quantize", fail_on_the_third_batch)
    with pytest.raises(MemoryError):
        store.vectors.train()
    monkeypatch.setattr(vectors, "quantize", quantize)
    assert store.vectors.cells() == cells and store.vectors.cells_at() == 3000
    assert store.counts()["vectors"] == store.vectors.count() == 6000
    # Every cell is still searched (62 cells, 64 probes), so the search is exact.
    assert store.vectors.search(questions[0], 10)[0] == _exact(store, questions[0], 10)
    newest = _library(base, 3000, seed=1)[-1]
    assert store.vectors.search(newest, 1)[1][0] > 0.999


@pytest.fixture
def two_connections(real, tmp_path):
    """A one-cell library of 2,000 vectors: (the writing store, a searching store, root)."""
    base, _ = real
    writer = Store.open(tmp_path / "index.sqlite")
    writer.bind_embedder("test", base.shape[1])
    root = writer.add_root(writer.collection_id("lib", create=True), "/lib")
    _write(writer, root, _library(base, 2000))
    reader = Store.open(tmp_path / "index.sqlite")
    yield writer, reader, root
    reader.close()
    writer.close()


def _chunk_ids(store: Store, doc: int) -> list[int]:
    return [r[0] for r in store.con.execute(
        "SELECT id FROM chunks WHERE document_id=? ORDER BY id", (doc,))]


def test_a_small_library_is_searched_exactly_in_memory_following_another_writer(
        two_connections, real, monkeypatch):
    writer, reader, root = two_connections
    base, questions = real
    for q in questions[:10]:
        assert reader.vectors.search(q, 10)[0] == _exact(writer, q, 10)
    assert reader.vectors.memory_bytes() == 2000 * (base.shape[1] * 4 + 16)

    def no_reload(*args):
        raise AssertionError("the copy was loaded again whole")

    monkeypatch.setattr(reader.vectors, "_load_copy", no_reload)
    new = _library(base, 3, seed=7)
    doc = _write(writer, root, new, prefix="new")[0]
    ids, scores = reader.vectors.search(new[2], 1)
    assert ids == [_chunk_ids(writer, doc)[2]] and scores[0] > 0.999
    # The newest chunks removed and new ones written: SQLite gives the new ones the same ids.
    reused = _chunk_ids(writer, doc)
    writer.delete_documents([doc])
    assert reader.vectors.search(new[2], 1)[1][0] < 0.999
    other = _library(base, 3, seed=8)
    doc = _write(writer, root, other, prefix="again")[0]
    assert _chunk_ids(writer, doc) == reused
    assert reader.vectors.search(other[2], 1) == ([reused[2]], pytest.approx([1.0], abs=1e-5))
    assert reader.vectors.search(new[2], 1)[1][0] < 0.999
    lib = writer.collection_id("lib")
    elsewhere = writer.add_root(writer.collection_id("other", create=True), "/other")
    mine = _chunk_ids(writer, _write(writer, elsewhere, new[:1], prefix="o")[0])
    assert reader.vectors.search(new[0], 1)[0] == mine
    assert mine[0] not in reader.vectors.search(new[0], 10, [lib])[0]


def test_a_copy_behind_the_log_is_loaded_again_and_training_ends_the_copy(
        two_connections, real, monkeypatch):
    writer, reader, root = two_connections
    base, questions = real
    reader.vectors.search(questions[0], 5)
    monkeypatch.setattr(vectors, "LOG_KEEP", 100)
    doc = _write(writer, root, _library(base, 300, seed=3), prefix="b")[0]
    assert writer.con.execute("SELECT count(*) FROM vector_log").fetchone()[0] == 100
    writer.delete_documents([doc])
    for q in questions[:5]:
        assert reader.vectors.search(q, 10)[0] == _exact(writer, q, 10)
    assert len(reader.vectors._copy) == 2000
    writer.vectors.train()
    assert writer.con.execute("SELECT count(*) FROM vector_log").fetchone()[0] == 0
    reader.vectors.search(questions[0], 5)
    assert reader.vectors._copy is None and reader.vectors.cells() > 1
    assert reader.vectors.memory_bytes() == reader.vectors.cells() * base.shape[1] * 4


def test_a_search_inside_a_transaction_rolled_back_after_leaves_no_trace(two_connections, real):
    writer, _, root = two_connections
    base, questions = real
    writer.vectors.search(questions[0], 5)  # the copy is loaded
    new = _library(base, 3, seed=11)

    class Undo(Exception):
        pass

    with pytest.raises(Undo), writer.con:
        _write(writer, root, new, prefix="maybe")
        assert writer.vectors.search(new[1], 1)[1][0] > 0.99  # its own writes, from the codes
        raise Undo
    assert writer.vectors.search(new[1], 1)[1][0] < 0.99
    for q in questions[:5]:
        assert writer.vectors.search(q, 10)[0] == _exact(writer, q, 10)

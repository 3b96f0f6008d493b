"""`grounded bench retrieve`: search at 10k to 1M chunks against exact search, in one run.

    grounded bench retrieve --sizes 10000,100000,1000000 [--json]

Each store holds real chunk texts (of ../shared/eval, or of the folders named) with a vector of
its own near the real embeddings (two real embeddings mixed, plus noise: see
:func:`desktop.dev.bench_vector_layouts.vectors`), written through :class:`Store` as the indexer
writes, cells trained as the indexer trains them. A store is built once and kept in the user's
cache folder (``<GROUNDED_HOME>/cache`` when that is set), keyed by its size, pool and layout,
so a rerun only measures.

Per size: hybrid search (query embedding included), vector search alone, keywords alone
(BM25 and the coverage check), recall@10 of the vector search against exact float search over
the same vectors, exact numpy search and sqlite-vec's float KNN as references, memory at rest
of a searching process (a child: the app's modules, embedder and one store), the database size,
a search right after adding 1,000 chunks (and the same search after as long a pause with
nothing changed), the store's write rate at this size against an
empty store, and a real folder indexed into it (then forgotten) against an empty index.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import platformdirs

from desktop.core.config import APP_NAME
from desktop.core.embedding.embedder import OnnxEmbedder
from desktop.core.errors import GroundedError
from desktop.core.indexing.indexer import Indexer
from desktop.core.jobs import run_job
from desktop.core.storage import migrations, vectors
from desktop.core.storage.store import ChunkRecord, DocumentUpdate, Store
from desktop.dev.bench_vector_layouts import vectors as mixed_vectors
from desktop.dev.benchmarks import _eval_pool, _folder_pool

Report = Callable[[str], None]
PER_DOC = 100
DOCS_PER_WRITE = 10
#: Queries whose float KNN is timed in sqlite-vec (a whole scan: half a second each at 1M).
VEC0_QUERIES = 30
WRITE_PROBE = 5_000  # chunks written to time the store's write rate (rolled back)


def _ms(fn: Callable[[], object]) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - t0) * 1000


def _percentiles(xs: list[float]) -> tuple[float, float]:
    return float(np.percentile(xs, 50)), float(np.percentile(xs, 95))


def _updates(root: int, texts: list[str], vecs: np.ndarray, first: int, tag: str
             ) -> list[DocumentUpdate]:
    """Documents of :data:`PER_DOC` chunks each for ``vecs`` (texts chosen by position)."""
    out = []
    for d in range(0, len(vecs), PER_DOC):
        part = vecs[d:d + PER_DOC]
        chunks = [ChunkRecord(texts[(first + d + i) % len(texts)], None, None, 0, 1, 0)
                  for i in range(len(part))]
        out.append(DocumentUpdate(root, f"/bench/{tag}{first + d:08d}.txt", 1, 1, f"{tag}{d}",
                                  "text", "indexed", chunks=chunks, vectors=part))
    return out


def _write(store: Store, root: int, texts: list[str], vecs: np.ndarray, tag: str,
           say: Report | None = None, train: bool = True) -> list[int]:
    """Write ``vecs`` as the indexer does (batches, cells trained when due unless ``train``
    is off); the doc ids."""
    ids, step = [], PER_DOC * DOCS_PER_WRITE
    for start in range(0, len(vecs), step):
        ids += store.write_documents(_updates(root, texts, vecs[start:start + step], start, tag))
        if train and store.vectors.needs_training():
            store.vectors.train()
        if say and (start // step) % 100 == 99:
            say(f"  wrote {start + step:,} of {len(vecs):,} chunks")
    return ids


def _key(size: int, texts: list[str]) -> str:
    """What a cached store depends on: its size, pool, the schema and the vector layout."""
    h = hashlib.sha256(f"{size}|{[m for m, _ in migrations.MIGRATIONS]}|{PER_DOC}".encode())
    h.update(Path(vectors.__file__).read_bytes())
    for t in texts:
        h.update(t.encode())
    return h.hexdigest()[:16]


def cached_store(size: int, texts: list[str], base: np.ndarray, model_id: str, say: Report
                 ) -> Path:
    """The path of a built store of ``size`` chunks, building it when the cache lacks it."""
    override = os.environ.get("GROUNDED_HOME")
    folder = (Path(override).expanduser() / "cache" if override else
              Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))) / "bench-retrieve"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{size}-{_key(size, texts)}.sqlite"
    if path.exists():
        return path
    for old in folder.glob(f"{size}-*.sqlite*"):
        old.unlink()
    say(f"building the {size:,}-chunk store in {folder} (kept for reruns)")
    t0 = time.perf_counter()
    building = path.with_suffix(".building")
    with Store.open(building) as store:
        store.bind_embedder(model_id, base.shape[1])
        root = store.add_root(store.collection_id("bench", create=True), "/bench")
        vecs = mixed_vectors("mixtures", size, base)
        _write(store, root, texts, vecs, "doc", say)
        store.con.execute(f"CREATE VIRTUAL TABLE bench_reference USING vec0("
                          f"embedding float[{base.shape[1]}])")
        with store.con:
            store.con.execute("INSERT INTO bench_reference(rowid, embedding) "
                              "SELECT id, embedding FROM chunk_floats")
        store.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    building.rename(path)
    say(f"built in {time.perf_counter() - t0:.0f} s")
    return path


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rest_memory(path: Path, questions: list[str]) -> dict:
    """In a fresh process: RSS with an empty index after some searches, then with ``path``."""
    from desktop.core.answering.retrieve import Retriever

    embedder = OnnxEmbedder()
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "empty.sqlite") as empty:
        empty.bind_embedder(embedder.model_id, embedder.dim)
        retriever = Retriever(empty, embedder)
        for q in questions:
            retriever.search(q)
        before = _rss_mb()
        retriever.close()
    with Store.open(path) as store:
        retriever = Retriever(store, embedder)
        for q in questions:
            retriever.search(q)
        after = _rss_mb()
        retriever.close()
    return {"empty_mb": before, "loaded_mb": after}


def _child_rest_memory(path: Path, questions: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "desktop.dev.bench_retrieve", "rest", str(path)],
                         input=json.dumps(questions), capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2], env={**os.environ})
    return json.loads(out.stdout)


class _ExactVectors:
    """Exact search over every float vector held in memory: the vector search before cells."""

    def __init__(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        self.ids, self.matrix = ids, matrix

    def search(self, query: np.ndarray, k: int, collections: object = None
               ) -> tuple[list[int], list[float]]:
        scores = self.matrix @ query
        top = np.argpartition(-scores, k)[:k]
        top = top[np.argsort(-scores[top])]
        return self.ids[top].tolist(), scores[top].astype(float).tolist()


def _write_rate(store: Store, root: int, texts: list[str], vecs: np.ndarray) -> float:
    """Chunks/s of the store's writes (chunks, keywords, codes, floats), rolled back after."""
    store.con.execute("BEGIN")
    try:
        t0 = time.perf_counter()
        _write(store, root, texts, vecs, "rate", train=False)
        return len(vecs) / (time.perf_counter() - t0)
    finally:
        store.con.execute("ROLLBACK")


def index_rate(store: Store, folder: Path, embedder: OnnxEmbedder) -> float:
    """Chunks/s of a real index run (files read, chunked, embedded, written) of ``folder``
    into ``store``; the folder is forgotten after."""
    report = run_job(Indexer(store, embedder).run([folder], "bench-index"))
    store.forget_collection(store.collection_id("bench-index"))
    return report.chunks / report.seconds


def _measure(path: Path, texts: list[str], questions: list[str], base: np.ndarray,
             embedder: OnnxEmbedder, empty_rate: float, folder: Path) -> dict:
    from desktop.core.answering.evidence import rank
    from desktop.core.answering.retrieve import Retriever

    row: dict = {"db_mb": sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6}
    with Store.open(path) as store:
        rows = store.con.execute("SELECT id, embedding FROM chunk_floats ORDER BY id").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32
                               ).reshape(len(rows), -1)
        del rows
        # Made before any timing: the burst of numpy work would slow the next search.
        fresh = mixed_vectors("mixtures", 1000 + WRITE_PROBE, base, seed=len(ids))
        retriever = Retriever(store, embedder)
        in_memory = Retriever(store, embedder)
        in_memory.vectors = _ExactVectors(ids, matrix)
        for q in questions[:5]:
            retriever.search(q)
        hybrid_exact = [_ms(lambda q=q: in_memory.search(q, k=10))[1] for q in questions]
        hybrid, vector, words, exact_ms, vec0_ms, evidence, recall = [], [], [], [], [], [], []
        for n, q in enumerate(questions):
            hybrid.append(_ms(lambda q=q: retriever.search(q, k=10))[1])
            words.append(_ms(lambda q=q: (retriever.keyword_search(q, 50),
                                          retriever.coverage(q)))[1])
            passages, t = _ms(lambda q=q: [p.text for p in retriever.search(q, k=5).passages])
            evidence.append(t + _ms(lambda q=q, p=passages: rank(q, p))[1])
            qv = embedder.embed([q])[0]
            (found, _), t = _ms(lambda qv=qv: store.vectors.search(qv, 10))
            vector.append(t)
            exact, t = _ms(lambda qv=qv: ids[np.argsort(-(matrix @ qv))[:10]])
            exact_ms.append(t)
            recall.append(len(set(found) & set(exact.tolist())) / 10)
            if n < VEC0_QUERIES:
                vec0_ms.append(_ms(lambda qv=qv: store.con.execute(
                    "SELECT rowid FROM bench_reference WHERE embedding MATCH ? AND k = 10",
                    (qv.tobytes(),)).fetchall())[1])
        root = store.roots()[0][0]
        after_add, after_pause, seen = [], [], 0
        for trial in range(5):
            doc_ids, wrote = _ms(lambda t=trial: _write(store, root, texts, fresh[:1000],
                                                        f"new{t}-"))
            q = questions[trial % len(questions)]
            after_add.append(_ms(lambda q=q: retriever.search(q, k=10))[1])
            probe, _ = store.vectors.search(fresh[trial * 7], 1)
            new_first = store.con.execute("SELECT min(id) FROM chunks WHERE document_id IN "
                                          f"({','.join(map(str, doc_ids))})").fetchone()[0]
            seen += probe == [new_first + trial * 7]
            store.delete_documents(doc_ids)
            retriever.search(q, k=10)
            # The reference: the same search after as long a pause, with nothing changed.
            time.sleep(wrote / 1000)
            after_pause.append(_ms(lambda q=q: retriever.search(q, k=10))[1])
        rate = _write_rate(store, root, texts, fresh[1000:])
        row["index_chunks_per_s"] = index_rate(store, folder, embedder)
        retriever.close()
        in_memory.close()
    for name, xs in (("hybrid", hybrid), ("hybrid_exact_in_memory", hybrid_exact),
                     ("vector", vector), ("keywords", words),
                     ("exact_numpy", exact_ms), ("vec0_float_knn", vec0_ms),
                     ("evidence", evidence)):
        row[f"{name}_ms_p50"], row[f"{name}_ms_p95"] = _percentiles(xs)
    row.update({"recall@10": float(np.mean(recall)), "after_add_1000_ms": max(after_add),
                "after_add_1000_ms_each": after_add, "after_pause_ms": max(after_pause),
                "new_chunks_found": f"{seen}/5", "write_chunks_per_s": rate,
                "write_rate_vs_empty": rate / empty_rate})
    return row


def _empty_write_rate(texts: list[str], base: np.ndarray) -> float:
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "e.sqlite") as store:
        store.bind_embedder("bench", base.shape[1])
        root = store.add_root(store.collection_id("bench", create=True), "/bench")
        return _write_rate(store, root, texts, mixed_vectors("mixtures", WRITE_PROBE, base, 7))


def bench_retrieve(say: Report, eval_dir: Path | None = None, folders: list[Path] | None = None,
                   sizes: tuple[int, ...] = (10_000, 100_000), n_queries: int = 200) -> dict:
    """Measure each size (see the module docstring); returns one dict keyed by size."""
    if folders:
        texts, questions = _folder_pool(folders, say)
    elif eval_dir is not None:
        texts, questions = _eval_pool(eval_dir)
    else:
        raise GroundedError("no ../shared/eval found: name the folders to search")
    questions = questions[:: max(1, len(questions) // n_queries)][:n_queries]
    embedder = OnnxEmbedder()
    base = embedder.embed(texts[:: max(1, len(texts) // 1500)])
    empty_rate = _empty_write_rate(texts, base)
    folder = folders[0] if folders else eval_dir / "squad_v1.1_dev" / "corpus_small"
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "e.sqlite") as empty:
        empty_index = index_rate(empty, folder, embedder)
    say(f"store writes into an empty index: {empty_rate:.0f} chunks/s; indexing "
        f"{folder.name} into an empty index: {empty_index:.1f} chunks/s")
    results = {}
    for size in sizes:
        path = cached_store(size, texts, base, embedder.model_id, say)
        row = _measure(path, texts, questions, base, embedder, empty_rate, folder)
        memory = _child_rest_memory(path, questions[:50])
        row["rest_mb_above_empty"] = memory["loaded_mb"] - memory["empty_mb"]
        row["rest_mb"] = memory["loaded_mb"]
        row["index_rate_vs_empty"] = row["index_chunks_per_s"] / empty_index
        results[str(size)] = row
        _say_row(say, size, row)
    return results


def _say_row(say: Report, size: int, r: dict) -> None:
    say(f"{size:>9,} chunks ({r['db_mb']:.0f} MB on disk): hybrid p50 {r['hybrid_ms_p50']:.1f} "
        f"p95 {r['hybrid_ms_p95']:.1f} ms (keywords alone p95 {r['keywords_ms_p95']:.1f}); "
        f"vectors p50 {r['vector_ms_p50']:.1f} p95 {r['vector_ms_p95']:.1f} ms, "
        f"recall@10 {r['recall@10']:.3f}")
    say(f"{'':>9} references: hybrid over exact in-memory vectors p95 "
        f"{r['hybrid_exact_in_memory_ms_p95']:.1f} ms; exact numpy alone p95 "
        f"{r['exact_numpy_ms_p95']:.1f} ms, vec0 float KNN "
        f"p95 {r['vec0_float_knn_ms_p95']:.1f} ms; to the evidence line p95 "
        f"{r['evidence_ms_p95']:.1f} ms")
    say(f"{'':>9} at rest {r['rest_mb']:.0f} MB RSS, {r['rest_mb_above_empty']:+.0f} MB against "
        f"an empty index; a search right after adding 1,000 chunks {r['after_add_1000_ms']:.1f} "
        f"ms (worst of {' '.join(f'{t:.1f}' for t in r['after_add_1000_ms_each'])}; new chunks "
        f"found {r['new_chunks_found']}), after as long a pause with no change "
        f"{r['after_pause_ms']:.1f} ms; writes "
        f"{r['write_chunks_per_s']:.0f} chunks/s")
    say(f"RATIO hybrid p95 / hybrid over exact in-memory vectors p95 at {size}: "
        f"{r['hybrid_ms_p95'] / r['hybrid_exact_in_memory_ms_p95']:.2f}")
    say(f"RATIO vector search p95 / vec0 float KNN p95 at {size}: "
        f"{r['vector_ms_p95'] / r['vec0_float_knn_ms_p95']:.3f}")
    say(f"RATIO store writes at {size} / into an empty index: {r['write_rate_vs_empty']:.2f}")
    say(f"RATIO indexing a real folder at {size} / into an empty index: "
        f"{r['index_rate_vs_empty']:.2f} ({r['index_chunks_per_s']:.1f} chunks/s)")


if __name__ == "__main__" and sys.argv[1:2] == ["rest"]:
    print(json.dumps(rest_memory(Path(sys.argv[2]), json.loads(sys.stdin.read()))))

"""Vector search layouts side by side, before choosing one for a million chunks (issue 22).

    python -m desktop.dev.bench_vector_layouts --sizes 100000,1000000 [--json]

Each layout answers the same 100 real questions (embedded by the bundled embedder) over the
same vectors, and is scored by recall@10 against exact float search and by its latency:

- ``numpy exact``: today's search, a float32 matrix in memory (the reference for recall);
- ``vec0 float``: sqlite-vec's own exact KNN over ``float[384]``;
- ``vec0 bit + rescore C``: sqlite-vec's KNN over ``bit[384]`` (the sign of each dimension),
  then the C candidates re-scored exactly with their float vectors read from ``vec0``;
- ``vec0 bit + plain rescore C``: the same, the floats read from a plain rowid table;
- ``numpy bits + plain rescore C``: the sign bits in memory (48 bytes a chunk), Hamming
  distance by XOR and popcount, the floats of the C nearest read from the plain table.

Two synthetic libraries: ``copies`` is what ``bench retrieve`` builds (1,500 real embeddings,
each repeated with a little noise: about 667 near-copies of each at 1M), ``mixtures`` gives
every chunk its own vector (two real embeddings mixed with random weights, plus the same
noise), closer to a library of distinct passages. Coarse quantized search cannot tell
near-copies apart, so the two say different things; both are reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from desktop.core.embedding.embedder import OnnxEmbedder
from desktop.core.storage.store import connect
from desktop.dev.benchmarks import _eval_pool, default_eval_dir

CANDIDATES = (200, 800)
BATCH = 50_000


def vectors(kind: str, n: int, base: np.ndarray, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors near the real ones in ``base`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(base), n)
    vec = base[i].astype(np.float32)
    if kind == "mixtures":
        j = rng.integers(0, len(base), n)
        w = rng.uniform(0.3, 1.0, (n, 1)).astype(np.float32)
        vec = w * vec + (1 - w) * base[j]
    vec += rng.normal(scale=0.02, size=vec.shape).astype(np.float32)
    return vec / np.linalg.norm(vec, axis=1, keepdims=True)


def build(path: Path, vecs: np.ndarray) -> object:
    con = connect(path)
    dim = vecs.shape[1]
    con.execute(f"CREATE VIRTUAL TABLE floats USING vec0(embedding float[{dim}])")
    con.execute(f"CREATE VIRTUAL TABLE bits USING vec0(embedding bit[{dim}])")
    con.execute("CREATE TABLE plain(id INTEGER PRIMARY KEY, embedding BLOB NOT NULL)")
    for start in range(0, len(vecs), BATCH):
        rows = [(start + k + 1, v.tobytes()) for k, v in enumerate(vecs[start:start + BATCH])]
        with con:
            con.executemany("INSERT INTO floats(rowid, embedding) VALUES (?, ?)", rows)
            con.executemany("INSERT INTO bits(rowid, embedding) VALUES (?, vec_quantize_binary(?))",
                            rows)
            con.executemany("INSERT INTO plain(id, embedding) VALUES (?, ?)", rows)
    return con


def _timed(fn, queries: np.ndarray) -> tuple[list[list[int]], list[float]]:
    out, ms = [], []
    for q in queries:
        t0 = time.perf_counter()
        out.append(fn(q))
        ms.append((time.perf_counter() - t0) * 1000)
    return out, ms


def measure(con, vecs: np.ndarray, queries: np.ndarray) -> dict:
    exact = [list(np.argsort(-(vecs @ q))[:10] + 1) for q in queries]

    def numpy_exact(q):
        scores = vecs @ q
        top = np.argpartition(-scores, 10)[:10]
        return list(top[np.argsort(-scores[top])] + 1)

    def vec0_float(q):
        return [r[0] for r in con.execute(
            "SELECT rowid FROM floats WHERE embedding MATCH ? AND k = 10 ORDER BY distance",
            (q.tobytes(),))]

    def rescore(ids, q, table):
        marks = ",".join("?" * len(ids))
        key = "rowid" if table == "floats" else "id"
        rows = con.execute(f"SELECT {key}, embedding FROM {table} WHERE {key} IN ({marks})",
                           [int(i) for i in ids]).fetchall()
        got = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        scores = got.reshape(len(rows), -1) @ q
        return [rows[k][0] for k in np.argsort(-scores)[:10]]

    def bit_rescore(c, table):
        def run(q):
            ids = [r[0] for r in con.execute(
                "SELECT rowid FROM bits WHERE embedding MATCH vec_quantize_binary(?) AND k = ? "
                "ORDER BY distance", (q.tobytes(), c))]
            return rescore(ids, q, table)
        return run

    packed = np.packbits(vecs > 0, axis=1).view(np.uint64)  # the bits, in memory

    def numpy_bits(c):
        def run(q):
            code = np.packbits(q > 0).view(np.uint64)
            distance = np.bitwise_count(packed ^ code).sum(axis=1, dtype=np.uint16)
            near = np.argpartition(distance, c)[:c] + 1
            return rescore(near, q, "plain")
        return run

    layouts = {"numpy exact": numpy_exact, "vec0 float": vec0_float,
               **{f"vec0 bit + rescore {c}": bit_rescore(c, "floats") for c in CANDIDATES},
               **{f"vec0 bit + plain rescore {c}": bit_rescore(c, "plain") for c in CANDIDATES},
               **{f"numpy bits + plain rescore {c}": numpy_bits(c)
                  for c in (*CANDIDATES, 3200)}}
    result = {}
    for name, fn in layouts.items():
        found, ms = _timed(fn, queries)
        recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
        result[name] = {"recall@10": float(recall), "p50_ms": float(np.percentile(ms, 50)),
                        "p95_ms": float(np.percentile(ms, 95))}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    eval_dir = default_eval_dir()
    if eval_dir is None:
        raise SystemExit("no ../shared/eval beside the checkout")
    texts, questions = _eval_pool(eval_dir)
    embedder = OnnxEmbedder()
    base = embedder.embed(texts[:: max(1, len(texts) // 1500)])
    queries = embedder.embed(questions[:: max(1, len(questions) // 100)][:100])
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="grounded-layouts-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            for kind in ("copies", "mixtures"):
                vecs = vectors(kind, size, base)
                t0 = time.perf_counter()
                con = build(Path(tmp) / f"{kind}-{size}.sqlite", vecs)
                built = time.perf_counter() - t0
                row = measure(con, vecs, queries)
                con.close()
                results[f"{size} {kind}"] = row
                for name, r in row.items():
                    print(f"{size:>8} {kind:<9} {name:<24} recall@10 {r['recall@10']:.3f}  "
                          f"p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms", file=sys.stderr)
                print(f"{size:>8} {kind:<9} built in {built:.0f} s", file=sys.stderr)
                (Path(tmp) / f"{kind}-{size}.sqlite").unlink()
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

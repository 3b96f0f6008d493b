"""`grounded bench NAME`: measures of the hot paths, each against its natural reference.

These machines are noisy, so every benchmark measures its reference in the same run and
prints the ratio; single times are only context.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from desktop.core.config import Settings
from desktop.core.embedding.embedder import OnnxEmbedder, groups_by_length
from desktop.core.errors import GroundedError
from desktop.core.indexing.indexer import EMBED_BATCH, FLUSH_CHUNKS, Indexer
from desktop.core.jobs import run_job
from desktop.core.storage.store import Store

Report = Callable[[str], None]


def default_eval_dir() -> Path | None:
    """The shared evaluation data beside the checkout, when it is there."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base.parent / "shared" / "eval"
        if candidate.is_dir():
            return candidate
    return None




def _peak_rss_mb() -> tuple[float, float]:
    """(this process, largest finished child) peak resident memory in MB (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def bench_index(corpora: list[Path], say: Report, limit: int | None = None) -> dict:
    """Index ``corpora`` through the pipeline, then embed the very same chunks alone.

    Prints pipeline chunks/s against the embedder alone (same embedder, same chunks, in one
    run), peak memory, and our embedder against the fp32 sentence-transformers reference
    (:func:`compare_with_reference`).
    """
    with tempfile.TemporaryDirectory(prefix="grounded-bench-") as tmp:
        work = Path(tmp)
        if limit:
            sample = work / "sample"
            sample.mkdir()
            files = sorted(f for c in corpora for f in c.rglob("*") if f.is_file())[:limit]
            for i, f in enumerate(files):
                shutil.copy(f, sample / f"{i:05d}-{f.name}")
            corpora = [sample]
        embedder = OnnxEmbedder()
        embedder.load()  # outside the timed part
        say(f"embedder: {embedder.model_id} (ONNX Runtime, {embedder.pooling} pooling)")
        with Store.open(work / "index.sqlite") as store:
            t0 = time.perf_counter()
            report = run_job(Indexer(store, embedder, Settings()).run(corpora, "bench"))
            pipeline_s = time.perf_counter() - t0
            rows = list(store.con.execute("SELECT text, n_tokens FROM chunks ORDER BY id"))
        texts, tokens = [r[0] for r in rows], [r[1] for r in rows]
        n = len(texts)
        say(
            f"pipeline: {report.added} files, {n} chunks in {pipeline_s:.1f} s "
            f"= {n / pipeline_s:.1f} chunks/s ({len(report.failed)} failed, "
            f"{len(report.skipped)} skipped)"
        )
        own, child = _peak_rss_mb()
        t0 = time.perf_counter()
        for i in range(0, n, FLUSH_CHUNKS):  # the pipeline's calls: its groups, in write order
            for group in groups_by_length(tokens[i : i + FLUSH_CHUNKS], EMBED_BATCH):
                embedder.embed([texts[i + j] for j in group])
        alone_s = time.perf_counter() - t0
        say(f"embedder alone, same chunks, same calls ({EMBED_BATCH} of {FLUSH_CHUNKS} chunks "
            f"by token count): {n / alone_s:.1f} chunks/s")
    result = {
        "files": report.added,
        "chunks": n,
        "pipeline_chunks_per_s": n / pipeline_s,
        "embedder_alone_chunks_per_s": n / alone_s,
        "pipeline_vs_embedder_alone": alone_s / pipeline_s,
        "peak_rss_mb": own,
        "peak_rss_extractor_mb": child,
    }
    same = result["pipeline_vs_embedder_alone"]
    say(f"RATIO pipeline / embedder alone (same batches): {same:.3f}")
    say(f"peak memory: {own:.0f} MB (indexer), {child:.0f} MB (extraction child)")
    result |= compare_with_reference(embedder, texts, say)
    return result


def compare_with_reference(embedder: OnnxEmbedder, texts: list[str], say: Report) -> dict:
    """Our embedder against fp32 sentence-transformers (``SentenceTransformer.encode``, the
    reference) on the same texts, alternating slices so machine drift hits both alike: speed
    ratio and the lowest cosine between twin vectors. Without sentence-transformers (the
    packaged app has none) there is no reference to measure: nothing is added."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        say("sentence-transformers is not installed: no reference for the embedder alone")
        return {}
    torch.set_num_threads(embedder.session.get_session_options().intra_op_num_threads)
    model = SentenceTransformer(str(embedder.path), device="cpu", local_files_only=True)
    ours_s, ref_s, ours, refs = 0.0, 0.0, [], []
    for i in range(0, len(texts), 512):
        part = texts[i : i + 512]
        t0 = time.perf_counter()
        ours.append(embedder.embed(part))
        ours_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        with torch.inference_mode():
            refs.append(model.encode(part, batch_size=32, normalize_embeddings=True,
                                     show_progress_bar=False))
        ref_s += time.perf_counter() - t0
    cos = float(np.sum(np.concatenate(ours) * np.concatenate(refs), axis=1).min())
    n = len(texts)
    say(f"fp32 sentence-transformers reference: {n / ref_s:.1f} chunks/s; ours "
        f"{n / ours_s:.1f} chunks/s")
    say(f"RATIO our embedder / fp32 sentence-transformers: {ref_s / ours_s:.2f}x, min cosine "
        f"over {n} vectors {cos:.7f}")
    return {"fp32_chunks_per_s": n / ref_s, "speedup_vs_fp32": ref_s / ours_s,
            "min_cosine_vs_fp32": cos}


def _make_tree(root: Path, n_files: int, per_folder: int = 100) -> None:
    for i in range(n_files):
        folder = root / f"d{i // per_folder:04d}"
        if i % per_folder == 0:
            folder.mkdir(parents=True)
        (folder / f"note{i:05d}.txt").write_text(f"Note {i}: item {i * 7919 % 10007} is filed.")


def _walk_stat(root: Path) -> int:
    n = 0
    for folder, _, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(folder, name))
            n += 1
    return n


def bench_rescan(say: Report, n_files: int = 10_000, repeats: int = 3,
                 folder: Path | None = None) -> dict:
    """Index a tree of ``n_files`` small files (or ``folder``, read where it is), then time
    re-indexing it unchanged.

    The reference is a bare walk that stats every file (os.walk + os.stat): the least any
    re-scan must do.
    """
    with tempfile.TemporaryDirectory(prefix="grounded-bench-") as tmp:
        if folder is None:
            root = Path(tmp) / "tree"
            _make_tree(root, n_files)
        else:
            root = folder.expanduser().resolve()
        embedder = OnnxEmbedder()
        with Store.open(Path(tmp) / "index.sqlite") as store:
            t0 = time.perf_counter()
            first = run_job(Indexer(store, embedder).run([root], "bench"))
            say(
                f"first index: {first.added} files, {first.chunks} chunks in "
                f"{time.perf_counter() - t0:.1f} s"
            )
            rescans, walks = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                again = run_job(Indexer(store, embedder).run([root], "bench"))
                rescans.append(time.perf_counter() - t0)
                assert again.chunks == 0 and again.added == again.updated == 0
                n_files = again.unchanged
                t0 = time.perf_counter()
                _walk_stat(root)
                walks.append(time.perf_counter() - t0)
    best, ref = min(rescans), min(walks)
    say(
        f"re-scan of {n_files} unchanged files: best {best:.3f} s of {repeats} "
        f"(all: {', '.join(f'{r:.3f}' for r in rescans)})"
    )
    say(f"bare os.walk + os.stat reference: {ref:.3f} s")
    say(f"RATIO re-scan / bare stat walk: {best / ref:.2f}x")
    return {"files": n_files, "rescan_s": best, "stat_walk_s": ref, "ratio": best / ref}


def _eval_pool(eval_dir: Path) -> tuple[list[str], list[str]]:
    """Passage texts and questions of the three text datasets of ../shared/eval."""
    import json

    texts, questions = [], []
    for name in ("squad_v1.1_dev", "covidqa_long", "xquad_multilingual"):
        with (eval_dir / name / "corpus.jsonl").open(encoding="utf-8") as f:
            texts += [json.loads(line)["text"][:1200] for line in f]
        with (eval_dir / name / "questions.jsonl").open(encoding="utf-8") as f:
            questions += [json.loads(line)["question"] for line in f]
    return texts, questions


def _folder_pool(folders: list[Path], say: Report) -> tuple[list[str], list[str]]:
    """Chunk texts of ``folders`` (indexed through the pipeline into a throwaway index) and,
    as questions, the first ten words of every chunk."""
    with tempfile.TemporaryDirectory(prefix="grounded-bench-") as tmp, \
            Store.open(Path(tmp) / "pool.sqlite") as store:
        report = run_job(Indexer(store, OnnxEmbedder()).run(folders, "bench"))
        texts = [row[5] for row in store.chunk_rows()]
    if not texts:
        raise GroundedError(f"no text found to search in {', '.join(map(str, folders))}")
    say(f"read {report.chunks} chunks from {report.added} files")
    return texts, [" ".join(text.split()[:10]) for text in texts]

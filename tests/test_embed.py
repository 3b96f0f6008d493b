"""The embedder's precision choice and memory: real MiniLM, real passages, real torch/oneDNN."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from desktop.core.embed import (
    BF16_MIN_COSINE,
    SentenceTransformerEmbedder,
    bf16_supported,
    groups_by_length,
)

needs_bf16 = pytest.mark.skipif(not bf16_supported(), reason="this CPU has no native bfloat16")


def _passages(eval_dir, n: int) -> list[str]:
    lines = (eval_dir / "squad_v1.1_dev" / "corpus.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines[:n]]


def _non_latin(eval_dir, per_lang: int) -> list[str]:
    """XQuAD passages in the scripts where bf16 strays furthest from fp32."""
    rows = [json.loads(line) for line in
            (eval_dir / "xquad_multilingual" / "corpus.jsonl").read_text().splitlines()]
    return [r["text"] for lang in ("ar", "th", "zh") for r in
            [r for r in rows if r["lang"] == lang][:per_lang]]


@needs_bf16
def test_bf16_is_chosen_and_its_vectors_match_fp32(embedder, eval_dir):
    assert embedder.bf16, f"bf16 refused at load (probe cosine {embedder.bf16_min_cosine})"
    assert embedder.bf16_min_cosine >= BF16_MIN_COSINE
    texts = _passages(eval_dir, 24) + _non_latin(eval_dir, 4)
    fast, ref = embedder.embed(texts), embedder.embed_fp32(texts)
    assert fast.shape == ref.shape == (36, embedder.dim) and fast.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cos = np.sum(fast * ref, axis=1)
    assert cos.min() >= BF16_MIN_COSINE
    assert not np.array_equal(fast, ref)  # the fast path really is a different computation


def test_bf16_off_gives_the_fp32_vectors(embedder, eval_dir):
    plain = SentenceTransformerEmbedder(bf16=False)
    # Lengths from 1 to ~250 tokens, interleaved, so batching by token length reorders them.
    short = ["hi", "a b c", "Q?", "x " * 40] * 2
    texts = [t for pair in zip(_passages(eval_dir, 8), short, strict=True) for t in pair]
    assert not plain.bf16 and plain.bf16_min_cosine is None
    # Same weights, same fp32 computation, other batches: the vectors agree to float rounding.
    np.testing.assert_allclose(plain.embed(texts), embedder.embed_fp32(texts), atol=1e-6)


def test_groups_by_length_cover_every_row_once_longest_first():
    lengths = [5, 200, 17, 200, 1, 64, 128, 3, 90]
    groups = groups_by_length(lengths, 4)
    assert [len(g) for g in groups] == [4, 4, 1]
    assert sorted(np.concatenate(groups).tolist()) == list(range(len(lengths)))
    spans = [[lengths[i] for i in g] for g in groups]
    assert all(min(a) >= max(b) for a, b in zip(spans, spans[1:], strict=False))
    assert groups_by_length([], 4) == []


_GROWTH = textwrap.dedent("""
    import desktop  # sets the oneDNN cache cap unless the environment names one
    from desktop.core.embed import SentenceTransformerEmbedder

    def rss_mb():
        with open("/proc/self/status") as f:
            return int(f.read().split("VmRSS:")[1].split()[0]) / 1024

    e = SentenceTransformerEmbedder()
    words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa " * 40).split()
    e.embed([" ".join(words[:200])] * 32)
    before = rss_mb()
    for n in range(120, 240, 6):  # 20 batches, each with a new sequence length
        e.embed([" ".join(words[:n])] * 32)
    print(rss_mb() - before)
""")


def _growth_mb(env: dict[str, str]) -> float:
    out = subprocess.run([sys.executable, "-c", _GROWTH], env=env, capture_output=True,
                         text=True, timeout=300, check=True)
    return float(out.stdout.split()[-1])


@needs_bf16
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_memory_stays_flat_when_every_batch_has_a_new_length():
    """oneDNN keeps a compiled kernel (with its buffers) per shape; Grounded caps that cache."""
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    capped = _growth_mb(env)
    uncapped = _growth_mb({**env, "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024"})  # oneDNN's default
    assert uncapped > 100, f"the uncapped cache grew only {uncapped:.0f} MB: test is void"
    assert capped < uncapped / 2, f"capped {capped:.0f} MB vs uncapped {uncapped:.0f} MB"

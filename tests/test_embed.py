"""The embedder: real MiniLM through ONNX Runtime against the plain numpy forward pass, real
passages in several scripts, and the folders it must refuse."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import bert_reference
import numpy as np
import pytest

from desktop.core.embedding import bert_graph
from desktop.core.embedding.embedder import OnnxEmbedder, bundled_model_path, groups_by_length
from desktop.core.errors import GroundedError


def _passages(eval_dir, n: int) -> list[str]:
    lines = (eval_dir / "squad_v1.1_dev" / "corpus.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines[:n]]


def _non_latin(eval_dir, per_lang: int) -> list[str]:
    rows = [json.loads(line) for line in
            (eval_dir / "xquad_multilingual" / "corpus.jsonl").read_text().splitlines()]
    return [r["text"] for lang in ("ar", "th", "zh", "ru") for r in
            [r for r in rows if r["lang"] == lang][:per_lang]]


@pytest.fixture(scope="module")
def weights():
    return bert_graph.BertWeights(bundled_model_path())


def test_vectors_match_the_numpy_forward_pass(embedder, weights, eval_dir):
    # Lengths from 1 to the 256-token cap, interleaved, so batching by token length reorders
    # them and pads the short ones: padding must not leak into any vector.
    short = ["hi", "a b c", "Q?", "x " * 40]
    texts = _passages(eval_dir, 4) + short + _non_latin(eval_dir, 2)
    texts = [t for pair in zip(texts[::2], texts[1::2], strict=True) for t in pair]
    ours = embedder.embed(texts)
    ref = bert_reference.embed(weights, embedder.token_ids(texts))
    assert ours.shape == (len(texts), embedder.dim) == (16, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = np.sum(ours * ref, axis=1)
    assert cos.min() >= 0.99999, cos
    # One at a time or in a batch: the same vectors.
    np.testing.assert_allclose(embedder.embed(texts[:1]), ours[:1], atol=1e-5)


ST_ENCODE = """
import json, sys, numpy as np
from sentence_transformers import SentenceTransformer
texts = json.load(open(sys.argv[1], encoding="utf-8"))
model = SentenceTransformer(sys.argv[2], device="cpu")
np.save(sys.argv[3], model.encode(texts, batch_size=4, convert_to_numpy=True,
                                  normalize_embeddings=True))
"""


def test_vectors_match_sentence_transformers_encode(embedder, eval_dir, tmp_path):
    """Against the library the model was made for (its own tokenizer, padding and pooling),
    on the bundled model, in English, Arabic, Thai, Chinese and Russian; run in a child so
    that torch never loads into the test process."""
    texts = _passages(eval_dir, 3) + ["hi", "x " * 300] + _non_latin(eval_dir, 1)
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    subprocess.run([sys.executable, "-c", ST_ENCODE, str(tmp_path / "texts.json"),
                    str(bundled_model_path()), str(tmp_path / "ref.npy")], check=True,
                   capture_output=True, text=True, timeout=240)
    ref = np.load(tmp_path / "ref.npy")
    ours = embedder.embed(texts)
    assert ref.shape == ours.shape == (len(texts), 384)
    cos = np.sum(ours * ref, axis=1)
    assert cos.min() >= 0.99999, cos


def test_long_texts_are_cut_at_the_models_max_sequence_length(embedder):
    long = "word " * 2000
    ids = embedder.token_ids([long])[0]
    assert len(ids) == embedder.max_tokens + 2 == 256
    assert embedder.embed([long]).shape == (1, 384)
    assert len(embedder.tokenizer.encode(long).ids) > 2000  # counting is never truncated


def test_similar_texts_are_nearer_than_unrelated_ones(embedder):
    a, b, c = embedder.embed(["The lease requires ninety days' notice.",
                              "How much notice does the lease need?",
                              "Photosynthesis makes glucose from light."])
    assert a @ b > a @ c + 0.3


def test_empty_input_gives_an_empty_matrix(embedder):
    assert embedder.embed([]).shape == (0, 384)


def test_pooling_modes_follow_the_folder(tmp_path, weights):
    folder = tmp_path / "cls-model"
    shutil.copytree(bundled_model_path(), folder)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 384, "pooling_mode_cls_token": True,
         "pooling_mode_mean_tokens": False}))
    emb = OnnxEmbedder(str(folder), threads=1)
    texts = ["The first token's state.", "Another sentence, longer than the first one is."]
    ours = emb.embed(texts)
    assert emb.pooling == "cls"
    w = bert_graph.BertWeights(folder)
    ref = np.stack([bert_reference.hidden_states(w, ids)[0] for ids in emb.token_ids(texts)])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert np.sum(ours * ref, axis=1).min() >= 0.99999


@pytest.mark.parametrize("change, message", [
    ({"model_type": "mpnet"}, "a mpnet model"),
    ({"hidden_act": "relu"}, "activation 'relu'"),
])
def test_folders_it_cannot_run_are_refused_clearly(tmp_path, change, message):
    folder = tmp_path / "other"
    shutil.copytree(bundled_model_path(), folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(cfg | change))
    with pytest.raises(GroundedError, match=message):
        OnnxEmbedder(str(folder)).embed(["x"])


def test_damaged_weights_are_a_clear_error(tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(bundled_model_path(), folder)
    (folder / "model.safetensors").write_bytes(b"\0" * 100)
    with pytest.raises(GroundedError, match="cannot read the weights"):
        OnnxEmbedder(str(folder)).embed(["x"])


def test_not_a_model_folder(tmp_path):
    with pytest.raises(GroundedError, match="not a sentence-transformers model folder"):
        OnnxEmbedder(str(tmp_path))


def test_groups_by_length_cover_every_row_once_longest_first():
    lengths = [5, 200, 17, 200, 1, 64, 128, 3, 90]
    groups = groups_by_length(lengths, 4)
    assert [len(g) for g in groups] == [4, 4, 1]
    assert sorted(np.concatenate(groups).tolist()) == list(range(len(lengths)))
    spans = [[lengths[i] for i in g] for g in groups]
    assert all(min(a) >= max(b) for a, b in zip(spans, spans[1:], strict=False))
    assert groups_by_length([], 4) == []


def test_embedding_imports_neither_torch_nor_sentence_transformers():
    code = ("import sys; from desktop.core.embedding.embedder import OnnxEmbedder; "
            "OnnxEmbedder(threads=1).embed(['a sentence']); "
            "print(sorted({'torch', 'sentence_transformers', 'transformers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True).stdout
    assert out.strip() == "[]"

"""The plain float32 numpy forward pass of a BERT-family encoder: the reference the ONNX graph
(:mod:`desktop.core.embedding.bert_graph`) is checked against in tests. One text at a time, no
padding, nothing fused: slow and obvious."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from desktop.core.embedding.bert_graph import BertWeights


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _erf(x: np.ndarray) -> np.ndarray:
    """erf by Abramowitz & Stegun 7.1.26 (absolute error under 1.5e-7: below float32's)."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                           + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def _gelu(x: np.ndarray, exact: bool) -> np.ndarray:
    if exact:
        return x * 0.5 * (1.0 + _erf(x * np.float32(0.7071067811865476)))
    return 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


def hidden_states(w: BertWeights, ids: Sequence[int]) -> np.ndarray:
    """The last hidden state (tokens × hidden, float32) of one tokenized text."""
    cfg, n = w.config, len(ids)
    x = w["embeddings.word_embeddings.weight"][list(ids)] + w.positions()[:n]
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], cfg.eps)
    d = cfg.hidden // cfg.heads
    for i in range(cfg.layers):
        def lin(x: np.ndarray, name: str, i: int = i) -> np.ndarray:
            return x @ w.layer(i, f"{name}.weight").T + w.layer(i, f"{name}.bias")

        q, k, v = (lin(x, f"attention.self.{p}").reshape(n, cfg.heads, d).transpose(1, 0, 2)
                   for p in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        ctx = (scores / scores.sum(-1, keepdims=True)) @ v
        ctx = ctx.transpose(1, 0, 2).reshape(n, cfg.hidden)
        h = _layer_norm(x + lin(ctx, "attention.output.dense"),
                        w.layer(i, "attention.output.LayerNorm.weight"),
                        w.layer(i, "attention.output.LayerNorm.bias"), cfg.eps)
        up = _gelu(lin(h, "intermediate.dense"), exact=cfg.activation == "gelu")
        x = _layer_norm(h + lin(up, "output.dense"), w.layer(i, "output.LayerNorm.weight"),
                        w.layer(i, "output.LayerNorm.bias"), cfg.eps)
    return x.astype(np.float32)


def pool(hidden: np.ndarray, how: str) -> np.ndarray:
    """One text's vector from its hidden states (unnormalized)."""
    if how == "cls":
        return hidden[0]
    if how == "max":
        return hidden.max(axis=0)
    return hidden.mean(axis=0)


def embed(w: BertWeights, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
    """Unit-length float32 vectors of tokenized texts (special tokens included)."""
    vecs = np.stack([pool(hidden_states(w, ids), w.config.pooling) for ids in token_ids])
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)

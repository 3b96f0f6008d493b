"""A llama-architecture model in numpy for tuning a LoRA: the GGUF's weights dequantized,
the forward pass, and a hand-written backward pass for the LoRA pairs only (no autograd).

It works in llama.cpp's own tensor layout: the converter stored the rows of ``attn_q`` and
``attn_k`` permuted for llama.cpp's "normal" RoPE, which rotates adjacent pairs
``(x[2i], x[2i+1])``; this model rotates the same pairs, so a LoRA trained here maps into the
rows llama.cpp uses and is exported as it is (no q/k permutation). The base weights are
frozen; the backward pass carries gradients through them to the LoRA pairs
(:class:`desktop.core.tuning.lora.Lora`) of the seven projections. The arithmetic runs in the
weights' dtype (float32 from GGUF; the gradient test builds a float64 model).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop.core.errors import GroundedError
from desktop.core.tuning.lora import KINDS, Lora

ARCHITECTURE = "llama"
#: The models tune takes, as every refusal of another one says.
SCOPE = ("tune takes llama-architecture GGUF models without biases or RoPE scaling "
         "(SmolLM2, Llama, TinyLlama-style)")
#: Positions whose logits :meth:`LlamaModel.loss_and_grads` computes at a time.
LOGIT_ROWS = 128
#: Per block: the two norms and the seven projections (GGUF names without ``blk.N.``).
BLOCK_TENSORS = ("attn_norm", "ffn_norm", *KINDS)


@dataclass(frozen=True)
class Config:
    """The shapes and constants of a llama model, from its GGUF metadata."""

    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_vocab: int
    head_dim: int
    rope_base: float = 10000.0
    eps: float = 1e-5


class LlamaModel:
    """Weights by GGUF name (``token_embd``, ``output_norm``, ``output``, ``blk.N.attn_q``…,
    numpy ``(n_out, n_in)``) and the passes over them."""

    def __init__(self, config: Config, weights: dict[str, np.ndarray]) -> None:
        self.config = config
        self.w = weights
        self.dtype = weights["token_embd"].dtype

    def lora_shapes(self) -> dict[str, tuple[int, int]]:
        """The seven projections of every block, by name, with their weights' shapes."""
        return {f"blk.{i}.{k}": self.w[f"blk.{i}.{k}"].shape
                for i in range(self.config.n_layer) for k in KINDS}

    # -- forward --------------------------------------------------------------------------

    def logits(self, ids: Iterable[int], lora: Lora | None = None,
               kinds: Iterable[str] | None = None) -> np.ndarray:
        """Logits (positions × vocabulary) for one sequence: the base model (``lora`` None),
        or with the LoRA pairs of ``kinds`` acting (default all seven)."""
        ids = np.asarray(list(ids), dtype=np.int64)[None, :]
        h, _ = self._forward(ids, lora, set(KINDS if kinds is None else kinds), None, False)
        return self._head(h.reshape(-1, self.config.n_embd))

    def loss_and_grads(self, ids: np.ndarray, targets: np.ndarray, lora: Lora,
                       rng: np.random.Generator | None = None
                       ) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy over the positions with a target (``targets`` ≥ 0: the token
        that should follow; right padding has none), and its gradient for each LoRA
        tensor (by :meth:`Lora.names`). ``rng``: LoRA dropout on (training), None: off."""
        c = self.config
        h, caches = self._forward(ids, lora, set(KINDS), rng, True)
        flat = h.reshape(-1, c.n_embd)
        where = np.flatnonzero(targets.reshape(-1) >= 0)
        want = targets.reshape(-1)[where]
        if not len(where):
            raise ValueError("a batch without any target token")
        dflat = np.zeros_like(flat)
        loss = 0.0
        for s in range(0, len(where), LOGIT_ROWS):  # the full vocabulary, a few rows at once
            rows, want_s = where[s:s + LOGIT_ROWS], want[s:s + LOGIT_ROWS]
            x = flat[rows]
            xn, rstd = _rms_norm(x, self.w["output_norm"], c.eps)
            z = xn @ self.w["output"].T
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            total = p.sum(axis=1, keepdims=True)
            idx = np.arange(len(rows))
            loss -= float(np.sum(z[idx, want_s] - np.log(total[:, 0])))
            p /= total
            p[idx, want_s] -= 1.0
            p /= len(where)
            dflat[rows] = _rms_norm_back(p @ self.w["output"], x, rstd, self.w["output_norm"])
        grads: dict[str, np.ndarray] = {}
        dh = dflat.reshape(h.shape)
        for layer in reversed(range(c.n_layer)):
            dh = self._block_back(layer, dh, caches.pop(), lora, grads)
        return loss / len(where), grads

    def _head(self, flat: np.ndarray) -> np.ndarray:
        xn, _ = _rms_norm(flat, self.w["output_norm"], self.config.eps)
        return xn @ self.w["output"].T

    def _forward(self, ids: np.ndarray, lora: Lora | None, kinds: set[str],
                 rng: np.random.Generator | None, keep: bool) -> tuple[np.ndarray, list]:
        c = self.config
        b, t = ids.shape
        h = self.w["token_embd"][ids].reshape(b * t, c.n_embd)
        rope = _rope_tables(t, c.head_dim, c.rope_base, self.dtype)
        caches = []
        for layer in range(c.n_layer):
            h, cache = self._block(layer, h, (b, t), rope, lora, kinds, rng)
            if keep:
                caches.append(cache)
        return h.reshape(b, t, c.n_embd), caches

    def _lin(self, x: np.ndarray, name: str, lora: Lora | None, kinds: set[str],
             rng: np.random.Generator | None) -> tuple[np.ndarray, tuple | None]:
        """``x W^T`` plus the LoRA's ``scale · dropout(x) A^T B^T`` where it acts; returns
        what the backward pass needs (dropout mask, ``dropout(x) A^T``)."""
        y = x @ self.w[name].T
        kind = name.rsplit(".", 1)[1]
        if lora is None or kind not in kinds:
            return y, None
        a, b = lora.a[name], lora.b[name]
        mask = None
        if rng is not None and lora.dropout > 0:
            mask = rng.random(x.shape, dtype=np.float32) >= lora.dropout
            x = x * mask * np.asarray(1.0 / (1.0 - lora.dropout), x.dtype)
        z = x @ a.T
        y += (lora.scale * z) @ b.T
        return y, (mask, z)

    def _block(self, layer: int, h: np.ndarray, shape: tuple[int, int], rope, lora, kinds,
               rng) -> tuple[np.ndarray, tuple]:
        c, p = self.config, f"blk.{layer}."
        b, t = shape
        xn, rstd1 = _rms_norm(h, self.w[p + "attn_norm"], c.eps)
        q, lq = self._lin(xn, p + "attn_q", lora, kinds, rng)
        k, lk = self._lin(xn, p + "attn_k", lora, kinds, rng)
        v, lv = self._lin(xn, p + "attn_v", lora, kinds, rng)
        q = _rope(q.reshape(b, t, c.n_head, c.head_dim), rope)
        k = _rope(k.reshape(b, t, c.n_head_kv, c.head_dim), rope)
        v = v.reshape(b, t, c.n_head_kv, c.head_dim)
        att = self._attention(q, k, v)[0].reshape(b * t, -1)
        o, lo = self._lin(att, p + "attn_output", lora, kinds, rng)
        mid = h + o
        xn2, rstd2 = _rms_norm(mid, self.w[p + "ffn_norm"], c.eps)
        g, lg = self._lin(xn2, p + "ffn_gate", lora, kinds, rng)
        u, lu = self._lin(xn2, p + "ffn_up", lora, kinds, rng)
        act = _silu(g) * u
        d, ld = self._lin(act, p + "ffn_down", lora, kinds, rng)
        out = mid + d
        return out, (h, rstd1, q, k, v, att, mid, rstd2, g, u, (lq, lk, lv, lo, lg, lu, ld))

    def _attention(self, q: np.ndarray, k: np.ndarray, v: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Causal attention with grouped KV heads (query head h reads KV head h // group).
        q ``(b, t, n_head, d)``, k/v ``(b, t, n_head_kv, d)`` → ``(b, t, n_head, d)`` and the
        probabilities ``(b, kv, group, t, t)``."""
        c = self.config
        b, t = q.shape[:2]
        group = c.n_head // c.n_head_kv
        qh = q.reshape(b, t, c.n_head_kv, group, c.head_dim).transpose(0, 2, 3, 1, 4)
        kh = k.transpose(0, 2, 3, 1)[:, :, None]  # (b, kv, 1, d, t)
        vh = v.transpose(0, 2, 1, 3)[:, :, None]  # (b, kv, 1, t, d)
        s = qh @ kh
        s *= np.asarray(1.0 / np.sqrt(c.head_dim), s.dtype)
        s[..., np.triu(np.ones((t, t), dtype=bool), 1)] = -np.inf
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        out = (s @ vh).transpose(0, 3, 1, 2, 4)  # (b, t, kv, group, d)
        return out.reshape(b, t, c.n_head, c.head_dim), s

    # -- backward -------------------------------------------------------------------------

    def _lin_back(self, dy: np.ndarray, x: np.ndarray, name: str, lora: Lora, saved,
                  grads: dict[str, np.ndarray]) -> np.ndarray:
        """The gradient of ``x`` through :meth:`_lin`; the LoRA pair's gradients into
        ``grads`` (``name.lora_a`` / ``name.lora_b``)."""
        dx = dy @ self.w[name]
        if saved is None:
            return dx
        mask, z = saved
        a, b = lora.a[name], lora.b[name]
        grads[name + ".lora_b"] = (lora.scale * dy).T @ z
        dz = (lora.scale * dy) @ b
        keep = None if mask is None else mask * np.asarray(1.0 / (1.0 - lora.dropout), x.dtype)
        grads[name + ".lora_a"] = dz.T @ (x if keep is None else x * keep)
        dxl = dz @ a
        dx += dxl if keep is None else dxl * keep
        return dx

    def _block_back(self, layer: int, dout: np.ndarray, cache: tuple, lora: Lora,
                    grads: dict[str, np.ndarray]) -> np.ndarray:
        c, p = self.config, f"blk.{layer}."
        h, rstd1, q, k, v, att, mid, rstd2, g, u, saved = cache
        lq, lk, lv, lo, lg, lu, ld = saved
        b, t = q.shape[:2]
        dout = dout.reshape(b * t, c.n_embd)
        # the feed-forward half: out = mid + down(silu(gate(xn2)) * up(xn2))
        xn2 = mid * rstd2 * self.w[p + "ffn_norm"]
        sig = 1.0 / (1.0 + np.exp(-g))
        dact = self._lin_back(dout, g * sig * u, p + "ffn_down", lora, ld, grads)
        dxn2 = self._lin_back(dact * g * sig, xn2, p + "ffn_up", lora, lu, grads)
        dg = dact * u * sig * (1.0 + g * (1.0 - sig))
        dxn2 += self._lin_back(dg, xn2, p + "ffn_gate", lora, lg, grads)
        dmid = dout + _rms_norm_back(dxn2, mid, rstd2, self.w[p + "ffn_norm"])
        # the attention half: mid = h + o(attention(rope(q(xn)), rope(k(xn)), v(xn)))
        datt = self._lin_back(dmid, att, p + "attn_output", lora, lo, grads)
        dq, dk, dv = self._attention_back(datt.reshape(q.shape), q, k, v)
        rope = _rope_tables(t, c.head_dim, c.rope_base, self.dtype)
        dq = _rope(dq, rope, inverse=True).reshape(b * t, -1)
        dk = _rope(dk, rope, inverse=True).reshape(b * t, -1)
        xn = h * rstd1 * self.w[p + "attn_norm"]
        dxn = self._lin_back(dq, xn, p + "attn_q", lora, lq, grads)
        dxn += self._lin_back(dk, xn, p + "attn_k", lora, lk, grads)
        dxn += self._lin_back(dv.reshape(b * t, -1), xn, p + "attn_v", lora, lv, grads)
        return dmid + _rms_norm_back(dxn, h, rstd1, self.w[p + "attn_norm"])

    def _attention_back(self, dout: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gradients of q, k, v through :meth:`_attention` (its probabilities recomputed,
        not kept: they would take ``b·n_head·t²`` floats per layer)."""
        c = self.config
        b, t = q.shape[:2]
        group = c.n_head // c.n_head_kv
        _, prob = self._attention(q, k, v)
        qh = q.reshape(b, t, c.n_head_kv, group, c.head_dim).transpose(0, 2, 3, 1, 4)
        kh = k.transpose(0, 2, 1, 3)[:, :, None]  # (b, kv, 1, t, d)
        vh = v.transpose(0, 2, 1, 3)[:, :, None]
        do = dout.reshape(b, t, c.n_head_kv, group, c.head_dim).transpose(0, 2, 3, 1, 4)
        dv = (prob.swapaxes(-1, -2) @ do).sum(axis=2)  # (b, kv, t, d)
        dp = do @ vh.swapaxes(-1, -2)
        ds = prob * (dp - (dp * prob).sum(axis=-1, keepdims=True))
        ds *= np.asarray(1.0 / np.sqrt(c.head_dim), ds.dtype)
        dq = (ds @ kh).transpose(0, 3, 1, 2, 4).reshape(q.shape)
        dk = (ds.swapaxes(-1, -2) @ qh).sum(axis=2).transpose(0, 2, 1, 3)
        return dq, dk, dv.transpose(0, 2, 1, 3)


# -- the pieces -------------------------------------------------------------------------


def _rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    rstd = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return x * rstd * w, rstd


def _rms_norm_back(dy: np.ndarray, x: np.ndarray, rstd: np.ndarray, w: np.ndarray
                   ) -> np.ndarray:
    g = dy * w
    return rstd * g - x * (rstd ** 3) * np.mean(g * x, axis=-1, keepdims=True)


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _rope_tables(t: int, head_dim: int, base: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin ``(t, 1, head_dim / 2)`` of llama.cpp's angles ``pos · base^(-2i/d)``."""
    freq = base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angle = np.arange(t, dtype=np.float64)[:, None] * freq[None, :]
    return np.cos(angle)[:, None].astype(dtype), np.sin(angle)[:, None].astype(dtype)


def _rope(x: np.ndarray, tables: tuple[np.ndarray, np.ndarray], inverse: bool = False
          ) -> np.ndarray:
    """llama.cpp's normal RoPE on ``(b, t, heads, d)``: each adjacent pair ``(x[2i],
    x[2i+1])`` turned by its angle (``inverse``: turned back, the backward pass)."""
    cos, sin = tables
    if inverse:
        sin = -sin
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


# -- loading ----------------------------------------------------------------------------


def out_of_scope(path: Path, this: str) -> GroundedError:
    """The refusal of a model tune does not take: what it takes (:data:`SCOPE`), then what
    ``this`` one is or has."""
    return GroundedError(f"{path.name}: {SCOPE}; this one {this}")


def _unsupported(meta: dict, tensors: Iterable[str], n_head: int, n_head_kv: int,
                 head_dim: int) -> str | None:
    """What a llama-architecture model has that this tuner does not take (None: nothing)."""
    extra = sorted(n for n in tensors if n.endswith(".bias") or n == "rope_freqs.weight")
    if extra:
        what = "RoPE frequency factors" if extra[0] == "rope_freqs.weight" else "biases"
        return f"has {what} ({extra[0]})"
    if (scaling := meta.get("llama.rope.scaling.type", "none")) not in ("none", None):
        return f"has RoPE scaling ({scaling})"
    if n_head % max(n_head_kv, 1):
        return (f"has {n_head} attention heads, not a multiple of its {n_head_kv} key/value "
                "heads")
    if (rope_dims := int(meta.get("llama.rope.dimension_count", head_dim))) != head_dim:
        return f"has partial RoPE ({rope_dims} of {head_dim} dimensions per head)"
    return None


def load_gguf(path: Path) -> LlamaModel:
    """A llama-architecture GGUF as a float32 :class:`LlamaModel` (each tensor dequantized
    by ``gguf``); a GroundedError for another architecture or what this model lacks."""
    import gguf

    def refuse(reason: str) -> GroundedError:
        return GroundedError(f"{path.name}: cannot load this model for tuning ({reason})")

    try:
        reader = gguf.GGUFReader(path)
    except (OSError, ValueError) as exc:
        raise refuse(f"not readable as GGUF: {exc}") from None
    meta = {f.name: f.contents() for f in reader.fields.values()
            if not f.name.startswith("tokenizer.")}
    arch = meta.get("general.architecture")
    if arch != ARCHITECTURE:
        raise out_of_scope(path, f"is {arch}" if arch else "names no architecture")
    tensors = {t.name: t for t in reader.tensors}
    try:
        n_layer = int(meta["llama.block_count"])
        n_embd = int(meta["llama.embedding_length"])
        n_head = int(meta["llama.attention.head_count"])
        n_head_kv = int(meta.get("llama.attention.head_count_kv", n_head))
        n_ff = int(meta["llama.feed_forward_length"])
        head_dim = int(meta.get("llama.attention.key_length", n_embd // n_head))
    except (KeyError, TypeError, ValueError) as exc:
        raise refuse(f"its metadata lacks {exc}") from None
    if (unsupported := _unsupported(meta, tensors, n_head, n_head_kv, head_dim)) is not None:
        raise out_of_scope(path, unsupported)
    names = ["token_embd", "output_norm", "output"] + [
        f"blk.{i}.{n}" for i in range(n_layer) for n in BLOCK_TENSORS]
    weights: dict[str, np.ndarray] = {}
    for name in names:
        t = tensors.get(name + ".weight")
        if t is None:
            if name == "output":  # tied to the token embedding
                continue
            raise refuse(f"no tensor {name}.weight")
        try:
            a = gguf.quants.dequantize(t.data, t.tensor_type)
        except NotImplementedError:
            raise refuse(f"{t.tensor_type.name} weights ({name}) cannot be dequantized") \
                from None
        weights[name] = np.ascontiguousarray(a, dtype=np.float32).reshape(
            [int(d) for d in reversed(t.shape)] if a.ndim > 1 else -1)
    weights.setdefault("output", weights["token_embd"])
    config = Config(
        n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv, n_ff=n_ff,
        n_vocab=weights["token_embd"].shape[0], head_dim=head_dim,
        rope_base=float(meta.get("llama.rope.freq_base", 10000.0)),
        eps=float(meta.get("llama.attention.layer_norm_rms_epsilon", 1e-5)))
    if weights["blk.0.attn_q"].shape != (n_head * head_dim, n_embd):
        raise refuse("attn_q has an unexpected shape")
    return LlamaModel(config, weights)

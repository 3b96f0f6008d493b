"""The LoRA pairs tuned on a :class:`.numpy_llama.LlamaModel`, and AdamW for them.

A pair per projection, named like the GGUF tensor it adapts (``blk.3.attn_q``): ``A`` of
shape ``(r, n_in)`` initialised like peft (Kaiming-uniform with ``a = sqrt(5)``, i.e.
uniform in ±1/sqrt(n_in)), ``B`` of shape ``(n_out, r)`` zero, so a fresh LoRA changes
nothing. The projection becomes ``y = x W^T + (alpha / r) · dropout(x) A^T B^T``, which is
what llama.cpp computes for a GGUF adapter with ``adapter.lora.alpha`` = alpha at scale 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

#: The seven projections of a llama block, by their GGUF names (all are tuned).
KINDS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


@dataclass
class Lora:
    """LoRA pairs by projection name (``blk.N.kind``): ``a[name]`` (r, n_in), ``b[name]``
    (n_out, r)."""

    rank: int
    alpha: float
    dropout: float
    a: dict[str, np.ndarray] = field(default_factory=dict)
    b: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @classmethod
    def fresh(cls, shapes: Mapping[str, tuple[int, int]], rank: int, alpha: float,
              dropout: float, seed: int, dtype=np.float32) -> Lora:
        """New pairs for the projections ``shapes`` (name → (n_out, n_in) of the weight),
        seeded."""
        rng = np.random.default_rng(seed)
        lora = cls(rank, alpha, dropout)
        for name, (n_out, n_in) in shapes.items():
            bound = 1.0 / np.sqrt(n_in)
            lora.a[name] = rng.uniform(-bound, bound, (rank, n_in)).astype(dtype)
            lora.b[name] = np.zeros((n_out, rank), dtype=dtype)
        return lora

    def names(self) -> list[str]:
        """The trained tensors as the adapter names them (``blk.0.attn_q.lora_a``…)."""
        return [f"{n}.lora_{ab}" for n in self.a for ab in "ab"]

    def tensor(self, name: str) -> np.ndarray:
        """A tensor by :meth:`names`."""
        base, ab = name.rsplit(".lora_", 1)
        return (self.a if ab == "a" else self.b)[base]


class AdamW:
    """torch's AdamW (betas 0.9, 0.999; eps 1e-8; bias-corrected), in place on the tensors
    of a :class:`Lora`, weight decay 0 as tuning uses it."""

    def __init__(self, lora: Lora, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self.lora, self.betas, self.eps, self.weight_decay = lora, betas, eps, weight_decay
        self.m = {n: np.zeros_like(lora.tensor(n)) for n in lora.names()}
        self.v = {n: np.zeros_like(lora.tensor(n)) for n in lora.names()}
        self.t = 0

    def step(self, grads: Mapping[str, np.ndarray], lr: float) -> None:
        b1, b2 = self.betas
        self.t += 1
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for name, g in grads.items():
            p, m, v = self.lora.tensor(name), self.m[name], self.v[name]
            if self.weight_decay:
                p *= 1 - lr * self.weight_decay
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= (lr / c1) * m / (np.sqrt(v / c2) + self.eps)

"""A LoRA trained on the numpy model (:mod:`tune_model`) → a GGUF LoRA adapter, and the
self-check that compares what llama.cpp makes of it with what the numpy model computed.

The LoRA is trained in llama.cpp's own tensor layout, so its pairs are written as they are.
Two traps remain, each caught by :func:`judge` (and each by a test):

1. The rows of ``attn_q`` and ``attn_k``: llama.cpp's converter permutes them for the llama
   architecture (the rotary halves interleaved). A LoRA trained on a model that undid that
   (transformers does) would need its ``lora_b`` permuted the same way; one trained here
   must not be: a ``lora_b`` in the wrong row order acts like noise on llama.cpp's side.
   :func:`permute_rows` writes that wrong order on purpose, for the test.
2. llama.cpp scales a pair by ``adapter.lora.alpha / rank × scale``, the LoRA here by
   ``alpha / rank``: write the LoRA's alpha, or the change is scaled wrongly.

Trap 1 hides in the whole adapter's logits (q/k are two of seven projections, so the other
five carry the change), hence the check also runs on the q/k pairs alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from desktop.core.model.adapters import write_adapter
from desktop.core.tuning.lora import KINDS, Lora

#: The projections whose rows the llama converter permutes.
QK = ("attn_q", "attn_k")

#: The self-check's limits. ``MIN_LOGIT_CORRELATION`` on the tuned logits themselves (the base
#: models alone differ a little: Q4_1 weights dequantized on the numpy side, 8-bit activations
#: on llama.cpp's); the *change* the adapter makes (tuned − base) is compared too, being far
#: more sensitive: its correlation (``MIN_CHANGE_CORRELATION``) and scale (least-squares slope
#: of llama.cpp's change on the numpy model's, ``CHANGE_SCALE``), and the q/k pairs' change
#: alone (``MIN_QK_CORRELATION``). Each limit lies between what right exports and wrong ones
#: (q/k rows permuted, alpha = rank) score on the bundled model: ARCHITECTURE.md, "Tuning".
MIN_LOGIT_CORRELATION = 0.99
MIN_CHANGE_CORRELATION = 0.8
MIN_QK_CORRELATION = 0.5
CHANGE_SCALE = (0.75, 1.33)


def permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute`` on the output rows of a q or k matrix (or of its
    lora_b): per head, the two rotary halves interleaved."""
    n_out = w.shape[0]
    return (w.reshape(n_head, 2, n_out // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def lora_tensors(lora: Lora, n_head: int, n_head_kv: int, *, permute_qk: bool = False,
                 only: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The LoRA pairs by GGUF tensor name: ``<tensor>.weight.lora_a`` as numpy ``(r, n_in)``,
    ``.weight.lora_b`` as ``(n_out, r)``, float32. ``permute_qk``: the q/k ``lora_b`` rows
    permuted (:func:`permute_rows`: a wrong export, only to test the trap); ``only``: the
    projection kinds to export (``attn_q``…; default all)."""
    kinds = set(only) if only is not None else set(KINDS)
    out: dict[str, np.ndarray] = {}
    for name in lora.a:
        kind = name.rsplit(".", 1)[-1]
        if kind not in kinds:
            continue
        b = lora.b[name]
        if permute_qk and kind in QK:
            b = permute_rows(b, n_head if kind == "attn_q" else n_head_kv)
        out[f"{name}.weight.lora_a"] = np.ascontiguousarray(lora.a[name], dtype=np.float32)
        out[f"{name}.weight.lora_b"] = np.ascontiguousarray(b, dtype=np.float32)
    return out


def write_gguf_lora(path: Path, architecture: str, tensors: Mapping[str, np.ndarray],
                    alpha: float, name: str) -> Path:
    """Write the adapter (whole or not at all: :func:`write_adapter` renames a temp file)."""
    return write_adapter(path, architecture, tensors, alpha=alpha, name=name)


def _sums(x: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """n, Σx, Σy, Σx², Σy², Σxy in float64, 16 rows at a time (whole float64 copies of the
    logits would add hundreds of MB to the self-check's peak)."""
    x = np.asarray(x)
    x2 = x.reshape(x.shape[0], -1) if x.ndim > 1 else x.reshape(1, -1)
    y2 = np.asarray(y).reshape(x2.shape)
    out = np.zeros(5)
    for i in range(0, x2.shape[0], 16):
        a = x2[i:i + 16].astype(np.float64).ravel()
        b = y2[i:i + 16].astype(np.float64).ravel()
        out += (a.sum(), b.sum(), a @ a, b @ b, a @ b)
    return (float(x2.size), *map(float, out))


def _rms(x: np.ndarray) -> float:
    n, _, _, sxx, _, _ = _sums(x, x)
    return float(np.sqrt(sxx / n)) if n else 0.0


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two arrays taken whole (0.0 when either is constant)."""
    n, sx, sy, sxx, syy, sxy = _sums(x, y)
    vx, vy = sxx - sx * sx / n, syy - sy * sy / n
    if vx <= 1e-12 * sxx or vy <= 1e-12 * syy:  # constant, up to rounding
        return 0.0
    return float((sxy - sx * sy / n) / np.sqrt(vx * vy))


def slope(reference: np.ndarray, other: np.ndarray) -> float:
    """Least-squares scale of ``other`` on ``reference`` (1.0: the same size of change)."""
    _, _, _, srr, _, sro = _sums(reference, other)
    return float(sro / srr) if srr > 0 else 0.0


@dataclass(frozen=True)
class SelfCheck:
    """The numpy model + LoRA against llama.cpp + the exported adapter, on the same tokens."""

    tokens: int
    base_correlation: float  # the two base models (the noise floor)
    logit_correlation: float  # the tuned models
    change_correlation: float  # tuned − base, the whole adapter
    change_scale: float  # llama.cpp's change / the numpy model's (least squares)
    qk_change_correlation: float  # tuned − base with only the q/k pairs
    qk_change_rms: float  # how much the q/k pairs change the logits (numpy model)
    noise_rms: float  # how much the two base models differ (judged only above this)
    passed: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(base: np.ndarray, tuned: np.ndarray, qk: np.ndarray,
          ll_base: np.ndarray, ll_tuned: np.ndarray, ll_qk: np.ndarray) -> SelfCheck:
    """Compare logits (positions × vocabulary) of the base, tuned and q/k-only models from
    the numpy model (``base``, ``tuned``, ``qk``) and llama.cpp (``ll_*``); see the limits
    above."""
    change, ll_change = tuned - base, ll_tuned - ll_base
    check = dict(tokens=int(base.shape[0]),
                 base_correlation=correlation(base, ll_base),
                 logit_correlation=correlation(tuned, ll_tuned),
                 change_correlation=correlation(change, ll_change),
                 change_scale=slope(change, ll_change),
                 qk_change_correlation=correlation(qk - base, ll_qk - ll_base),
                 qk_change_rms=_rms(qk - base), noise_rms=_rms(ll_base - base))
    low, high = CHANGE_SCALE
    reasons = []
    if check["logit_correlation"] < MIN_LOGIT_CORRELATION:
        reasons.append(f"its logits correlate {check['logit_correlation']:.4f} with the tuned "
                       f"model's (needs {MIN_LOGIT_CORRELATION})")
    if check["change_correlation"] < MIN_CHANGE_CORRELATION:
        reasons.append(f"the change it makes correlates {check['change_correlation']:.3f} with "
                       f"the tuned model's (needs {MIN_CHANGE_CORRELATION})")
    # A q/k change below the noise between the two base models cannot be judged (and
    # matters little): its correlation would be noise too.
    if (check["qk_change_rms"] >= check["noise_rms"]
            and check["qk_change_correlation"] < MIN_QK_CORRELATION):
        reasons.append(f"its attention q/k part correlates {check['qk_change_correlation']:.3f}"
                       f" (needs {MIN_QK_CORRELATION}: are the q/k rows in llama.cpp's order?)")
    if not low <= check["change_scale"] <= high:
        reasons.append(f"the change it makes is {check['change_scale']:.2f}× the tuned "
                       f"model's (needs {low}–{high}: is adapter.lora.alpha right?)")
    return SelfCheck(**check, passed=not reasons, reason="; ".join(reasons))

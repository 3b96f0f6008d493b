"""A BERT-family sentence-transformers folder → an ONNX graph of ONNX Runtime's fused operators.

The graph is written directly from the folder's ``model.safetensors`` (no torch, no export):
``EmbedLayerNormalization`` (word + position embeddings, LayerNorm, and the lengths of the
right-padded rows), then per layer ``Attention`` (q, k and v in one matrix product),
``SkipLayerNormalization`` (the residual, the bias and the LayerNorm in one pass), ``BiasGelu``
and ``SkipLayerNormalization`` again: the layout ONNX Runtime's own transformer optimizer makes
of an exported BERT. Its output is the last hidden state; pooling happens in numpy.

The token-type embedding is folded into the position embeddings: Grounded always embeds one
segment (type 0), so its row is a constant added to every position. RoBERTa-style models
(position ids starting after the padding id) have their first position rows sliced off.

:class:`BertWeights` also feeds ``tests/bert_reference.py``, the plain numpy forward pass the
tests compare the graph with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop.core.errors import GroundedError

#: Bumped whenever the graph changes: the cached ONNX files carry it in their names.
GRAPH_VERSION = 1
#: Model families whose encoder is BERT's (the names in ``config.json``'s ``model_type``).
FAMILIES = ("bert", "roberta", "xlm-roberta", "camembert")
#: Activations and their fused operator (``gelu``: the exact, erf-based one).
ACTIVATIONS = {"gelu": "BiasGelu", "gelu_new": "FastGelu", "gelu_pytorch_tanh": "FastGelu"}
#: sentence-transformers' pooling flags (``1_Pooling/config.json``) → our pooling names.
POOLINGS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
            "pooling_mode_max_tokens": "max"}


@dataclass(frozen=True)
class BertConfig:
    """What the graph needs from ``config.json`` and the pooling module."""

    family: str
    layers: int
    hidden: int
    heads: int
    activation: str
    eps: float
    position_offset: int  # rows of the position table before position 0 (RoBERTa: pad + 1)
    pooling: str  # "mean", "cls" or "max"

    @classmethod
    def read(cls, folder: Path) -> BertConfig:
        try:
            cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GroundedError(f"{folder}: no readable config.json ({exc})") from None
        family = str(cfg.get("model_type", ""))
        if family not in FAMILIES:
            raise GroundedError(
                f"{folder}: a {family or 'unknown'} model; Grounded runs BERT-family "
                f"sentence-transformers models ({', '.join(FAMILIES)})")
        act = str(cfg.get("hidden_act", "gelu"))
        if act not in ACTIVATIONS:
            raise GroundedError(f"{folder}: activation {act!r} is not supported; Grounded runs "
                                "sentence-transformers models with GELU (MiniLM, BGE, E5, GTE)")
        offset = int(cfg.get("pad_token_id", 1)) + 1 if family != "bert" else 0
        return cls(family=family, layers=int(cfg["num_hidden_layers"]),
                   hidden=int(cfg["hidden_size"]), heads=int(cfg["num_attention_heads"]),
                   activation=act, eps=float(cfg.get("layer_norm_eps", 1e-12)),
                   position_offset=offset, pooling=read_pooling(folder))


def read_pooling(folder: Path) -> str:
    """The sentence-transformers pooling mode of ``folder`` (mean when it names none)."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "mean"
    if any("Dense" in m.get("type", "") for m in modules):
        raise GroundedError(f"{folder}: models with a Dense layer after pooling are not "
                            "supported; Grounded runs a transformer with pooling and "
                            "normalisation only (MiniLM, BGE, E5, GTE)")
    pool = next((m for m in modules if "Pooling" in m.get("type", "")), None)
    if pool is None:
        return "mean"
    try:
        cfg = json.loads((folder / pool["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError):
        return "mean"
    modes = [mode for key, mode in POOLINGS.items() if cfg.get(key)]
    others = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v
              and k not in POOLINGS]
    if len(modes) != 1 or others:
        named = ", ".join([*modes, *others]) or "none"
        raise GroundedError(f"{folder}: pooling {named} is not supported (one of mean, "
                            "cls or max)")
    return modes[0]


class BertWeights:
    """The folder's weights as float32 numpy arrays, by their BERT names without the model
    prefix (``embeddings.word_embeddings.weight``, ``encoder.layer.0.…``)."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file

        self.config = BertConfig.read(folder)
        path = folder / "model.safetensors"
        if not path.is_file():
            raise GroundedError(f"{folder}: no model.safetensors (other weight formats need "
                                "converting first)")
        try:
            raw = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways
            raise GroundedError(f"{path}: cannot read the weights ({exc})") from None
        self.tensors = {_strip(k): v.astype(np.float32) for k, v in raw.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.tensors[name]
        except KeyError:
            raise GroundedError(f"the model has no tensor {name!r}") from None

    def layer(self, i: int, name: str) -> np.ndarray:
        return self[f"encoder.layer.{i}.{name}"]

    def positions(self) -> np.ndarray:
        """Position embeddings from position 0 on, with the token-type row folded in."""
        pos = self["embeddings.position_embeddings.weight"][self.config.position_offset:]
        types = self.tensors.get("embeddings.token_type_embeddings.weight")
        return pos + types[0] if types is not None else pos


def _strip(name: str) -> str:
    for prefix in ("bert.", "roberta.", "model."):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def build(weights: BertWeights):
    """The ONNX model (an ``onnx.ModelProto``) of the encoder: inputs ``input_ids`` and
    ``attention_mask`` (int32, batch × sequence, right-padded), output ``hidden``."""
    from onnx import TensorProto, helper, numpy_helper

    cfg, w = weights.config, weights
    inits, nodes = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        """One of ONNX Runtime's fused operators (domain com.microsoft)."""
        nodes.append(helper.make_node(op, inputs, [output], name=output,
                                      domain="com.microsoft", **attrs))
        return output

    def matmul(a: str, b: str, output: str) -> str:
        nodes.append(helper.make_node("MatMul", [a, b], [output], name=output))
        return output

    nodes.append(helper.make_node(
        "EmbedLayerNormalization",
        ["input_ids", "", const("word", w["embeddings.word_embeddings.weight"]),
         const("position", w.positions()), "",
         const("emb_gamma", w["embeddings.LayerNorm.weight"]),
         const("emb_beta", w["embeddings.LayerNorm.bias"]), "attention_mask"],
        ["x0", "lengths"], name="embed", domain="com.microsoft", epsilon=cfg.eps))
    act = ACTIVATIONS[cfg.activation]
    x = "x0"
    for i in range(cfg.layers):
        def lw(name: str, i: int = i) -> np.ndarray:
            return w.layer(i, name)

        qkv = np.concatenate([lw(f"attention.self.{p}.weight").T for p in
                              ("query", "key", "value")], axis=1)
        qkv_bias = np.concatenate([lw(f"attention.self.{p}.bias") for p in
                                   ("query", "key", "value")])
        ctx = node("Attention", [x, const(f"qkv{i}", qkv), const(f"qkv_b{i}", qkv_bias),
                                 "lengths"], f"ctx{i}", num_heads=cfg.heads)
        out = matmul(ctx, const(f"wo{i}", lw("attention.output.dense.weight").T), f"o{i}")
        h = node("SkipLayerNormalization",
                 [out, x, const(f"ln1_g{i}", lw("attention.output.LayerNorm.weight")),
                  const(f"ln1_b{i}", lw("attention.output.LayerNorm.bias")),
                  const(f"bo{i}", lw("attention.output.dense.bias"))], f"h{i}",
                 epsilon=cfg.eps)
        up = matmul(h, const(f"wi{i}", lw("intermediate.dense.weight").T), f"up{i}")
        up = node(act, [up, const(f"bi{i}", lw("intermediate.dense.bias"))], f"act{i}")
        down = matmul(up, const(f"wd{i}", lw("output.dense.weight").T), f"down{i}")
        x = node("SkipLayerNormalization",
                 [down, h, const(f"ln2_g{i}", lw("output.LayerNorm.weight")),
                  const(f"ln2_b{i}", lw("output.LayerNorm.bias")),
                  const(f"bd{i}", lw("output.dense.bias"))], f"x{i + 1}", epsilon=cfg.eps)
    nodes.append(helper.make_node("Identity", [x], ["hidden"], name="hidden"))
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", "seq"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT32, ["batch", "seq"])
    hidden = helper.make_tensor_value_info("hidden", TensorProto.FLOAT,
                                           ["batch", "seq", cfg.hidden])
    graph = helper.make_graph(nodes, "encoder", [ids, mask], [hidden], initializer=inits)
    return helper.make_model(graph, producer_name="grounded", opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])


"""GGUF LoRA adapters: checked with ``gguf`` before llama.cpp reads them, and written for tests.

llama.cpp's loader (``llama_adapter_lora_init``) is not a safe first reader. It refuses a wrong
``general.type``, architecture, ``adapter.type``, a tensor the model lacks or a wrong shape by
returning NULL, which llama-cpp-python's ``Llama`` tests with ``is None`` (a NULL pointer object
is not None: the first decode then segfaults). And it aborts the process (``GGML_ASSERT``) on a
``general.type`` / ``adapter.type`` that is not a string, an ``adapter.lora.alpha`` that is not
a float32, and at the first decode on any ``token_embd`` LoRA for a model whose output layer is
token_embd (tied embeddings, as in the bundled model), or a token_embd pair whose ranks differ.
:func:`check_adapter` reads the file with ``gguf`` first and turns each of these into an
:class:`AdapterError` that names the file and the mismatch; the engine attaches only what passed
(and still tests the pointer).

Shapes are in ggml ``ne`` order, as ``GGUFReader`` and ``ModelInfo.tensors`` give them: a
weight ``W`` is ``[n_in, n_out]``; its ``lora_a`` is ``[n_in, r]`` and ``lora_b`` is
``[r, n_out]`` (numpy: A ``(r, n_in)``, B ``(n_out, r)``); token_embd's pair is laid out the
other way (A ``[r, n_vocab]``, B ``[r, n_embd]``). llama.cpp adds ``scale * alpha / r * B A x``
to ``W x`` (``scale * B A x`` when alpha is 0 or absent).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import gguf
import numpy as np

from desktop.core.errors import AdapterError
from desktop.core.model.modelfile import ModelInfo, check_model_file, read_gguf_header

__all__ = ["PROJECTIONS", "AdapterError", "AdapterInfo", "check_adapter", "write_adapter",
           "write_lora"]

# The seven linear projections of a llama-style block (what a tuned LoRA usually targets).
PROJECTIONS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
_Q = gguf.GGMLQuantizationType
# What llama.cpp's convert_lora_to_gguf.py writes; ggml multiplies each with the activations.
LORA_TYPES = frozenset({_Q.F32, _Q.F16, _Q.BF16, _Q.Q8_0})
_STRING, _F32 = gguf.GGUFValueType.STRING, gguf.GGUFValueType.FLOAT32


@dataclass(frozen=True)
class AdapterInfo:
    """A LoRA adapter that :func:`check_adapter` found to fit a model."""

    path: Path
    name: str
    architecture: str
    alpha: float  # adapter.lora.alpha; 0.0 when absent (llama.cpp then ignores the rank)
    ranks: tuple[int, ...]  # the distinct ranks of its pairs, ascending
    targets: tuple[str, ...] = field(repr=False)  # the model tensors it changes
    size_bytes: int = 0
    mtime_ns: int = 0

    @property
    def rank(self) -> int:
        return self.ranks[-1]

    def changed(self) -> bool:
        """Whether the file on disk is no longer the one checked (or is gone)."""
        try:
            st = self.path.stat()
        except OSError:
            return True
        return (st.st_size, st.st_mtime_ns) != (self.size_bytes, self.mtime_ns)


@functools.lru_cache(maxsize=8)
def _model_info(path: Path, _size: int, _mtime_ns: int) -> ModelInfo:
    return check_model_file(path, check_memory=False)


def _model(model: ModelInfo | str | Path) -> ModelInfo:
    """``model`` itself, or the header of the model file (read once per file version)."""
    if isinstance(model, ModelInfo):
        return model
    path = Path(model).expanduser().resolve()
    try:
        st = path.stat()
    except OSError:
        return check_model_file(path, check_memory=False)  # its own clear error
    return _model_info(path, st.st_size, st.st_mtime_ns)


def _ne(shape: Iterable[int]) -> tuple[int, ...]:
    """A ggml shape padded with 1s to four dimensions (ggml's own view of it)."""
    dims = tuple(int(d) for d in shape)
    return dims + (1,) * (4 - len(dims))


def _fmt(dims: Iterable[int]) -> str:
    dims = list(dims)
    while len(dims) > 2 and dims[-1] == 1:
        dims.pop()
    return "[" + ", ".join(str(d) for d in dims) + "]"


_Pair = dict[str, gguf.ReaderTensor]  # a LoRA pair: "lora_a" and "lora_b" → its tensor


@dataclass
class _Reading:
    """What :func:`check_adapter` has learned of a file so far, handed from check to check."""

    path: Path
    model: ModelInfo
    size: int = 0
    mtime_ns: int = 0
    magic: bytes = b""
    meta: dict[str, object] = field(default_factory=dict)
    byte_order: str = "I"
    fields: dict[str, gguf.ReaderField] = field(default_factory=dict)
    tensors: list[gguf.ReaderTensor] = field(default_factory=list)
    architecture: str = ""
    alpha: float = 0.0  # adapter.lora.alpha; 0.0 when absent
    pairs: dict[str, _Pair] = field(default_factory=dict)  # by the model tensor they change
    ranks: set[int] = field(default_factory=set)

    @property
    def model_name(self) -> str:
        return self.model.path.name

    def text(self, key: str) -> str:
        """The string value of ``key`` ("" when absent); an AdapterError when not a string."""
        f = self.fields.get(key)
        if f is None:
            return ""
        if f.types != [_STRING]:
            raise AdapterError(f"{self.path}: {key} is a {f.types[0].name.lower()}, not a "
                               "string")
        return str(f.contents())


# -- the checks, in the order check_adapter runs them -------------------------------------


def _is_readable_file(c: _Reading) -> None:
    """The path is a file this process can read (its size, time and first bytes noted)."""
    if c.path.is_dir():
        raise AdapterError(f"{c.path} is a folder, not a LoRA adapter file")
    try:
        st = c.path.stat()
        with open(c.path, "rb") as f:
            c.magic = f.read(4)
    except FileNotFoundError:
        raise AdapterError(f"{c.path}: no such file") from None
    except OSError as exc:
        raise AdapterError(f"{c.path}: cannot read it ({exc.strerror or exc})") from None
    c.size, c.mtime_ns = st.st_size, st.st_mtime_ns


def _is_gguf(c: _Reading) -> None:
    """The file starts with the GGUF magic."""
    if c.magic != gguf.GGUF_MAGIC.to_bytes(4, "little"):
        raise AdapterError(f"{c.path} is not a GGUF file (a LoRA adapter is a .gguf file)")


def _header_is_whole(c: _Reading) -> None:
    """The header parses and its tensors fit in the file (a fast, bounds-checked walk)."""
    # Clear words for a cut-short file, and a model file is turned away before GGUFReader
    # parses its whole vocabulary.
    try:
        c.meta, _, needed = read_gguf_header(c.path)
    except (ValueError, OSError) as exc:
        raise AdapterError(f"{c.path} is truncated or damaged ({exc})") from None
    if needed > c.size:
        raise AdapterError(f"{c.path} is truncated ({c.size:,} bytes; its tensors need "
                           f"{needed:,})")


def _type_is_text(c: _Reading) -> None:
    """general.type, when present, is a string (llama.cpp aborts on anything else)."""
    if not isinstance(kind := c.meta.get(gguf.Keys.General.TYPE), str | None):
        raise AdapterError(f"{c.path} is damaged (general.type is {kind!r}, not a string)")


def _is_adapter(c: _Reading) -> None:
    """general.type is 'adapter' (not a model or another kind of file)."""
    if (kind := c.meta.get(gguf.Keys.General.TYPE)) != "adapter":
        what = "a model" if kind in ("model", None) else f"a {kind!r} file"
        raise AdapterError(f"{c.path} is {what}, not a LoRA adapter (general.type is "
                           f"{kind or 'missing'}; an adapter's is 'adapter')")


def _reader_parses(c: _Reading) -> None:
    """gguf's reader parses the file (its fields and tensor table noted)."""
    try:
        reader = gguf.GGUFReader(c.path)
    except Exception as exc:  # noqa: BLE001 - gguf raises ValueError, IndexError… on damage
        raise AdapterError(f"{c.path} is damaged ({exc})") from None
    c.byte_order, c.fields, c.tensors = reader.byte_order, reader.fields, reader.tensors


def _is_little_endian(c: _Reading) -> None:
    """The file is little-endian, as llama.cpp reads it."""
    if c.byte_order != "I":
        raise AdapterError(f"{c.path} is a big-endian GGUF; llama.cpp here reads little-endian")


def _is_lora(c: _Reading) -> None:
    """adapter.type is 'lora'."""
    if (adapter_type := c.text(gguf.Keys.Adapter.TYPE)) != "lora":
        raise AdapterError(f"{c.path} is a {adapter_type or 'untyped'} adapter, not a LoRA "
                           "(adapter.type must be 'lora')")


def _architecture_matches(c: _Reading) -> None:
    """general.architecture is the model's."""
    c.architecture = c.text(gguf.Keys.General.ARCHITECTURE)
    if c.architecture != c.model.architecture:
        raise AdapterError(f"{c.path} is an adapter for {c.architecture or 'an unnamed'} "
                           f"architecture models; {c.model_name} is {c.model.architecture}")


def _alpha_is_float32(c: _Reading) -> None:
    """adapter.lora.alpha, when present, is a float32 (llama.cpp aborts on anything else)."""
    if (f := c.fields.get(gguf.Keys.Adapter.LORA_ALPHA)) is None:
        return
    if f.types != [_F32]:
        raise AdapterError(f"{c.path}: adapter.lora.alpha is a {f.types[0].name.lower()}; "
                           "llama.cpp needs a float32")
    c.alpha = float(f.contents())


def _alpha_is_finite(c: _Reading) -> None:
    """adapter.lora.alpha is a finite number."""
    if not math.isfinite(c.alpha):
        raise AdapterError(f"{c.path}: adapter.lora.alpha is {c.alpha}")


def _invocation_tokens_are_uint32(c: _Reading) -> None:
    """An aLoRA's invocation tokens, when present, are an array of uint32."""
    f = c.fields.get(gguf.Keys.Adapter.ALORA_INVOCATION_TOKENS)
    if f is not None and f.types != [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT32]:
        raise AdapterError(f"{c.path}: {f.name} must be an array of uint32")


def _tensors_are_lora_halves(c: _Reading) -> None:
    """Each tensor lies within the file and is a LoRA half (norms aside), grouped by pair."""
    for t in c.tensors:
        if t.data_offset + t.n_bytes > c.size:
            raise AdapterError(f"{c.path} is truncated ({c.size:,} bytes; tensor {t.name} "
                               f"ends at byte {t.data_offset + t.n_bytes:,})")
        base, _, part = t.name.rpartition(".")
        if base and part in ("lora_a", "lora_b"):
            c.pairs.setdefault(base, {})[part] = t
        elif not t.name.endswith("_norm.weight"):  # llama.cpp skips norm tensors too
            raise AdapterError(f"{c.path}: tensor {t.name} is not a LoRA tensor "
                               "(names end in .lora_a or .lora_b)")


def _has_pairs(c: _Reading) -> None:
    """There is at least one LoRA pair."""
    if not c.pairs:
        raise AdapterError(f"{c.path} has no LoRA tensors")


def _pairs_fit(c: _Reading) -> None:
    """Each pair, in name order, passes every check of :data:`_PAIR_CHECKS`."""
    for base, pair in sorted(c.pairs.items()):
        for check in _PAIR_CHECKS:
            check(c, base, pair)


# -- the checks of one pair (``base``: the model tensor it changes) ------------------------


def _pair_is_whole(c: _Reading, base: str, pair: _Pair) -> None:
    """The pair has both halves."""
    if len(pair) != 2:
        missing = "lora_b" if "lora_a" in pair else "lora_a"
        raise AdapterError(f"{c.path}: {base} has no {missing} (a LoRA pair needs both)")


def _pair_types_fit(c: _Reading, base: str, pair: _Pair) -> None:
    """Both halves are of a type ggml multiplies with, in whole blocks."""
    for t in (pair["lora_a"], pair["lora_b"]):
        if t.tensor_type not in LORA_TYPES:
            raise AdapterError(f"{c.path}: {t.name} is {t.tensor_type.name}; an adapter "
                               "tensor must be F32, F16, BF16 or Q8_0")
        if int(t.shape[0]) % gguf.GGML_QUANT_SIZES[t.tensor_type][0]:
            raise AdapterError(f"{c.path}: {t.name} {_fmt(t.shape)} does not fill whole "
                               f"{t.tensor_type.name} blocks")


def _model_has_tensor(c: _Reading, base: str, pair: _Pair) -> None:
    """The model has the tensor the pair changes."""
    if base not in c.model.tensors:
        raise AdapterError(f"{c.path}: the model {c.model_name} has no tensor {base} "
                           "(an adapter for another model?)")


def _embedding_is_not_tied(c: _Reading, base: str, pair: _Pair) -> None:
    """A token_embd pair is for a model with its own output layer."""
    # llama.cpp otherwise multiplies by token_embd again as the output layer, where this
    # pair's layout cannot fit: the first decode aborts (seen with the bundled model).
    if base == "token_embd.weight" and "output.weight" not in c.model.tensors:
        raise AdapterError(f"{c.path}: {c.model_name} uses token_embd as its output layer "
                           "too; llama.cpp cannot apply a LoRA on token_embd to it")


def _pair_shapes_fit(c: _Reading, base: str, pair: _Pair) -> None:
    """The halves' shapes fit the model's tensor with one rank ≥ 1 (the rank noted)."""
    w, na, nb = _ne(c.model.tensors[base]), _ne(pair["lora_a"].shape), _ne(pair["lora_b"].shape)
    if base.endswith("token_embd.weight"):  # A [r, n_vocab], B [r, n_embd]
        rank, fits = na[0], (na[1] == w[1] and nb[1] == w[0] and nb[0] == na[0])
        want = f"lora_a [r, {w[1]}] and lora_b [r, {w[0]}]"
    else:
        rank, fits = nb[0], (na[0] == w[0] and nb[1] == w[1] and na[1] == nb[0])
        want = f"lora_a [{w[0]}, r] and lora_b [r, {w[1]}]"
    if not fits or na[2:] != w[2:] or nb[2:] != w[2:] or rank < 1:
        raise AdapterError(
            f"{c.path}: shapes do not fit the model's {base} {_fmt(w)}: lora_a is "
            f"{_fmt(na)}, lora_b is {_fmt(nb)}; expected {want} with the same r ≥ 1")
    c.ranks.add(int(rank))


#: What check_adapter checks, in order: the first that fails raises its AdapterError.
_CHECKS: tuple[Callable[[_Reading], None], ...] = (
    _is_readable_file, _is_gguf, _header_is_whole, _type_is_text, _is_adapter, _reader_parses,
    _is_little_endian, _is_lora, _architecture_matches, _alpha_is_float32, _alpha_is_finite,
    _invocation_tokens_are_uint32, _tensors_are_lora_halves, _has_pairs, _pairs_fit,
)
#: What :func:`_pairs_fit` checks of each pair, in order.
_PAIR_CHECKS: tuple[Callable[[_Reading, str, _Pair], None], ...] = (
    _pair_is_whole, _pair_types_fit, _model_has_tensor, _embedding_is_not_tied,
    _pair_shapes_fit,
)


def check_adapter(path: str | Path, model: ModelInfo | str | Path) -> AdapterInfo:
    """Check that ``path`` is a GGUF LoRA adapter that fits ``model`` (its ModelInfo or file).

    Raises :class:`AdapterError` naming the file and the problem: missing, not GGUF, truncated
    or damaged, not an adapter (a model, say), not a LoRA, another architecture, a tensor the
    model lacks, a pair with a missing half, a wrong shape or rank, an unsupported tensor type,
    a metadata value of the wrong type (the checks of :data:`_CHECKS`, in order). Only the
    header and tensor table are parsed (memory mapped): a few ms for an adapter.
    """
    c = _Reading(Path(path).expanduser(), _model(model))
    for check in _CHECKS:
        check(c)
    return _adapter_info(c)


def _adapter_info(c: _Reading) -> AdapterInfo:
    """The AdapterInfo of a file that passed every check."""
    f = c.fields.get(gguf.Keys.General.NAME)
    name = str(f.contents()) if f is not None and f.types == [_STRING] else c.path.stem
    return AdapterInfo(path=c.path.absolute(), name=name, architecture=c.architecture,
                       alpha=c.alpha, ranks=tuple(sorted(c.ranks)), targets=tuple(sorted(c.pairs)),
                       size_bytes=c.size, mtime_ns=c.mtime_ns)


def write_adapter(
    path: str | Path, architecture: str, tensors: Mapping[str, np.ndarray], *,
    alpha: float | None = None, name: str | None = None, adapter_type: str = "lora",
) -> Path:
    """Write a GGUF LoRA adapter: ``tensors`` by GGUF name (``<model tensor>.lora_a`` as numpy
    ``(r, n_in)``, ``.lora_b`` as ``(n_out, r)``; float32 or float16), ``alpha`` as
    ``adapter.lora.alpha``. Nothing is checked (tests write broken files with it). The file
    appears whole or not at all."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp, architecture)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, adapter_type)
        if alpha is not None:
            writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
        if name:
            writer.add_name(name)
        for key, array in tensors.items():
            writer.add_tensor(key, np.ascontiguousarray(array))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    os.replace(tmp, path)
    return path


def write_lora(
    model: ModelInfo | str | Path, path: str | Path, *, targets: Iterable[str] = ("attn_q",
    "attn_v"), rank: int = 8, alpha: float | None = None, magnitude: float = 0.5, seed: int = 0,
    layers: Iterable[int] | None = None, name: str | None = None,
) -> Path:
    """Write a real, random LoRA adapter for ``model`` (its ModelInfo or file) to ``path``.

    ``targets``: projection kinds matched in every block (``attn_q`` → ``blk.N.attn_q.weight``;
    :data:`PROJECTIONS` has all seven) or whole tensor names; ``layers`` limits the blocks.
    A ~ N(0, 1/n_in) and B ~ N(0, magnitude²/r), so at scale 1 and the default alpha (= rank)
    each targeted projection adds about ``magnitude`` × the RMS of its input to every output.
    It changes what the model says and teaches it nothing: for tests and benchmarks.
    """
    info = _model(model)
    if rank < 1:
        raise ValueError("rank must be at least 1")
    wanted, blocks = set(targets), None if layers is None else set(layers)

    def chosen(tensor: str) -> bool:
        parts = tensor.split(".")
        if tensor in wanted:
            return True
        return (len(parts) == 4 and parts[0] == "blk" and parts[2] in wanted
                and parts[3] == "weight" and (blocks is None or int(parts[1]) in blocks))

    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for tensor, shape in info.tensors.items():
        if not chosen(tensor):
            continue
        if len(shape) != 2 or tensor.endswith("token_embd.weight"):
            raise ValueError(f"{tensor} {list(shape)} is not a projection write_lora can target")
        n_in, n_out = shape
        tensors[f"{tensor}.lora_a"] = (rng.standard_normal((rank, n_in)) / math.sqrt(n_in)
                                       ).astype(np.float32)
        tensors[f"{tensor}.lora_b"] = (rng.standard_normal((n_out, rank)) * magnitude
                                       / math.sqrt(rank)).astype(np.float32)
    if not tensors:
        raise ValueError(f"{info.path.name} has no tensor matching {sorted(wanted)}")
    return write_adapter(path, info.architecture, tensors,
                         alpha=float(rank) if alpha is None else alpha,
                         name=name or Path(path).stem)

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import gguf
import numpy as np

from desktop.core.errors import AdapterError
from desktop.core.modelfile import ModelInfo, check_model_file, read_gguf_header

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


def check_adapter(path: str | Path, model: ModelInfo | str | Path) -> AdapterInfo:
    """Check that ``path`` is a GGUF LoRA adapter that fits ``model`` (its ModelInfo or file).

    Raises :class:`AdapterError` naming the file and the problem: missing, not GGUF, truncated
    or damaged, not an adapter (a model, say), not a LoRA, another architecture, a tensor the
    model lacks, a pair with a missing half, a wrong shape or rank, an unsupported tensor type,
    a metadata value of the wrong type. Only the header and tensor table are parsed (memory
    mapped): a few ms for an adapter.
    """
    info = _model(model)
    model_name = info.path.name
    path = Path(path).expanduser()
    if path.is_dir():
        raise AdapterError(f"{path} is a folder, not a LoRA adapter file")
    try:
        st = path.stat()
        with open(path, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise AdapterError(f"{path}: no such file") from None
    except OSError as exc:
        raise AdapterError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if magic != gguf.GGUF_MAGIC.to_bytes(4, "little"):
        raise AdapterError(f"{path} is not a GGUF file (a LoRA adapter is a .gguf file)")
    # First the fast bounds-checked header walk: clear words for a cut-short file, and a model
    # file is turned away in ~50 ms (GGUFReader parses its whole vocabulary: ~2 s).
    try:
        meta, _, needed = read_gguf_header(path)
    except (ValueError, OSError) as exc:
        raise AdapterError(f"{path} is truncated or damaged ({exc})") from None
    if needed > st.st_size:
        raise AdapterError(f"{path} is truncated ({st.st_size:,} bytes; its tensors need "
                           f"{needed:,})")
    if not isinstance(kind := meta.get(gguf.Keys.General.TYPE), str | None):
        raise AdapterError(f"{path} is damaged (general.type is {kind!r}, not a string)")
    if kind != "adapter":
        what = "a model" if kind in ("model", None) else f"a {kind!r} file"
        raise AdapterError(f"{path} is {what}, not a LoRA adapter (general.type is "
                           f"{kind or 'missing'}; an adapter's is 'adapter')")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as exc:  # noqa: BLE001 - gguf raises ValueError, IndexError… on damage
        raise AdapterError(f"{path} is damaged ({exc})") from None
    if reader.byte_order != "I":
        raise AdapterError(f"{path} is a big-endian GGUF; llama.cpp here reads little-endian")
    fields = reader.fields

    def text(key: str) -> str:
        f = fields.get(key)
        if f is None:
            return ""
        if f.types != [_STRING]:
            raise AdapterError(f"{path}: {key} is a {f.types[0].name.lower()}, not a string")
        return str(f.contents())

    if (adapter_type := text(gguf.Keys.Adapter.TYPE)) != "lora":
        raise AdapterError(f"{path} is a {adapter_type or 'untyped'} adapter, not a LoRA "
                           "(adapter.type must be 'lora')")
    arch = text(gguf.Keys.General.ARCHITECTURE)
    if arch != info.architecture:
        raise AdapterError(f"{path} is an adapter for {arch or 'an unnamed'} architecture "
                           f"models; {model_name} is {info.architecture}")
    alpha = 0.0
    if (f := fields.get(gguf.Keys.Adapter.LORA_ALPHA)) is not None:
        if f.types != [_F32]:
            raise AdapterError(f"{path}: adapter.lora.alpha is a {f.types[0].name.lower()}; "
                               "llama.cpp needs a float32")
        alpha = float(f.contents())
        if not math.isfinite(alpha):
            raise AdapterError(f"{path}: adapter.lora.alpha is {alpha}")
    if (f := fields.get(gguf.Keys.Adapter.ALORA_INVOCATION_TOKENS)) is not None and f.types != [
            gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT32]:
        raise AdapterError(f"{path}: {f.name} must be an array of uint32")

    pairs: dict[str, dict[str, gguf.ReaderTensor]] = {}
    for t in reader.tensors:
        if t.data_offset + t.n_bytes > st.st_size:
            raise AdapterError(f"{path} is truncated ({st.st_size:,} bytes; tensor {t.name} "
                               f"ends at byte {t.data_offset + t.n_bytes:,})")
        base, _, part = t.name.rpartition(".")
        if base and part in ("lora_a", "lora_b"):
            pairs.setdefault(base, {})[part] = t
        elif not t.name.endswith("_norm.weight"):  # llama.cpp skips norm tensors too
            raise AdapterError(f"{path}: tensor {t.name} is not a LoRA tensor "
                               "(names end in .lora_a or .lora_b)")
    if not pairs:
        raise AdapterError(f"{path} has no LoRA tensors")
    ranks = set()
    for base, ab in sorted(pairs.items()):
        if len(ab) != 2:
            missing = "lora_b" if "lora_a" in ab else "lora_a"
            raise AdapterError(f"{path}: {base} has no {missing} (a LoRA pair needs both)")
        a, b = ab["lora_a"], ab["lora_b"]
        for t in (a, b):
            if t.tensor_type not in LORA_TYPES:
                raise AdapterError(f"{path}: {t.name} is {t.tensor_type.name}; an adapter "
                                   "tensor must be F32, F16, BF16 or Q8_0")
            if int(t.shape[0]) % gguf.GGML_QUANT_SIZES[t.tensor_type][0]:
                raise AdapterError(f"{path}: {t.name} {_fmt(t.shape)} does not fill whole "
                                   f"{t.tensor_type.name} blocks")
        if base not in info.tensors:
            raise AdapterError(f"{path}: the model {model_name} has no tensor {base} "
                               "(an adapter for another model?)")
        w, na, nb = _ne(info.tensors[base]), _ne(a.shape), _ne(b.shape)
        if base == "token_embd.weight" and "output.weight" not in info.tensors:
            # llama.cpp then multiplies by token_embd again as the output layer, where this
            # pair's layout cannot fit: the first decode aborts (seen with the bundled model).
            raise AdapterError(f"{path}: {model_name} uses token_embd as its output layer too; "
                               "llama.cpp cannot apply a LoRA on token_embd to it")
        if base.endswith("token_embd.weight"):  # A [r, n_vocab], B [r, n_embd]
            rank, fits = na[0], (na[1] == w[1] and nb[1] == w[0] and nb[0] == na[0])
            want = f"lora_a [r, {w[1]}] and lora_b [r, {w[0]}]"
        else:
            rank, fits = nb[0], (na[0] == w[0] and nb[1] == w[1] and na[1] == nb[0])
            want = f"lora_a [{w[0]}, r] and lora_b [r, {w[1]}]"
        if not fits or na[2:] != w[2:] or nb[2:] != w[2:] or rank < 1:
            raise AdapterError(
                f"{path}: shapes do not fit the model's {base} {_fmt(w)}: lora_a is "
                f"{_fmt(na)}, lora_b is {_fmt(nb)}; expected {want} with the same r ≥ 1")
        ranks.add(int(rank))
    f = fields.get(gguf.Keys.General.NAME)
    name = str(f.contents()) if f is not None and f.types == [_STRING] else path.stem
    return AdapterInfo(path=path.absolute(), name=name, architecture=arch, alpha=alpha,
                       ranks=tuple(sorted(ranks)), targets=tuple(sorted(pairs)),
                       size_bytes=st.st_size, mtime_ns=st.st_mtime_ns)


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

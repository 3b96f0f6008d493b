"""The GGUF models already on this computer: found where other apps keep them, never downloaded.

LM Studio, GPT4All, Jan, llama.cpp's cache and the Hugging Face hub cache keep ``*.gguf``
files in folders (the hub's snapshots are symlinks into ``blobs/``); Ollama keeps manifests that
name content-addressed blobs, read here as Ollama lays them out, without Ollama running. Each
file's GGUF header (never its weights) says what it is: a chat model, a LoRA adapter, an
embedder or a vision projector, or a broken file with the reason. Headers are cached by path,
size and modification time, so a second scan costs a walk and a ``stat`` per file.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import gguf

from desktop.core.model.modelfile import (
    available_memory,
    bundled_model_path,
    gguf_header,
    parameter_count,
)

#: Folder depth a walk follows below a source's root (LM Studio: publisher/repo/file).
MAX_DEPTH = 6
#: Architectures whose GGUFs embed text rather than chat (llama.cpp's embedding models).
EMBEDDER_ARCHITECTURES = frozenset(("bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2",
                                    "jina-bert-v3", "t5encoder", "modern-bert", "neo-bert"))
#: A model fits when its file and this share more (the KV cache, the runtime) fit in memory.
MEMORY_HEADROOM = 1.2
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.I)
_OLLAMA_MEDIA = {
    "application/vnd.ollama.image.model": "model",
    "application/vnd.ollama.image.adapter": "adapter",
    "application/vnd.ollama.image.projector": "projector",
}
CACHE_VERSION = 1
SPEEDS_FILE = "model_speeds.json"


@dataclass(frozen=True)
class Found:
    """One GGUF file found on this computer.

    ``kind`` is "model", "adapter", "embedder", "projector" or "broken" (``error`` says why).
    ``parameters`` counts the weights; ``quantization`` is llama.cpp's file type ("Q4_K_M").
    """

    name: str
    source: str
    path: str
    kind: str
    size_bytes: int
    architecture: str = ""
    parameters: int = 0
    quantization: str = ""
    context_length: int = 0
    chat_template: bool = False
    error: str = ""
    fits_memory: bool | None = None
    first_token_ms: float | None = None  # measured here, on this model's latest answer
    tokens_per_s: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Source:
    """Where one app keeps its models."""

    name: str
    folders: tuple[Path, ...]
    layout: str = "files"  # "files": *.gguf under the folders; "ollama": manifests + blobs


@dataclass
class Catalog:
    """Everything a scan found, models first."""

    found: list[Found] = field(default_factory=list)

    @property
    def models(self) -> list[Found]:
        return [f for f in self.found if f.kind == "model"]

    def named(self, name: str) -> Found | None:
        """The model called ``name`` (case-insensitive), else the one whose name holds it."""
        wanted = name.casefold()
        exact = [m for m in self.models if m.name.casefold() == wanted]
        if exact:
            return exact[0]
        partial = [m for m in self.models if wanted in m.name.casefold()]
        return partial[0] if len(partial) == 1 else None


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def _by_platform(linux: str, mac: str, windows: str, home: Path) -> Path:
    if sys.platform == "darwin":
        return home / mac
    if os.name == "nt":
        base = _env_path("LOCALAPPDATA") or home / "AppData" / "Local"
        return base / windows
    return home / linux


def sources(home: Path | None = None, extra: tuple[str, ...] = ()) -> list[Source]:
    """The documented default folders of each app (and their environment overrides), plus the
    folders a person added."""
    home = home or Path.home()
    hf_home = _env_path("HF_HOME") or home / ".cache" / "huggingface"
    hub = _env_path("HF_HUB_CACHE") or hf_home / "hub"
    ollama = _env_path("OLLAMA_MODELS") or home / ".ollama" / "models"
    llama_cache = _env_path("LLAMA_CACHE") or _by_platform(
        ".cache/llama.cpp", "Library/Caches/llama.cpp", "llama.cpp", home)
    return [
        Source("Grounded", (bundled_model_path().parent,)),
        Source("LM Studio", (home / ".lmstudio" / "models", home / ".cache" / "lm-studio" /
                             "models")),
        Source("GPT4All", (_by_platform(".local/share/nomic.ai/GPT4All",
                                        "Library/Application Support/nomic.ai/GPT4All",
                                        "nomic.ai/GPT4All", home),)),
        Source("Jan", (home / "jan" / "models",
                       _by_platform(".local/share/Jan/data", "Library/Application Support/Jan/data",
                                    "Jan/data", home))),
        Source("Ollama", (ollama,), layout="ollama"),
        Source("llama.cpp", (llama_cache,)),
        Source("Hugging Face", (hub,)),
        *(Source("your folder", (Path(p).expanduser(),)) for p in extra),
    ]


def _files(root: Path, depth: int = 0) -> Iterator[Path]:
    """Every file under ``root`` to MAX_DEPTH, hidden folders left out (symlinks followed, as
    the hub's snapshots need)."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir():
                if depth < MAX_DEPTH and not entry.name.startswith("."):
                    yield from _files(Path(entry.path), depth + 1)
            elif entry.is_file():
                yield Path(entry.path)
        except OSError:
            continue


def _ggufs(root: Path) -> Iterator[Path]:
    """``*.gguf`` files under ``root``; of a split model, its first part."""
    for path in _files(root):
        if path.name.lower().endswith(".gguf"):
            match = _SPLIT.search(path.name)
            if match is None or match.group(1) == "00001":
                yield path


def _ollama(root: Path) -> Iterator[tuple[Path, str, str]]:
    """(blob, name, kind) for each layer Ollama's manifests name."""
    manifests = root / "manifests"
    for manifest in _files(manifests):
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers") or []
        except (OSError, ValueError, AttributeError):
            continue
        parts = manifest.relative_to(manifests).parts  # registry / namespace / model / tag
        if len(parts) < 3:
            continue
        model, tag = parts[-2], parts[-1]
        namespace = parts[-3]
        name = f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
        for layer in layers:
            kind = _OLLAMA_MEDIA.get(str(layer.get("mediaType", "")))
            digest = str(layer.get("digest", ""))
            if kind and digest.startswith("sha256:"):
                yield root / "blobs" / digest.replace(":", "-"), name, kind


def _quantization(meta: dict) -> str:
    file_type = meta.get("general.file_type")
    try:
        return gguf.LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
    except (TypeError, ValueError):
        return ""


def _kind(meta: dict) -> str:
    arch = str(meta.get("general.architecture") or "")
    if meta.get("general.type") == "adapter":
        return "adapter"
    if arch == "clip" or meta.get("general.type") == "mmproj":
        return "projector"
    if arch in EMBEDDER_ARCHITECTURES or f"{arch}.pooling_type" in meta:
        return "embedder"
    return "model"


def describe(path: Path, name: str, source: str, kind_hint: str = "") -> Found:
    """What the GGUF header of ``path`` says (header only; ``broken`` with the reason)."""
    try:
        meta, tensors, size = gguf_header(path)
    except ValueError as exc:
        return Found(name, source, str(path), "broken", path.stat().st_size, error=str(exc))
    except OSError as exc:
        return Found(name, source, str(path), "broken", 0, error=exc.strerror or str(exc))
    arch = str(meta.get("general.architecture") or "")
    kind = kind_hint if kind_hint in ("adapter", "projector") else _kind(meta)
    return Found(
        name=name, source=source, path=str(path), kind=kind, size_bytes=size, architecture=arch,
        parameters=parameter_count(tensors),
        quantization=_quantization(meta),
        context_length=int(meta.get(f"{arch}.context_length") or 0),
        chat_template=bool(meta.get("tokenizer.chat_template")),
    )


class ModelCatalog:
    """Scans the sources, with header results cached in ``cache_file`` (JSON)."""

    def __init__(self, cache_file: Path | None = None, extra_folders: tuple[str, ...] = (),
                 home: Path | None = None) -> None:
        self.cache_file = cache_file
        self.sources = sources(home, extra_folders)

    def _load_cache(self) -> dict[str, dict]:
        if self.cache_file is None:
            return {}
        raw = _read_json(self.cache_file)
        return raw.get("files", {}) if raw.get("version") == CACHE_VERSION else {}

    def _save_cache(self, files: dict[str, dict]) -> None:
        # A cache that cannot be written only costs the next scan its headers.
        if self.cache_file is not None:
            _write_json(self.cache_file, {"version": CACHE_VERSION, "files": files})

    def _candidates(self) -> Iterator[tuple[Path, str, str, str]]:
        """(path, name, source, kind hint) of every GGUF file the sources hold."""
        for source in self.sources:
            for folder in source.folders:
                if source.layout == "ollama":
                    for blob, name, kind in _ollama(folder):
                        yield blob, name, source.name, "" if kind == "model" else kind
                else:
                    for path in _ggufs(folder):
                        yield path, _display_name(path), source.name, ""

    def scan(self) -> Catalog:
        """Every GGUF found, described from its header or the cache; models first."""
        cached, fresh = self._load_cache(), {}
        speeds = _read_json(self.cache_file.with_name(SPEEDS_FILE)) if self.cache_file else {}
        seen: set[str] = set()
        found: list[Found] = []
        memory = available_memory()
        for path, name, source, hint in self._candidates():
            try:
                real = path.resolve()
                stat = real.stat()
            except OSError:
                continue
            if str(real) in seen:
                continue  # the same file reached twice (a symlink, two sources)
            seen.add(str(real))
            key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{name}|{source}|{hint}"
            entry = cached.get(key)
            item = Found(**entry) if entry else describe(path, name, source, hint)
            fresh[key] = item.to_dict()
            if item.kind == "model":
                item = _with_measures(item, memory, speeds.get(str(path)))
            found.append(item)
        self._save_cache(fresh)
        order = {"model": 0, "adapter": 1, "embedder": 2, "projector": 3, "broken": 4}
        found.sort(key=lambda f: (order.get(f.kind, 5), f.source != "Grounded", f.name.lower()))
        return Catalog(found)


def _with_measures(item: Found, memory: int | None, speed: dict | None) -> Found:
    """``item`` with whether it fits the memory free now and its measured speed."""
    speed = speed or {}
    return replace(
        item,
        fits_memory=None if memory is None else item.size_bytes * MEMORY_HEADROOM <= memory,
        first_token_ms=speed.get("first_token_ms"), tokens_per_s=speed.get("tokens_per_s"))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def size_text(n: int) -> str:
    """A file size as people read it: "98 MB", "4.1 GB"."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def parameters_text(n: int) -> str:
    """A weight count: "135M", "7.2B"."""
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def speed_text(first_token_ms: float, tokens_per_s: float) -> str:
    """A model's measured speed as the window and the CLI show it:
    "41 tokens/s, first token 0.3 s"."""
    return f"{tokens_per_s:.0f} tokens/s, first token {first_token_ms / 1000:.1f} s"


def recorded_speed(data_dir: Path, model_path: str | Path) -> tuple[float, float] | None:
    """(first-token ms, tokens/s) of ``model_path`` as last measured here, or None."""
    speed = _read_json(data_dir / SPEEDS_FILE).get(str(model_path))
    if not isinstance(speed, dict) or not speed.get("tokens_per_s"):
        return None
    return float(speed.get("first_token_ms", 0.0)), float(speed["tokens_per_s"])


def record_speed(data_dir: Path, model_path: str | Path, first_token_ms: float,
                 tokens_per_s: float) -> None:
    """Remember how fast ``model_path`` answered here (its latest answer), for the list."""
    path = data_dir / SPEEDS_FILE
    speeds = _read_json(path)
    speeds[str(model_path)] = {"first_token_ms": round(first_token_ms, 1),
                               "tokens_per_s": round(tokens_per_s, 2)}
    _write_json(path, speeds)  # a convenience: an unwritable data folder costs only it


def _write_json(path: Path, data: dict) -> None:
    """Write ``data`` atomically; a folder that cannot be written is let be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass


def _display_name(path: Path) -> str:
    """A file's name without ``.gguf`` (and a split model's part suffix)."""
    return _SPLIT.sub("", path.name).removesuffix(".gguf").removesuffix(".GGUF")


def catalog_for(data_dir: Path, extra_folders: tuple[str, ...] = ()) -> ModelCatalog:
    """The catalog with its cache in the data folder."""
    return ModelCatalog(data_dir / "models.json", extra_folders)


def resolve_model(value: str, data_dir: Path, extra_folders: tuple[str, ...] = ()) -> str:
    """A ``--model`` value as a file path: a path as it is, or the name of a model that
    ``grounded models`` lists; GroundedError naming the choices otherwise."""
    from desktop.core.errors import GroundedError

    path = Path(value).expanduser()
    if path.exists() or path.suffix.lower() == ".gguf" or os.sep in value:
        return str(path)  # check_model_file says what is wrong with a path
    catalog = catalog_for(data_dir, extra_folders).scan()
    found = catalog.named(value)
    if found is None:
        names = ", ".join(m.name for m in catalog.models[:8]) or "none found"
        raise GroundedError(f"no model named {value!r} on this computer "
                            f"(`grounded models` lists them: {names})")
    return found.path

"""Settings and the folders Grounded keeps them in.

Every path comes from :func:`home`: platformdirs' per-user folders, or one folder named by the
``GROUNDED_HOME`` environment variable (tests and benchmarks always set it).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "Grounded"


@dataclass(frozen=True)
class Dirs:
    """Where settings, data (the database, adapters) and logs live."""

    config: Path
    data: Path
    logs: Path

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.json"

    @property
    def database(self) -> Path:
        return self.data / "index.sqlite"


def default_dirs() -> Dirs:
    """The folders before the ``data_dir`` setting: platformdirs' or ``GROUNDED_HOME``'s."""
    override = os.environ.get("GROUNDED_HOME")
    if override:
        root = Path(override).expanduser()
        return Dirs(config=root / "config", data=root / "data", logs=root / "logs")
    return Dirs(
        config=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        data=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        logs=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
    )


def home() -> Dirs:
    """Return the folders for this user, honouring ``GROUNDED_HOME`` and the ``data_dir``
    setting (a data folder chosen in the window's settings)."""
    dirs = default_dirs()
    data_dir = Settings.load(dirs).data_dir
    return replace(dirs, data=Path(data_dir).expanduser()) if data_dir else dirs


@dataclass(frozen=True)
class Settings:
    """User-tunable settings; unknown keys in the file are ignored, missing ones defaulted."""

    #: A BERT-family sentence-transformers model folder, or "" for the bundled all-MiniLM-L6-v2.
    embedder: str = ""
    #: Files larger than this are skipped (and recorded as skipped).
    max_file_mb: float = 100.0
    #: Per-file extraction limits: a file that exceeds them is recorded as failed.
    extract_timeout_s: float = 60.0
    extract_memory_mb: int = 2048
    #: Read scanned PDF pages and image files by OCR (Tesseract, on this computer).
    ocr: bool = True
    #: OCR languages, Tesseract codes ("eng", "deu", "fra"...); each needs its tessdata package.
    ocr_languages: list[str] = field(default_factory=lambda: ["eng"])
    #: Chunk size and overlap in embedder tokens (capped by the embedder's max sequence length).
    chunk_tokens: int = 200
    chunk_overlap: int = 32
    #: The GGUF model file, or "" for the bundled SmolLM2-135M-Instruct.
    model: str = ""
    #: Folders searched for GGUF models besides the apps' own (core/model/discovery.py).
    model_folders: list[str] = field(default_factory=list)
    #: Layers offloaded to the GPU: None offloads what fits in the GPU memory free at load
    #: (core/model/offload.py) where the llama.cpp build can, 0 none.
    n_gpu_layers: int | None = None
    #: Threads for the model: 0 means the physical cores.
    n_threads: int = 0
    #: The model's context size in tokens (capped by the model's own).
    n_ctx: int = 4096
    #: Passages retrieved per answer.
    passages: int = 5
    #: Evidence sentences the prompt carries (0: whole passages); None: by the model's size
    #: (answering/reading.py). The evidence shown is the same either way.
    focus_sentences: int | None = None
    #: When answers quote a source word for word (core/answering/quote.py): "auto" (questions in a
    #: script the model hardly knows), "always" or "never".
    quote_answers: str = "auto"
    #: GGUF LoRA adapters applied on top of the model: [{"path": ..., "scale": ...}].
    adapters: list[dict[str, Any]] = field(default_factory=list)
    #: Where the database, conversations and adapters live ("": the default data folder).
    data_dir: str = ""

    @classmethod
    def load(cls, dirs: Dirs | None = None) -> Settings:
        """Read the settings file (missing or unreadable: defaults)."""
        path = (dirs or default_dirs()).settings_file
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def save(self, dirs: Dirs | None = None) -> Path:
        """Write the settings file atomically and return its path."""
        path = (dirs or default_dirs()).settings_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        tmp.replace(path)
        return path

"""A home folder laid out as the local-model apps lay it out, for tests and `bench models`.

The bundled model (hard-linked where the file system allows, else copied) is placed as LM Studio,
GPT4All, Jan, llama.cpp's cache, the Hugging Face hub cache (a snapshot symlink into ``blobs/``)
and Ollama (a manifest naming a ``sha256-`` blob) keep models, plus a folder of the person's
own; beside them a real LoRA adapter, an embedder and a vision projector GGUF, and a truncated
model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import gguf
import numpy as np

from desktop.core.model.adapters import write_lora
from desktop.core.model.modelfile import bundled_model_path

#: (source, name) of every model the layout holds, as discovery names them.
MODELS = (
    ("LM Studio", "SmolLM2-lmstudio.Q4_1"),
    ("GPT4All", "SmolLM2-gpt4all.Q4_1"),
    ("Jan", "SmolLM2-jan.Q4_1"),
    ("llama.cpp", "HuggingFaceTB_SmolLM2-135M-Instruct-GGUF_smollm2-q4_1"),
    ("Hugging Face", "smollm2-hub.Q4_1"),
    ("Ollama", "smollm2:135m"),
    ("your folder", "my-smollm2.Q4_1"),
)


def _place(source: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy(source, dest)
    return dest


def one_tensor_gguf(path: Path, arch: str, **fields: int) -> Path:
    """A valid GGUF of ``arch`` with one small embedding tensor and the given ``add_<field>``
    integers (an embedder, a projector, a model that cannot be built)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, arch)
    writer.add_name(path.stem)
    writer.add_block_count(1)
    for field, value in fields.items():
        getattr(writer, f"add_{field}")(value)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def make_home(home: Path) -> Path:
    """Lay out ``home`` (returns the person's own model folder, to add to the settings)."""
    model = bundled_model_path()
    _place(model, home / ".lmstudio/models/HuggingFaceTB/SmolLM2/SmolLM2-lmstudio.Q4_1.gguf")
    _place(model, home / ".local/share/nomic.ai/GPT4All/SmolLM2-gpt4all.Q4_1.gguf")
    _place(model, home / "jan/models/smollm2/SmolLM2-jan.Q4_1.gguf")
    _place(model, home / ".cache/llama.cpp/"
           "HuggingFaceTB_SmolLM2-135M-Instruct-GGUF_smollm2-q4_1.gguf")
    repo = home / ".cache/huggingface/hub/models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF"
    blob = _place(model, repo / "blobs" / "0123abcd")
    snapshot = repo / "snapshots" / "main-rev" / "smollm2-hub.Q4_1.gguf"
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    snapshot.symlink_to(os.path.relpath(blob, snapshot.parent))
    _ollama(home / ".ollama/models", model)
    own = home / "models"
    _place(model, own / "my-smollm2.Q4_1.gguf")
    (own / "adapters").mkdir(parents=True)
    write_lora(model, own / "adapters" / "tone-lora.gguf")
    one_tensor_gguf(own / "embedders" / "bge-small.gguf", "bert")
    one_tensor_gguf(own / "vision" / "mmproj-smol.gguf", "clip")
    truncated = own / "broken" / "half-a-model.gguf"
    truncated.parent.mkdir(parents=True, exist_ok=True)
    with open(model, "rb") as f:
        truncated.write_bytes(f.read(4 << 20))
    return own


def _ollama(root: Path, model: Path) -> None:
    """Ollama's store: the GGUF as a content-addressed blob and a manifest naming it."""
    digest = hashlib.sha256(model.name.encode()).hexdigest()  # any name; Ollama uses the hash
    _place(model, root / "blobs" / f"sha256-{digest}")
    manifest = root / "manifests/registry.ollama.ai/library/smollm2/135m"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({
        "schemaVersion": 2,
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}",
             "size": model.stat().st_size},
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:00",
             "size": 10},
        ],
    }), encoding="utf-8")

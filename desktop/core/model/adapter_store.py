"""The data folder's adapters: ``<data>/adapters/<name>.gguf``, each with ``<name>.json``.

``grounded tune`` writes a tuned adapter here; ``--adapter NAME`` (ask, compare, eval) finds it
by name, and a path still works. The JSON beside an adapter records how it was made (base
model, examples, time, the self-check) and its held-out ideal replies with the form scores of
the base and tuned model on them, so ``compare`` and ``eval`` can score form for it
(:func:`..answering.form.form_against`). An adapter without a JSON file works; it just has no
form score.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.core.errors import AdapterError

#: An adapter's name: letters, digits, ``-``, ``_`` and ``.``; it becomes a file name.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def adapters_dir(data: Path) -> Path:
    """The folder of named adapters inside the data folder ``data``."""
    return Path(data) / "adapters"


def check_name(name: str) -> str:
    """``name`` if it can name an adapter (it becomes a file name), else a GroundedError."""
    if not NAME.match(name) or name.endswith((".gguf", ".json")):
        raise AdapterError(f"{name!r} cannot name an adapter: use letters, digits, '-', '_' "
                           "and '.' (up to 64, no .gguf)")
    return name


def known(data: Path) -> list[str]:
    """The names of the adapters in the data folder, sorted."""
    folder = adapters_dir(data)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.gguf") if not p.name.startswith("."))


def resolve(value: str | Path, data: Path) -> Path:
    """The adapter file for ``value``: an existing file path as given, else the name of an
    adapter in the data folder. An unknown name is an AdapterError naming the known ones."""
    path = Path(value).expanduser()
    if path.exists() or path.suffix == ".gguf" or len(path.parts) > 1:
        return path  # a path (check_adapter reports a missing or wrong file in its words)
    named = adapters_dir(data) / f"{value}.gguf"
    if named.is_file():
        return named
    names = known(data)
    listing = (f"the adapters in {adapters_dir(data)} are: {', '.join(names)}" if names else
               f"there are no tuned adapters in {adapters_dir(data)} yet (grounded tune makes "
               "them)")
    raise AdapterError(f"no adapter named {str(value)!r} and no such file; {listing}")


@dataclass(frozen=True)
class AdapterMeta:
    """What ``<name>.json`` says about a tuned adapter (see :func:`read_meta`)."""

    name: str
    base_model: str
    held_out: tuple[dict[str, str], ...]  # {"prompt", "reply"}: not trained on
    raw: dict[str, Any]

    @property
    def ideal_replies(self) -> list[str]:
        return [h["reply"] for h in self.held_out if isinstance(h.get("reply"), str)]


def meta_path(adapter: Path) -> Path:
    return Path(adapter).with_suffix(".json")


def read_meta(adapter: str | Path) -> AdapterMeta | None:
    """The metadata beside an adapter file, or None (no file, unreadable, not ours)."""
    try:
        raw = json.loads(meta_path(Path(adapter)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("held_out"), list):
        return None
    held = tuple(h for h in raw["held_out"] if isinstance(h, dict))
    return AdapterMeta(str(raw.get("name", Path(adapter).stem)), str(raw.get("base_model", "")),
                       held, raw)


def ideal_replies(adapters: Iterable[str | Path]) -> list[str]:
    """The held-out ideal replies of every tuned adapter among ``adapters`` (files without
    metadata add none): what :func:`desktop.core.answering.form.form_against` scores answers on."""
    out: list[str] = []
    for path in adapters:
        meta = read_meta(path)
        if meta is not None:
            out += [r for r in meta.ideal_replies if r not in out]
    return out


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (a temp file, then os.replace)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

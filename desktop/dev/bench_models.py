"""`grounded bench models`: finding the GGUF models of a home folder, cold and warm, against a
bare walk of the same folders.

The home is laid out by desktop.dev.model_layouts (the seven layouts: LM Studio, GPT4All, Jan,
llama.cpp, the Hugging Face hub cache, Ollama, a folder of one's own; plus an adapter, an
embedder, a projector and a truncated model). Cold: no header cache; warm: the cache written by
the cold scan, nothing changed. The reference walks the same source folders with ``os.walk``
and stats every file, which any scan must do at least.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from desktop.core.model.discovery import ModelCatalog
from desktop.dev.benchmarks import Report
from desktop.dev.model_layouts import make_home

REPEATS = 7


def _bare_walk(catalog: ModelCatalog) -> int:
    files = 0
    for source in catalog.sources:
        for folder in source.folders:
            for root, _dirs, names in os.walk(folder, followlinks=True):
                for name in names:
                    os.stat(os.path.join(root, name))
                    files += 1
    return files


def bench_models(say: Report) -> dict:
    """Cold and warm scans of a laid-out home (median of REPEATS each) against a bare walk."""
    saved = {k: os.environ.pop(k, None) for k in ("HF_HOME", "HF_HUB_CACHE", "OLLAMA_MODELS",
                                                   "LLAMA_CACHE")}
    try:
        with tempfile.TemporaryDirectory(prefix="grounded-bench-models-") as tmp:
            home = Path(tmp) / "home"
            own = make_home(home)
            cold, warm, walk = [], [], []
            for i in range(REPEATS):
                cache = Path(tmp) / f"cache-{i}.json"
                catalog = ModelCatalog(cache, (str(own),), home)
                started = time.perf_counter()
                found = catalog.scan()
                cold.append(time.perf_counter() - started)
                started = time.perf_counter()
                ModelCatalog(cache, (str(own),), home).scan()
                warm.append(time.perf_counter() - started)
                started = time.perf_counter()
                files = _bare_walk(catalog)
                walk.append(time.perf_counter() - started)
    finally:
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    result = {"files_found": len(found.found), "models": len(found.models), "files_walked": files,
              "cold_s": statistics.median(cold), "warm_s": statistics.median(warm),
              "bare_walk_s": statistics.median(walk)}
    result["warm_over_walk"] = result["warm_s"] / result["bare_walk_s"]
    say(f"{result['models']} models of {result['files_found']} GGUF files "
        f"({files} files walked): cold {result['cold_s'] * 1000:.1f} ms, warm "
        f"{result['warm_s'] * 1000:.1f} ms (target < 200 ms), bare walk "
        f"{result['bare_walk_s'] * 1000:.1f} ms: warm / walk {result['warm_over_walk']:.2f}")
    return result

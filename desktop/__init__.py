"""Grounded: private, offline question answering over a person's own files."""

import os as _os

# numpy's OpenBLAS threads spin after each call and starved the embedder's threads in the next
# embedding (a query took 100 ms instead of 12); our BLAS work is memory-bound matrix-vector
# products that one thread does as fast. Must be set before numpy is first imported.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# llama.cpp (ggml) runs on the OpenMP runtime, whose threads spin a while before they sleep.
# llama.cpp needs the spin (its threads meet after every operation: passive threads cut
# generation from ~117 to ~41 tokens/s on an idle 2-core machine), but a long spin holds a core
# that another busy thread needs. A short spin keeps generation at 104-120 tokens/s when idle;
# the engine also leaves busy cores alone (desktop.core.cpuload). Must be set before llama.cpp
# loads; OMP_WAIT_POLICY or GOMP_SPINCOUNT in the environment win. (The embedder runs on ONNX
# Runtime's own thread pool, which is told not to spin: desktop.core.embed.)
_os.environ.setdefault("GOMP_SPINCOUNT", "10000")


def __getattr__(name: str) -> str:
    """``desktop.__version__``: pyproject.toml's version, read from the installed metadata
    (the packaged app carries it too), so the version is written in one place only. Read on
    first use, not at import: the window's start-up does not pay for the metadata scan."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("grounded")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'desktop' has no attribute {name!r}")

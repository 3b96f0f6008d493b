"""Grounded: private, offline question answering over a person's own files."""

import os as _os

# numpy's OpenBLAS threads spin after each call and starve torch's threads in the next
# embedding (a query took 100 ms instead of 12); our BLAS work is memory-bound matrix-vector
# products that one thread does as fast. Must be set before numpy is first imported.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# llama.cpp (ggml) and torch share one OpenMP runtime, whose threads spin a while before they
# sleep. llama.cpp needs the spin (its threads meet after every operation: passive threads
# cut generation from ~117 to ~41 tokens/s on an idle 2-core machine), but a long spin holds a
# core that another busy thread needs (embedding beside a busy process: 20 chunks/s with the
# default spin, 27 with a short one). A short spin keeps both (idle: 104-120 tokens/s and
# 51-53 chunks/s); the engine also leaves busy cores alone (desktop.core.cpuload). Must be
# set before either library loads; OMP_WAIT_POLICY or GOMP_SPINCOUNT in the environment win.
_os.environ.setdefault("GOMP_SPINCOUNT", "10000")
# oneDNN (torch's bfloat16 matrix products) keeps up to 1,024 compiled kernels, one per input
# shape, and every batch of chunks has a new sequence length: indexing the eval corpus grew to
# 1,576 MB with the default and peaked at 1,161 MB with a small cache, at the same speed
# (kernels are reused within a batch, across its layers). Read when torch first uses oneDNN.
_os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8")


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

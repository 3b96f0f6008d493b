"""Grounded: private, offline question answering over a person's own files."""

import os as _os

# numpy's OpenBLAS threads spin after each call and starve torch's threads in the next
# embedding (a query took 100 ms instead of 12); our BLAS work is memory-bound matrix-vector
# products that one thread does as fast. Must be set before numpy is first imported.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# llama.cpp (ggml) and torch both run on OpenMP, whose threads spin while they wait for each
# other. With anything else busy (indexing while answering, another program) a spinning thread
# holds the core its partner needs: on 2 cores with one busy, generation fell from 54 to 2
# tokens/s and embedding from 20 to 10 chunks/s. Passive threads sleep instead. Must be set
# before either library loads; the environment can still override it.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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

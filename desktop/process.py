"""What every Grounded process sets before its heavy libraries load: thread behaviour and
the offline guard. The entry points (the CLI's ``main``, the window's ``run``, the dev tools)
call :func:`prepare`; importing ``desktop`` alone changes nothing.
"""

from __future__ import annotations

import os

from desktop import offline

THREAD_ENVIRONMENT = {
    # numpy's OpenBLAS threads spin after each call and starve the embedder's threads in the
    # next embedding; our BLAS work outside tuning is memory-bound matrix-vector products that
    # one thread does as fast (tuning sets its own count with threadpoolctl).
    "OPENBLAS_NUM_THREADS": "1",
    # llama.cpp runs on the OpenMP runtime, whose threads spin before they sleep. llama.cpp
    # needs some spin (its threads meet after every operation), but a long spin holds a core
    # another busy thread needs; a short one keeps generation near its idle speed. The engine
    # also leaves busy cores alone (desktop.core.cpus); ONNX Runtime's pool is told
    # not to spin (desktop.core.embedding.embedder).
    "GOMP_SPINCOUNT": "10000",
}


def prepare() -> None:
    """Set the thread environment (values already in the environment win) and enforce
    offline mode. Must run before numpy or llama.cpp is first imported; idempotent."""
    for key, value in THREAD_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    offline.enforce()

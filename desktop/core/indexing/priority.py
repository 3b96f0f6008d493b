"""Background work that yields the CPU to embedding.

On a machine with few cores, extraction and chunking compete with the embedder's threads; an
embedder thread that loses its core stalls its partner at the next barrier. Running the helpers
at a lower priority lets them use the cycles the embedder leaves, and no more.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

BACKGROUND_NICE = 10


def lower_this_thread(nice: int = BACKGROUND_NICE) -> bool:
    """Lower the calling thread's priority (Linux: per thread). False where unsupported."""
    if sys.platform != "linux":  # elsewhere setpriority would lower the whole process
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as exc:
        log.debug("cannot lower thread priority: %s", exc)
        return False
    return True


def lower_this_process(nice: int = BACKGROUND_NICE) -> bool:
    """Lower the calling process's priority (for a child that only does background work)."""
    try:
        os.nice(nice)
    except (OSError, AttributeError) as exc:
        log.debug("cannot lower process priority: %s", exc)
        return False
    return True

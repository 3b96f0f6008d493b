"""How many CPU cores are free right now, so that llama.cpp runs on those only.

llama.cpp's threads meet at a barrier after every operation of every token, so one thread
whose core another process holds stalls all the others. On this project's 2-core machine
with one other busy process, generation ran at 19–36 tokens/s on 2 threads and 73–77 on 1;
idle, 2 threads gave 104–120 (README, "Generation"). The engine therefore samples the
machine's load just before it generates and uses the cores nothing else is using, up to its
thread count. Linux only (``/proc/stat``); elsewhere nothing is sampled and every thread is
used.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_STAT = Path("/proc/stat")
#: How long the load is sampled before a generation (added to its first-token time).
SAMPLE_S = 0.03


def _ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, or None where not readable."""
    try:
        with _STAT.open() as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_cores(interval: float = SAMPLE_S) -> float | None:
    """Cores busy with anything (other programs, this one's other threads) over the next
    ``interval`` seconds, or None where it cannot be measured."""
    before = _ticks()
    if before is None:
        return None
    time.sleep(interval)
    after = _ticks()
    if after is None or after[1] <= before[1]:
        return None
    busy = (after[0] - before[0]) / (after[1] - before[1])
    return busy * (os.cpu_count() or 1)


def free_threads(limit: int, interval: float = SAMPLE_S) -> int:
    """Threads to run on: the cores free right now (rounded), between 1 and ``limit``."""
    busy = busy_cores(interval)
    if busy is None:
        return limit
    free = (os.cpu_count() or 1) - busy
    return max(1, min(limit, int(free + 0.5)))

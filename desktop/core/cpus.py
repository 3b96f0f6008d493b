"""The machine's CPU cores: how many this process may use, and how many are free right now
(llama.cpp runs on those only; the embedder's pool is sized by the physical cores).

llama.cpp's threads meet at a barrier after every operation of every token, so one thread
whose core another process holds stalls all the others: beside one busy process, two
threads on two cores generate slower than one (README, "Generation"). The engine samples the
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


def physical_cores() -> int:
    """Physical cores this process may run on (hyperthread siblings count once)."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cores, proc, phys = set(), None, None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (s.strip() for s in line.partition(":"))
            if key == "processor":
                proc, phys = int(value), None
            elif key == "physical id":
                phys = value
            elif key == "core id" and (allowed is None or proc in allowed):
                cores.add((phys, value))
    except (OSError, ValueError):
        cores = set()
    return len(cores) or (len(allowed) if allowed else os.cpu_count() or 1)

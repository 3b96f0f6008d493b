"""Adaptive threads: the machine's load sampled from /proc/stat, and the engine generating on
the free cores only (real busy processes, the real model)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from desktop.core.cpus import busy_cores, free_threads
from desktop.core.jobs import run_job
from desktop.core.model.engine import Engine

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux only")
CPUS = os.cpu_count() or 1


@pytest.fixture
def every_core_busy():
    """One spinning process per CPU for the length of the test."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
             for _ in range(CPUS)]
    time.sleep(0.3)  # all of them running
    yield
    for p in procs:
        p.kill()
        p.wait()


def test_busy_processes_show_as_busy_cores(every_core_busy):
    busy = busy_cores(0.3)
    assert busy is not None and CPUS - 0.6 <= busy <= CPUS + 0.01
    assert free_threads(CPUS, 0.3) == 1  # never fewer than one


def test_free_threads_stay_within_the_limit():
    for limit in (1, 2, 64):
        assert 1 <= free_threads(limit) <= limit


def test_the_engine_generates_on_the_free_cores_unless_told_a_thread_count(every_core_busy):
    messages = [{"role": "user", "content": "Say hello."}]

    def run(engine: Engine):
        return run_job(engine.chat(messages, max_tokens=4))

    with Engine(n_ctx=256, n_threads=2) as fixed:
        assert not fixed.adaptive_threads and run(fixed).threads == 2
    with Engine(n_ctx=256) as adaptive:
        assert adaptive.adaptive_threads
        assert run(adaptive).threads == 1

"""Long jobs are generators of progress records that return a result; this runs one."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

R = TypeVar("R")


def run_job(job: Generator[Any, None, R], on_progress: Callable[[Any], None] | None = None) -> R:
    """Drive ``job`` to its end, handing each record to ``on_progress``; return its value."""
    try:
        while True:
            item = next(job)
            if on_progress is not None:
                on_progress(item)
    except StopIteration as stop:
        return stop.value

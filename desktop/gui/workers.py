"""Run core work off the GUI thread: a :class:`Job` per call, :class:`Lane` s to serialise them.

A job wraps a function of a cancel token. When the function returns a generator (the core's
long jobs: indexing, answering), every yielded record becomes a ``progress`` signal and the
generator's return value the ``done`` signal, exactly as :func:`desktop.core.jobs.run_job`
drives it for the CLI. Errors become one ``failed`` message (a user error's own line, or the
exception's type and text; the traceback goes to the log, never to the window).

The function runs on the job's own thread: it must never touch a widget. The job's signals are
re-emitted on the GUI thread, so any slot (a lambda too) connected to them runs there.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

log = logging.getLogger(__name__)


class _Runner(QObject):
    """Lives on the job's thread: calls the function and reports through its signals."""

    started = Signal()
    progress = Signal(object)
    done = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, name: str, fn: Callable[[threading.Event], Any],
                 cancel: threading.Event) -> None:
        super().__init__()
        self.name, self.fn, self.cancel = name, fn, cancel

    @Slot()
    def run(self) -> None:
        from desktop.core.errors import GroundedError

        self.started.emit()
        try:
            result = self.fn(self.cancel)
            if inspect.isgenerator(result):
                result = self._drive(result)
            self.done.emit(result)
        except GroundedError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - every error reaches the window, none kills it
            log.exception("%s failed", self.name)
            self.failed.emit(f"{self.name} failed: {type(exc).__name__}: {exc}")
        finally:
            self.finished.emit()

    def _drive(self, gen) -> Any:
        try:
            while True:
                self.progress.emit(next(gen))
        except StopIteration as stop:
            return stop.value


class Job(QObject):
    """One piece of background work; its signals arrive on the GUI thread."""

    started = Signal()
    progress = Signal(object)
    done = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, name: str, fn: Callable[[threading.Event], Any]) -> None:
        super().__init__()
        self.name = name
        self.cancel_token = threading.Event()
        self.running = False
        self.ended = False
        self.thread: QThread | None = None
        self._runner = _Runner(name, fn, self.cancel_token)

    def cancel(self) -> None:
        """Ask the job to stop (it checks the token between steps)."""
        self.cancel_token.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_token.is_set()

    def start(self) -> Job:
        """Run on a new thread; the job is kept alive until that thread has ended."""
        thread = QThread()
        thread.setObjectName(f"grounded-{self.name}")
        self.thread = thread
        runner = self._runner
        runner.moveToThread(thread)
        runner.started.connect(self._on_started)
        runner.progress.connect(self.progress)
        runner.done.connect(self.done)
        runner.failed.connect(self.failed)
        # Direct: quit from the job's thread, so waiting on the GUI thread cannot deadlock.
        runner.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._on_thread_finished)
        thread.started.connect(runner.run)
        _live.add(self)
        thread.start()
        return self

    @Slot()
    def _on_started(self) -> None:
        self.running = True
        self.started.emit()

    @Slot()
    def _on_thread_finished(self) -> None:
        self.thread.wait()  # returns at once: the thread is past its last line
        self.running, self.ended = False, True
        self.finished.emit()
        _live.discard(self)

    def wait(self, ms: int = 10_000) -> bool:
        """Block until the job's thread ends (shutdown and tests only)."""
        return self.thread.wait(ms) if self.thread is not None else True


_live: set[Job] = set()  # started jobs, kept until their thread has ended


def wait_all(ms: int = 30_000) -> bool:
    """Cancel every running job and wait for its thread (at exit: a QThread destroyed while
    running aborts the process)."""
    jobs = list(_live)
    for job in jobs:
        job.cancel()
    return all(job.wait(ms) for job in jobs)


class Lane(QObject):
    """Jobs that must not overlap (one model, one indexer) run here one after another."""

    busy_changed = Signal(bool)

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.current: Job | None = None
        self.queue: deque[Job] = deque()
        self.closed = False  # after wait(): nothing new starts

    @property
    def busy(self) -> bool:
        return self.current is not None

    def submit(self, job: Job) -> Job:
        """Run ``job`` now, or after the jobs before it (never, once the lane is closed)."""
        if self.closed:
            return job
        self.queue.append(job)
        if self.current is None:
            self._next()
        return job

    def cancel_all(self) -> None:
        """Drop the queued jobs and cancel the running one."""
        dropped, self.queue = list(self.queue), deque()
        for job in dropped:
            job.cancel()
            job.finished.emit()
        if self.current is not None:
            self.current.cancel()

    def wait(self, ms: int = 30_000) -> bool:
        """Close the lane: cancel and wait for the running job (shutdown)."""
        self.closed = True
        self.cancel_all()
        job = self.current
        return job.wait(ms) if job is not None else True

    @Slot()
    def _next(self) -> None:
        was_busy = self.current is not None
        self.current = self.queue.popleft() if self.queue and not self.closed else None
        if self.current is not None:
            self.current.finished.connect(self._next)
            self.current.start()
        if was_busy != (self.current is not None):
            self.busy_changed.emit(self.current is not None)

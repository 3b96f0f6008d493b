"""Extraction in a child process that cannot hang or exhaust the caller.

Untrusted files can make a parser loop, recurse or allocate without bound. ExtractionSandbox
keeps one persistent child process (multiprocessing "spawn": the parent may hold threads and
loaded models, which fork would copy) that imports only this package, caps its own address
space with ``RLIMIT_AS`` and extracts the paths it is sent over a pipe. A call that runs past
the time limit kills the child; a child that runs out of memory or crashes is replaced lazily
on the next call, so one bad file costs one ExtractError and never stops a run.

As with any "spawn" child, Python re-runs the parent's main *script* (not a ``python -m``
module) in the child: entry scripts must stay light to import and keep their work under
``if __name__ == "__main__":``; a frozen (PyInstaller) build must call
``multiprocessing.freeze_support()`` first thing. Where the OS has no ``RLIMIT_AS`` (Windows)
the child runs with the time limit only, and a warning says so.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

from desktop.core.indexing.priority import lower_this_process

from . import FORMATS, ExtractError, Extraction, extract
from .ocr import OcrOptions, OcrRun, ProgressCallback

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
"""How long a new child may take to import the extractors and report ready."""
CANCEL_POLL_S = 0.1
"""How often a waiting call looks at its cancel event."""


class ExtractionCancelled(Exception):
    """The caller's cancel event was set while a file was being extracted (the child was
    stopped; the file is left for the next run)."""


def _preload() -> None:
    """Import every extractor (and its library) before the memory limit applies."""
    import importlib

    for module in (*FORMATS, "pdf_ocr"):
        importlib.import_module(f"{__package__}.{module}")
    import pypdfium2  # noqa: F401 - the OCR path's libraries, loaded before the limit
    import tesserocr  # noqa: F401


def _limit_memory(memory_mb: int) -> bool:
    """Cap this process's address space; False where the OS does not support it."""
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, AttributeError, ValueError, OSError) as exc:  # Windows, macOS
        log.warning("extraction runs without a memory limit: %s", exc)
        return False
    return True


def _ocr_run(conn: Connection, options: OcrOptions | None) -> OcrRun | None:
    """An OCR run whose page progress goes to the parent as ``("progress", done, total)``."""
    if options is None:
        return None
    return OcrRun(options, lambda done, total: conn.send(("progress", done, total)))


def _serve(conn: Connection, memory_mb: int) -> None:
    """The child's loop: receive ``(path, kind, ocr options)``, answer ``(status, payload)``
    after any number of ``("progress", done, total)`` messages."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    logging.getLogger().addHandler(logging.NullHandler())  # reasons travel in the replies
    try:
        _preload()
        limited = _limit_memory(memory_mb)
        lower_this_process()  # extraction yields the CPU to embedding
    except BaseException as exc:  # report why the child cannot serve, then stop
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", limited))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if request is None:
            return
        path, kind, options = request
        reply: tuple[str, Any]
        try:
            reply = ("ok", extract(Path(path), kind, _ocr_run(conn, options)))
        except ExtractError as exc:
            reply = ("error", str(exc))
        except MemoryError:
            reply = ("memory", None)
        except Exception as exc:  # extract() wraps most failures; this is the last net
            reply = ("error", f"extractor failed ({type(exc).__name__}: {exc})")
        try:
            conn.send(reply)
        except MemoryError:
            reply = ("memory", None)
            conn.send(reply)
        if reply[0] == "memory":
            return  # leave a fragmented heap behind: the parent starts a fresh child


class ExtractionSandbox:
    """Extract files in a persistent child process with a time and a memory limit.

    ``extract(path, kind)`` returns what :func:`desktop.core.indexing.extract.extract` returns, or
    raises ExtractError with the file's own reason or one of "extraction timed out after N s",
    "extraction used more than N MB of memory", "extractor crashed (signal N)". The time limit
    runs from the request or the last OCR page, so a long scan has it per page. Calls are
    serialized (thread-safe). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, timeout_s: float = 60.0, memory_mb: int = 2048) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.starts = 0
        """How many child processes this sandbox has started (1 + restarts)."""

    def __enter__(self) -> ExtractionSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The child's process id, or None when no child is running."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def start(self) -> None:
        """Start the child now (otherwise the first :meth:`extract` does)."""
        with self._lock:
            self._ensure_started()

    def extract(
        self,
        path: Path,
        kind: str | None = None,
        ocr: OcrOptions | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: Any = None,
    ) -> Extraction:
        """Extract ``path`` in the child, reading scans by OCR with ``ocr`` (None: off).

        ``on_progress(done, total)`` hears each OCR page; ``cancel`` (anything with
        ``is_set()``) stops the child within a tenth of a second and raises
        ExtractionCancelled. Raises ExtractError (see the class docstring).
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("ExtractionSandbox is closed")
            try:
                status, payload = self._exchange((os.fspath(path), kind, ocr), on_progress,
                                                 cancel)
            except BaseException:
                # Timed out, died, or interrupted (Ctrl-C): whatever the child is doing, its
                # answer must never be read as the answer to the next request.
                self._stop(kill=True)
                raise
            if status == "memory":
                self._stop(kill=False)  # the child is on its way out
        if status == "ok":
            return payload
        if status == "memory":
            raise ExtractError(self._memory_reason())
        raise ExtractError(payload)

    def _exchange(
        self, request: tuple[str, str | None, OcrOptions | None],
        on_progress: ProgressCallback | None, cancel: Any,
    ) -> tuple[str, Any]:
        conn = self._ensure_started()
        try:
            conn.send(request)
        except OSError:  # the child died between calls: start another, once
            self._stop(kill=True)
            conn = self._ensure_started()
            conn.send(request)
        while True:
            self._wait(conn, cancel)
            try:
                reply = conn.recv()
            except (EOFError, OSError):
                raise ExtractError(self._death_reason()) from None
            if reply[0] != "progress":
                return reply
            if on_progress is not None:
                on_progress(reply[1], reply[2])

    def _wait(self, conn: Connection, cancel: Any) -> None:
        """Wait for the child's next message, at most the time limit; watch ``cancel``."""
        deadline = time.monotonic() + self.timeout_s
        while not conn.poll(CANCEL_POLL_S if cancel is not None else self.timeout_s):
            if cancel is not None and cancel.is_set():
                raise ExtractionCancelled("cancelled")
            if time.monotonic() >= deadline:
                raise ExtractError(f"extraction timed out after {self.timeout_s:g} s")

    def close(self) -> None:
        """End the child process; later calls raise RuntimeError."""
        with self._lock:
            self._closed = True
            self._stop(kill=False)

    def _memory_reason(self) -> str:
        return f"extraction used more than {self.memory_mb} MB of memory"

    def _ensure_started(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return self._conn
        self._stop(kill=True)
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_serve, args=(child, self.memory_mb), name="grounded-extract", daemon=True
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        self.starts += 1
        if not parent.poll(START_TIMEOUT_S):
            self._stop(kill=True)
            raise RuntimeError(f"extraction sandbox did not start in {START_TIMEOUT_S:g} s")
        try:
            status, payload = parent.recv()
        except (EOFError, OSError):
            reason = self._death_reason()
            raise RuntimeError(f"extraction sandbox could not start: {reason}") from None
        if status != "ready":
            self._stop(kill=True)
            raise RuntimeError(f"extraction sandbox could not start: {payload}")
        if not payload:
            log.warning("extraction sandbox runs without a memory limit on this system")
        log.debug("extraction sandbox started (pid %s)", process.pid)
        return parent

    def _death_reason(self) -> str:
        """Why the child stopped answering; forgets the child."""
        process = self._process
        if process is not None:
            process.join(5)
        code = process.exitcode if process is not None else None
        self._stop(kill=True)
        if code is not None and code < 0:
            if -code == signal.SIGKILL:  # the kernel's OOM killer, most likely
                return self._memory_reason()
            return f"extractor crashed (signal {-code})"
        return f"extractor exited unexpectedly (exit code {code})"

    def _stop(self, *, kill: bool) -> None:
        """End the child (politely unless ``kill``) and forget it."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            if not kill and process is not None and process.is_alive():
                with contextlib.suppress(OSError):
                    conn.send(None)
            conn.close()
        if process is None:
            return
        if not kill:
            process.join(2)
        if process.is_alive():
            process.kill()
        process.join()
        process.close()

"""What every command shares: JSON or human output, the progress line, Ctrl-C as cancel, and
the workspace built from the settings with the command's options on top."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from desktop.core.config import Settings, home
from desktop.core.workspace import Workspace


def emit(data: dict[str, Any], as_json: bool, human: Callable[[], None]) -> None:
    """``data`` as one JSON object on stdout with ``--json``, else the human text."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, default=str))
    else:
        human()


def err(text: str) -> None:
    """A line for the person, on stderr (stdout stays for ``--json``)."""
    click.echo(text, err=True)


def fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def settings_with(**options: Any) -> Settings:
    """The saved settings with the command's options on top (options left as None keep the
    settings' value); nothing is saved."""
    return replace(Settings.load(), **{k: v for k, v in options.items() if v is not None})


def workspace(**options: Any) -> Workspace:
    """The workspace on :func:`settings_with` ``options``."""
    return Workspace(settings_with(**options))


def adapter_settings(adapters: tuple[str, ...], scales: tuple[float, ...]
                     ) -> list[dict[str, Any]] | None:
    """``--adapter`` / ``--adapter-scale`` as the settings' adapter list (None: none named,
    the settings' own apply). A tuned adapter's name is looked up in the data folder."""
    from desktop.core.model.adapter_store import resolve

    if len(scales) > len(adapters):
        raise click.UsageError("more --adapter-scale values than --adapter files")
    if not adapters:
        return None
    data = home().data
    return [{"path": str(resolve(a, data)), "scale": scales[i] if i < len(scales) else 1.0}
            for i, a in enumerate(adapters)]


def quote_mode(flag: bool | None) -> str | None:
    """--quote → "always", --free → "never", neither → None (the settings')."""
    return None if flag is None else ("always" if flag else "never")


def model_setting(model: Path | str | None) -> str | None:
    """``--model`` as the settings' model path: a file, or a name ``grounded models`` lists."""
    from desktop.core.model.discovery import resolve_model

    if model is None:
        return None
    return resolve_model(str(model), home().data, tuple(Settings.load().model_folders))


def count(n: int, noun: str) -> str:
    """``n`` and its noun in words: "1 page", "3 pages"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class ProgressLine:
    """Progress on stderr: one rewritten line on a terminal, a line a second otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def show(self, p, force: bool = False) -> None:
        """Show an indexing :class:`~desktop.core.indexing.indexer.Progress`."""
        if p.phase != "indexing":
            return
        current = Path(p.current).name if p.current else ""
        ocr = ""
        if p.ocr_page is not None:
            ocr = f"OCR page {p.ocr_page[0] + 1}/{p.ocr_page[1]} · "
        if p.ocr_pages_done:
            ocr += f"{count(p.ocr_pages_done, 'OCR page')} at {p.ocr_pages_per_s:.2f}/s · "
        self.text(
            f"indexing {p.files_done}/{p.files_total} files · {count(p.chunks_done, 'chunk')} · "
            f"{p.chunks_per_s:.1f} chunks/s · {ocr}ETA {fmt_eta(p.eta_s)} · {current}", force)

    def text(self, line: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.1 if self.tty else 1.0):
            return
        self.last = now
        if self.tty:
            width = 120
            sys.stderr.write("\r" + line[:width].ljust(width))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


class CancelOnInterrupt:
    """Ctrl-C sets the token (the job stops cleanly); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.token = threading.Event()

    def __enter__(self) -> threading.Event:
        self._old = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.token.is_set():
                raise KeyboardInterrupt
            self.token.set()
            err("\nstopping after the current batch… (Ctrl-C again to abort)")

        signal.signal(signal.SIGINT, handler)
        return self.token

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._old)

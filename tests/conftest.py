"""Shared fixtures: a private GROUNDED_HOME per test, no network, the real embedder once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from desktop import process  # noqa: E402

process.prepare()  # every test runs with the socket guard and HF_HUB_OFFLINE=1

REPO = Path(__file__).resolve().parents[1]
EVAL = Path(os.environ.get("GROUNDED_EVAL", REPO.parent / "shared" / "eval"))


@pytest.fixture(autouse=True)
def grounded_home(tmp_path_factory, monkeypatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("GROUNDED_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    assert EVAL.is_dir(), f"the shared evaluation data is missing at {EVAL}"
    return EVAL


@pytest.fixture(scope="session")
def embedder():
    from desktop.core.embedding.embedder import OnnxEmbedder

    emb = OnnxEmbedder()
    emb.load()
    return emb


@pytest.fixture
def store(tmp_path):
    from desktop.core.storage.store import Store

    with Store.open(tmp_path / "index.sqlite") as s:
        yield s


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: ``cli("index", path)`` returns (exit code, stdout, stderr)."""
    from desktop.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def make_window(qtbot, embedder):
    """Open the real window on this test's GROUNDED_HOME (the session's embedder, the model on
    one thread: spinning workers on two busy cores slow tests many times over); every window
    is closed at the end."""
    from desktop.core.config import Settings
    from desktop.core.workspace import Workspace
    from desktop.gui.main_window import MainWindow

    windows = []

    def make(**settings):
        workspace = Workspace(Settings(n_threads=1, n_ctx=2048, **settings), embedder=embedder)
        window = MainWindow(workspace)
        qtbot.addWidget(window)
        window.show()
        window.start()
        qtbot.waitUntil(lambda: window.library.summary is not None, timeout=60_000)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()

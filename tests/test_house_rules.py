"""House rules a tool can check: ruff is clean (with its complexity rules), the import
contracts hold (the core never imports Qt, the faces or the dev tools; the faces go through the
workspace), modules stay small, and importing the package changes nothing in the process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def test_ruff_is_clean():
    proc = subprocess.run([_tool("ruff"), "check", "desktop", "tests"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_import_contracts_hold():
    proc = subprocess.run([_tool("lint-imports")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 kept, 0 broken" in proc.stdout


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(REPO)): n for p in (REPO / "desktop").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}


def test_importing_the_package_and_its_faces_changes_nothing():
    code = ("import os, sys; before = dict(os.environ); import desktop, desktop.cli, "
            "desktop.core.workspace; assert dict(os.environ) == before, "
            "set(os.environ.items()) ^ set(before.items()); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'apsw', 'onnxruntime', 'llama_cpp', 'PySide6', 'torch')))")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"  # and no heavy library is loaded by the import

"""A SIGKILL at any moment leaves a consistent database, and the next run finishes the job.

Real subprocesses of the real CLI are killed at several points; the database must pass
``PRAGMA integrity_check`` after each kill, and the final index must hold exactly the chunks of
an uninterrupted run: no duplicates, no orphans in vec0 or FTS5.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop.core.storage.store import Store

# Each kill: wait for the run's first progress line (or its first line after a write), then
# wait the delay. The next run resumes from what the killed one left.
KILLS = [(False, 0.0), (True, 0.0), (True, 0.4), (False, 2.5)]
# The real CLI, writing every 64 chunks instead of 512: this small corpus then takes several
# transactions, and kills land between them as well as inside them.
_CLI = ("import sys; from desktop.core.indexing import indexer; indexer.FLUSH_CHUNKS = 64; "
        "from desktop.cli import main; main(sys.argv[1:])")


def _cli(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "GROUNDED_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", _CLI, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _chunks(home: Path) -> list[tuple[str, int, str]]:
    with Store.open(home / "data" / "index.sqlite") as s:
        assert s.integrity_check() == "ok"
        counts = s.counts()
        assert counts["chunks"] == counts["vectors"] == counts["keywords"], counts
        for table, key in (("chunk_floats", "id"), ("vector_codes", "rowid")):
            orphans = s.con.execute(
                f"SELECT count(*) FROM {table} WHERE {key} NOT IN (SELECT id FROM chunks)"
            ).fetchone()[0]
            assert orphans == 0, table
        rows = s.con.execute(
            "SELECT d.path, c.ord, c.text FROM chunks c JOIN documents d ON d.id = c.document_id"
        ).fetchall()
    return sorted((Path(p).name, o, t) for p, o, t in rows)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, eval_dir) -> Path:
    root = tmp_path_factory.mktemp("crash") / "docs"
    root.mkdir()
    for f in sorted((eval_dir / "squad_v1.1_dev" / "corpus_small").iterdir())[:150]:
        shutil.copy(f, root / f.name)
    for name in ("pysample_004_pdflatex-4-pages.pdf", "pdfminer_enc_aes-128.pdf"):
        shutil.copy(eval_dir / "pdfs" / name, root / name)
    return root


def test_sigkill_at_several_points_then_resume_gives_the_uninterrupted_index(corpus, tmp_path):
    reference_home = tmp_path / "reference"
    ref = _cli(reference_home, "index", str(corpus))
    assert ref.wait(timeout=600) == 0, ref.stderr.read()
    expected = _chunks(reference_home)
    assert len(expected) > 150

    home = tmp_path / "killed"
    kills, partial_sizes = 0, set()
    for after_a_write, delay in KILLS:
        proc = _cli(home, "index", str(corpus))
        for line in proc.stderr:  # "indexing 3/152 files · 64 chunks · …"
            if line.startswith("indexing") and not (after_a_write and " · 0 chunks" in line):
                break
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        if (home / "data" / "index.sqlite").exists():
            partial = _chunks(home)
            assert len(set(partial)) == len(partial)  # no duplicates, ever
            partial_sizes.add(len(partial))
    assert kills >= 3
    assert partial_sizes - {0, len(expected)}, f"no kill fell between writes: {partial_sizes}"
    final = _cli(home, "index", str(corpus), "--json")
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    assert _chunks(home) == expected

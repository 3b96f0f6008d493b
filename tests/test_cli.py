"""The command-line contract: exit codes, one-line errors, --json on stdout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.core.embedding.embedder import bundled_model_path


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "notes"
    root.mkdir()
    (root / "a.md").write_text("# Pets\n\nThe cat is called Miso.\n")
    (root / "b.txt").write_bytes(b"\x00binary\x00" * 100)
    return root


def test_index_status_forget_round_trip(cli, folder):
    code, out, err = cli("index", str(folder), "--collection", "home", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["added"] == 2 and report["chunks"] == 1
    assert report["skipped"][0][0].endswith("b.txt")
    assert "done: 2 added" in err and "done" not in out  # human text goes to stderr
    assert "; 1 chunk in " in err

    code, out, _ = cli("status", "--json")
    status = json.loads(out)
    assert code == 0 and status["documents"] == 2 and status["chunks"] == 1
    assert status["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert status["database_bytes"] > 0 and Path(status["database"]).exists()
    # One cell: its one float vector (384 dims) and id are searched in memory.
    assert status["vector_cells"] == 1 and status["search_memory_bytes"] == 384 * 4 + 16
    (home,) = status["collections"]
    assert home["name"] == "home" and home["roots"][0]["path"] == str(folder)
    assert home["problems"][0]["status"] == "skipped" and "binary" in home["problems"][0]["reason"]

    code, out, _ = cli("status")
    assert code == 0 and "[home] 2 documents, 1 chunk\n" in out
    assert f"{folder}: 2 documents (1 indexed, 1 skipped), 1 chunk\n" in out
    assert "0.0 MB in memory; vectors filed in one cell" in out

    code, out, _ = cli("forget", str(folder), "--json")
    assert code == 0 and json.loads(out)["documents"] == 2
    assert json.loads(cli("status", "--json")[1])["documents"] == 0


def test_user_errors_are_one_line_and_exit_1(cli, tmp_path):
    code, out, err = cli("index", str(tmp_path / "missing"))
    assert code == 1 and out == ""
    assert err.strip() == f"error: {tmp_path / 'missing'}: no such file or folder"
    code, _, err = cli("forget", str(tmp_path))
    assert code == 1 and "is not an indexed folder" in err and "Traceback" not in err
    code, _, err = cli("forget", "--collection", "nope")
    assert code == 1 and err.strip() == "error: no collection named 'nope'"


def test_bad_arguments_exit_2(cli):
    assert cli("index", "--no-such-flag")[0] == 2
    assert cli("bench", "nonsense")[0] == 2
    assert cli("forget")[0] == 2


def test_version_is_pyprojects(cli):
    """One source of truth: the installed metadata, which is pyproject.toml's version."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    expected = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"grounded, version {expected}"


def test_another_embedder_is_announced_and_needs_reembed(cli, folder, tmp_path):
    other = tmp_path / "other-model"
    shutil.copytree(bundled_model_path(), other)
    assert cli("index", str(folder))[0] == 0
    code, _, err = cli("index", "--embedder", str(other))
    assert code == 1 and "--reembed" in err and "all-MiniLM-L6-v2" in err
    code, out, err = cli("index", "--embedder", str(other), "--reembed", "--json")
    assert code == 0, err
    assert "re-embedding every document" in err
    assert json.loads(out)["reembedded"] is True
    status = json.loads(cli("status", "--json")[1])
    assert status["embedder"] == str(other) and status["chunks"] == 1


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_an_unreadable_file_is_recorded_with_the_reason(tmp_path):
    root = tmp_path / "perm"
    root.mkdir()
    (root / "ok.txt").write_text("Readable text about herons.")
    secret = root / "secret.txt"
    secret.write_text("unreadable")
    secret.chmod(0)
    cmd = [sys.executable, "-m", "desktop", "index", str(root), "--json"]
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that let it
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "GROUNDED_HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["added"] == 2
    assert report["failed"] == [[str(secret), "cannot read: Permission denied"]]


def test_eval_reports_retrieval_quality_per_mode(cli, eval_dir):
    follow_ups = Path(__file__).parent / "data" / "follow_ups.jsonl"
    code, out, err = cli("eval", str(eval_dir / "squad_v1.1_dev"), "--limit", "12",
                              "--no-answers", "--follow-ups", str(follow_ups), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["questions"] == 12
    rows = data["configurations"]
    assert set(rows) == {"hybrid", "vector", "bm25"}
    for row in rows.values():
        assert 0.0 <= row["recall@1"] <= row["recall@5"] <= row["recall@10"] <= 1.0
        assert 0.0 <= row["evidence@1"] <= row["evidence@3"] <= 1.0
        assert row["evidence_ms_p95"] > 0
    assert rows["hybrid"]["recall@5"] >= 0.7
    assert rows["hybrid"]["evidence@1"] > rows["hybrid"]["passage_first@1"]
    check = data["sentence_check"]
    assert check["true_sentences"] == 12 and check["changed_sentences"] > 0
    assert check["check_recall"] >= 0.8 and check["true_unsupported"] <= 0.1
    fu = data["follow_ups"]
    assert fu["pairs"] >= 60
    assert fu["follow_up_in_conversation"] >= 0.9 * fu["standalone"]
    assert abs(fu["standalone_after_unrelated"] - fu["standalone"]) <= 0.01


def test_benchmarks_run_on_a_folder_a_person_names(cli, folder):
    code, out, err = cli("bench", "rescan", str(folder), "--json")
    assert code == 0, err
    rescan = json.loads(out)
    assert rescan["files"] == 2 and rescan["rescan_s"] > 0 and rescan["ratio"] > 0
    code, out, err = cli("bench", "retrieve", str(folder), "--sizes", "300", "--json")
    assert code == 0, err
    row = json.loads(out)["300"]
    assert row["recall@10"] == 1.0 and row["hybrid_ms_p95"] > 0
    assert row["new_chunks_found"] == "5/5" and row["index_chunks_per_s"] > 0
    code, _, err = cli("bench", "retrieve", str(folder / "b.txt"))
    assert code == 2 and "b.txt" in err  # a file is not a folder: a usage error

"""Finding the GGUF models already on this computer, in the layouts the apps really use."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import desktop.core.model.discovery as discovery
from desktop.cli import cli
from desktop.core.errors import GroundedError
from desktop.core.model.discovery import ModelCatalog, resolve_model
from desktop.core.model.modelfile import bundled_model_path
from desktop.dev.model_layouts import MODELS, make_home

MOVED_BY = ("HF_HOME", "HF_HUB_CACHE", "OLLAMA_MODELS", "LLAMA_CACHE")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("person")
    return root, make_home(root)


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch) -> None:
    for name in MOVED_BY:
        monkeypatch.delenv(name, raising=False)


def catalog(home: tuple[Path, Path], cache: Path | None = None) -> ModelCatalog:
    root, own = home
    return ModelCatalog(cache, (str(own),), root)


def test_every_layout_is_found_and_told_apart(home) -> None:
    found = catalog(home).scan()
    models = {(m.source, m.name) for m in found.models}
    assert set(MODELS) <= models
    assert ("Grounded", bundled_model_path().stem) in models
    smol = next(m for m in found.models if m.source == "Ollama")
    assert smol.architecture == "llama" and smol.quantization == "Q4_1"
    assert 130e6 < smol.parameters < 140e6 and smol.context_length == 8192
    assert smol.chat_template and smol.fits_memory is not None
    assert Path(smol.path).name.startswith("sha256-")
    kinds = {f.name: f.kind for f in found.found if f.kind != "model"}
    assert kinds == {"tone-lora": "adapter", "bge-small": "embedder",
                     "mmproj-smol": "projector", "half-a-model": "broken"}
    broken = next(f for f in found.found if f.kind == "broken")
    assert broken.error.startswith("truncated")


def test_a_symlinked_hub_snapshot_is_listed_once(home) -> None:
    hub = [m for m in catalog(home).scan().models if m.source == "Hugging Face"]
    assert len(hub) == 1 and "snapshots" in hub[0].path


def test_an_environment_variable_moves_a_store(home, monkeypatch, tmp_path) -> None:
    root, _ = home
    moved = tmp_path / "elsewhere"
    (root / ".ollama" / "models").rename(moved)
    try:
        monkeypatch.setenv("OLLAMA_MODELS", str(moved))
        assert any(m.source == "Ollama" for m in catalog(home).scan().models)
    finally:
        moved.rename(root / ".ollama" / "models")


def test_a_second_scan_reads_no_header_until_a_file_changes(home, tmp_path, monkeypatch) -> None:
    cache = tmp_path / "models.json"
    first = catalog(home, cache).scan()
    assert json.loads(cache.read_text())["files"]

    def no_reading(path):
        raise AssertionError(f"header read again: {path}")

    monkeypatch.setattr(discovery, "gguf_header", no_reading)
    assert catalog(home, cache).scan().found == first.found
    # The models are hard links of the bundled file: touch a file of the person's own.
    embedder = home[1] / "embedders" / "bge-small.gguf"
    os.utime(embedder, ns=(embedder.stat().st_atime_ns, embedder.stat().st_mtime_ns + 10**6))
    with pytest.raises(AssertionError, match="bge-small"):
        catalog(home, cache).scan()


def test_a_model_is_named_by_its_listed_name(home, tmp_path, monkeypatch) -> None:
    root, own = home
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: root))
    path = resolve_model("smollm2:135m", tmp_path, (str(own),))
    assert Path(path).name.startswith("sha256-")
    assert resolve_model("my-smollm2.q4_1", tmp_path, (str(own),)).endswith("my-smollm2.Q4_1.gguf")
    assert resolve_model(str(own / "x.gguf"), tmp_path) == str(own / "x.gguf")  # a path stays
    with pytest.raises(GroundedError, match="no model named 'llama-70b'.*grounded models"):
        resolve_model("llama-70b", tmp_path, (str(own),))


def test_grounded_models_lists_them(home, monkeypatch) -> None:
    root, own = home
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: root))
    runner = CliRunner()
    added = runner.invoke(cli, ["models", "--add-folder", str(own)])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["models", "--json"])
    data = json.loads(listed.stdout)
    names = {(m["source"], m["name"]) for m in data["models"] if m["kind"] == "model"}
    assert set(MODELS) <= names
    assert {m["evidence_sentences"] for m in data["models"] if m["kind"] == "model"} == {2}
    assert all("evidence_sentences" not in m for m in data["models"] if m["kind"] != "model")
    human = runner.invoke(cli, ["models"]).stdout
    assert "LoRA adapters:" in human and "tone-lora" in human and "Unreadable:" in human
    assert "135M · Q4_1 · 98 MB" in human and "reads the 2 evidence sentences" in human

    removed = runner.invoke(cli, ["models", "--remove-folder", str(own), "--json"])
    assert removed.exit_code == 0, removed.output
    left = {(m["source"], m["name"]) for m in json.loads(removed.stdout)["models"]}
    assert ("your folder", "my-smollm2.Q4_1") not in left
    assert set(MODELS) - {("your folder", "my-smollm2.Q4_1")} <= left
    again = runner.invoke(cli, ["models", "--remove-folder", str(own)])
    assert isinstance(again.exception, GroundedError)  # main() prints it as one line
    assert "is not a folder added to search for models (added: none)" in str(again.exception)


def test_an_answer_records_the_models_speed_for_the_list(home) -> None:
    from desktop.core.config import Settings
    from desktop.core.jobs import run_job
    from desktop.core.workspace import Workspace

    with Workspace(Settings(n_ctx=1024, n_threads=1)) as ws:
        answer = run_job(ws.ask("Say hello.", None, retrieval=False), lambda _: None)
        data = ws.dirs.data
    assert answer.generation is not None
    found = ModelCatalog(data / "models.json", (), home[0]).scan()
    bundled = next(m for m in found.models if m.source == "Grounded")
    assert bundled.tokens_per_s and bundled.tokens_per_s > 1
    assert bundled.first_token_ms and bundled.first_token_ms > 0


def test_the_first_load_of_a_model_measures_its_speed_once(home, embedder, monkeypatch) -> None:
    import re
    import threading

    from desktop.core.config import Settings
    from desktop.core.model.engine import Engine
    from desktop.core.workspace import Workspace

    with Workspace(Settings(n_ctx=1024, n_threads=1), embedder=embedder) as ws:
        states = list(ws.warm_up(threading.Event()))
        data = ws.dirs.data
    assert [(s.model, s.state) for s in states][-2:] == [("speed", "loading"), ("speed", "ready")]
    measured = states[-1].detail
    assert re.fullmatch(r"\d+ tokens/s, first token \d+\.\d s", measured), measured
    listed = ModelCatalog(data / "models.json", (), home[0]).scan()
    assert next(m for m in listed.models if m.source == "Grounded").tokens_per_s > 1

    def no_generation(*_a, **_k):
        raise AssertionError("the speed was measured again")

    monkeypatch.setattr(Engine, "chat", no_generation)
    with Workspace(Settings(n_ctx=1024, n_threads=1), embedder=embedder) as ws:
        assert list(ws.warm_up(threading.Event()))[-1].detail == measured


def test_what_a_model_reads_follows_its_size_unless_set(home) -> None:
    from desktop.core.answering.reading import LARGE_MODEL_FROM, reading_text, sentences_for
    from desktop.core.config import Settings
    from desktop.core.workspace import Workspace

    assert sentences_for(135_000_000) == 2 and sentences_for(LARGE_MODEL_FROM) == 4
    assert sentences_for(8_000_000_000, setting=3) == 3
    assert sentences_for(135_000_000, setting=0) == 0
    assert reading_text(0) == "whole passages" and reading_text(1) == "the 1 evidence sentence"
    with Workspace(Settings(n_ctx=1024, n_threads=1)) as ws:
        assert ws.engine().info.parameters == 134_515_008  # the bundled file's tensors
        assert ws.answerer(None).sentences == 2
    with Workspace(Settings(n_ctx=1024, n_threads=1, focus_sentences=0)) as ws:
        assert ws.answerer(None).sentences == 0

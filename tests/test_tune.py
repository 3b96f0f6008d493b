"""Tune: real tuning runs on the bundled model (the numpy llama of tune_model), the exported
adapter in llama.cpp, the self-check catching both export traps, cancel and bad input leaving
nothing behind, adapters by name in the CLI, and the form score.

One small run is shared by the module (`tuned`): 10 examples (2 held out), 2 epochs of
batches of 4, a high learning rate so that a few steps change the answers.
"""

from __future__ import annotations

import functools
import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import gguf
import numpy as np
import pytest

from desktop.core.answering.form import form, form_against, tokens
from desktop.core.errors import AdapterError, GroundedError
from desktop.core.jobs import run_job
from desktop.core.model import adapter_store
from desktop.core.model.adapters import check_adapter
from desktop.core.model.engine import Engine, bundled_model_path
from desktop.core.tuning import train as tune_train
from desktop.core.tuning import tuner as tune_module
from desktop.core.tuning.examples import MIN_EXAMPLES, parse_examples, read_examples
from desktop.core.tuning.export import judge, lora_tensors, write_gguf_lora
from desktop.core.tuning.tuner import TuneOptions, Tuner, default_held_out
from desktop.core.tuning.tuner import current_rss as tune_current_rss
from desktop.dev.model_layouts import one_tensor_gguf

REPO = Path(__file__).resolve().parents[1]
MEMO = REPO / "resources" / "tune" / "memo-style.jsonl"
TINY = TuneOptions(epochs=2, learning_rate=3e-3, held_out=2, max_new_tokens=48,
                   check_tokens=160)


@pytest.fixture(scope="module")
def examples():
    return read_examples(MEMO)[:10]


def export_permuted(tuner: Tuner, path: Path, name: str, only=None) -> Path:
    """The last run's LoRA with the q/k lora_b rows permuted: the wrong export of trap 1."""
    cfg = tuner.model.config
    tensors = lora_tensors(tuner.lora, cfg.n_head, cfg.n_head_kv, permute_qk=True, only=only)
    return write_gguf_lora(path, tuner.info.architecture, tensors, alpha=TINY.alpha, name=name)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, examples):
    """One real tuning run, then the adapter exported wrongly on purpose (before any other
    run replaces the trained LoRA): the q/k rows permuted, alpha = rank."""
    data = tmp_path_factory.mktemp("data")
    tuner = Tuner(None, data, TINY)
    records = []
    report = run_job(tuner.run(examples, "memo-tiny"), records.append)
    wrong = tmp_path_factory.mktemp("wrong")
    held = tune_train.encode(tuner.tokenizer, examples[:2], TINY.system_prompt)
    paths = {
        "right": tuner.export(wrong / "right.gguf", "right"),
        "right_qk": tuner.export(wrong / "right-qk.gguf", "qk", only=("attn_q", "attn_k")),
        "perm": export_permuted(tuner, wrong / "perm.gguf", "p"),
        "perm_qk": export_permuted(tuner, wrong / "perm-qk.gguf", "pqk",
                                   only=("attn_q", "attn_k")),
        "alpha": tuner.export(wrong / "alpha.gguf", "alpha", alpha=float(TINY.rank)),
    }
    checks = {
        "right": tuner.self_check(paths["right"], held, paths["right_qk"]),
        "perm": tuner.self_check(paths["perm"], held, paths["perm_qk"]),
        "alpha": tuner.self_check(paths["alpha"], held, paths["right_qk"]),
    }
    return {"tuner": tuner, "report": report, "records": records, "data": data,
            "paths": paths, "checks": checks}


# -- the run ---------------------------------------------------------------------------


def test_a_tiny_run_makes_an_adapter_that_llama_cpp_loads_and_that_passes_the_self_check(
        tuned):
    report, data = tuned["report"], tuned["data"]
    assert not report.cancelled
    adapter = Path(report.adapter)
    assert adapter == data / "adapters" / "memo-tiny.gguf" and adapter.is_file()
    assert sorted(p.name for p in adapter.parent.iterdir()) == ["memo-tiny.gguf",
                                                               "memo-tiny.json"]
    info = check_adapter(adapter, bundled_model_path())
    assert info.alpha == 16.0 and info.ranks == (8,) and len(info.targets) == 30 * 7
    c = report.check
    assert c.passed and c.logit_correlation >= 0.99, c
    assert c.change_correlation > 0.9 and 0.8 < c.change_scale < 1.25, c
    with Engine(n_ctx=512, n_threads=1) as engine:
        engine.set_adapters([(adapter, 1.0)])  # llama.cpp loads it
        assert [i.path for i, _ in engine.adapters] == [adapter.absolute()]
    # Progress: loading, the estimate, a record per step, export, check, each comparison.
    phases = [r.phase for r in tuned["records"]]
    assert phases[:2] == ["loading", "estimate"] and phases[-1] == "done"
    steps = [r for r in tuned["records"] if r.phase == "training"]
    assert [r.step for r in steps] == list(range(1, report.steps + 1)) and report.steps >= 4
    assert all(r.loss > 0 and r.eta_s is not None for r in steps)
    assert report.losses[-1] < report.losses[0]
    e = report.estimate
    assert e.steps == report.steps and e.trained == 8 and e.held_out == 2
    assert e.train_tokens == report.train_tokens and e.tokens_per_s > 0 and e.peak_bytes > 0


def test_the_tuned_adapter_changes_the_answers_to_the_held_out_prompts(tuned, examples):
    report = tuned["report"]
    assert len(report.held_out) == 2
    trained_prompts = {e.prompt for e in examples} - {a.prompt for a in report.held_out}
    assert len(trained_prompts) == 8
    assert all(a.base != a.tuned for a in report.held_out)
    assert report.form_tuned > report.form_base
    # The metadata beside the adapter, for compare and eval.
    meta = adapter_store.read_meta(report.adapter)
    assert meta.base_model == str(bundled_model_path())
    assert meta.ideal_replies == [a.ideal for a in report.held_out]
    assert meta.raw["form_tuned"] == pytest.approx(report.form_tuned)
    assert meta.raw["self_check"]["passed"] is True and meta.raw["examples"] == 10


def test_training_renders_prompts_exactly_as_the_engine_does(tuned, examples):
    tokenizer = tuned["tuner"].tokenizer
    with Engine(n_ctx=512, n_threads=1) as engine:
        for ex in examples[:3]:
            messages = tune_train.messages(ex.prompt, TINY.system_prompt)
            assert tune_train.render(tokenizer, ex.prompt, TINY.system_prompt) == \
                engine.format_prompt(messages)


# -- the two export traps ---------------------------------------------------------------


def test_the_right_export_passes_and_matches_the_run(tuned):
    right = tuned["checks"]["right"]
    assert right.passed, right
    assert right.qk_change_correlation > 0.7 and right.qk_change_rms > right.noise_rms


def test_an_export_with_the_qk_rows_permuted_fails_the_self_check(tuned):
    # Trained in llama.cpp's row order, the LoRA is right as it is; the permutation an
    # export from transformers' layout needs scrambles it.
    right, wrong = tuned["checks"]["right"], tuned["checks"]["perm"]
    assert not wrong.passed and "q/k" in wrong.reason
    assert wrong.qk_change_correlation < 0.5 < right.qk_change_correlation


def test_an_export_with_the_wrong_alpha_fails_the_self_check(tuned):
    right, wrong = tuned["checks"]["right"], tuned["checks"]["alpha"]
    assert not wrong.passed and "alpha" in wrong.reason
    assert wrong.change_scale < 0.75 < right.change_scale
    reader = gguf.GGUFReader(tuned["paths"]["alpha"])
    assert float(reader.fields["adapter.lora.alpha"].contents()) == 8.0


def test_judge_refuses_logits_that_do_not_follow_the_tuned_model():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(20, 300)).astype(np.float32)
    change = rng.normal(size=base.shape).astype(np.float32)
    qk = 0.5 * rng.normal(size=base.shape).astype(np.float32)
    ok = judge(base, base + change, base + qk, base, base + change, base + qk)
    assert ok.passed and ok.logit_correlation > 0.999
    noise = judge(base, base + change, base + qk, base, base + rng.normal(size=base.shape),
                  base + qk)
    assert not noise.passed and "correlates" in noise.reason


# -- cancel, errors: nothing half-written ------------------------------------------------


def test_cancel_during_training_leaves_no_adapter(tuned, examples, tmp_path):
    tuner = tuned["tuner"]
    tuner.data = tmp_path
    cancel = threading.Event()
    report = run_job(tuner.run(examples, "cancelled", cancel),
                   lambda r: cancel.set() if r.phase == "training" else None)
    assert report.cancelled and report.adapter is None and report.steps == 1
    assert not (tmp_path / "adapters").exists() or not any((tmp_path / "adapters").iterdir())


def test_an_adapter_that_fails_the_self_check_is_refused_and_not_kept(tuned, examples,
                                                                      tmp_path, monkeypatch):
    tuner = tuned["tuner"]
    tuner.data = tmp_path
    # Every export of this run writes the q/k rows permuted (trap 1).
    monkeypatch.setattr(tune_module.tune_export, "lora_tensors",
                        functools.partial(lora_tensors, permute_qk=True))
    tuner.options = replace(TINY, epochs=1)
    try:
        with pytest.raises(GroundedError, match="does not match the tuned model.*q/k"):
            run_job(tuner.run(examples, "permuted"))
    finally:
        tuner.options = TINY
    assert not any((tmp_path / "adapters").iterdir())


def test_an_example_longer_than_the_token_cap_names_its_line(tuned, examples, tmp_path):
    tuner = tuned["tuner"]
    tuner.data = tmp_path
    tuner.options = replace(TINY, batch_tokens=80)
    try:
        with pytest.raises(GroundedError, match=r"example on line \d+ has \d+ tokens; the cap "
                                                r"per batch is 80"):
            run_job(tuner.run(examples, "long"))
    finally:
        tuner.options = TINY
    assert not (tmp_path / "adapters").exists()


def short_of_memory(tuner, examples, tokens: int) -> int:
    """Bytes "available" such that the estimate finds room for about ``tokens`` per batch
    (this machine has GBs to spare, so the shortage is what the tuner is told)."""
    longest = max(len(e) for e in tune_train.encode(tuner.tokenizer, examples,
                                                     TINY.system_prompt))
    need = tune_train.training_bytes(tuner.model.config, tokens, longest)
    return int((tune_current_rss() + need) / tune_module.MEMORY_SHARE)


def test_short_memory_lowers_the_tokens_per_batch_before_training(tuned, examples,
                                                                   tmp_path):
    tuner = tuned["tuner"]
    tuner.data = tmp_path
    lengths = [len(e) for e in tune_train.encode(tuner.tokenizer, examples,
                                                 TINY.system_prompt)]
    want = max(lengths) + 60  # room for the longest example, far below the 1,024 cap
    tuner._available = lambda: short_of_memory(tuner, examples, want)
    cancel = threading.Event()
    records = []
    try:
        report = run_job(tuner.run(examples, "short", cancel),
                       lambda r: (records.append(r), r.phase == "estimate" and cancel.set()))
    finally:
        del tuner._available
    e = report.estimate
    assert report.cancelled and e.requested_batch_tokens == TINY.batch_tokens
    assert max(lengths) <= e.batch_tokens < want + 40 < TINY.batch_tokens, e
    assert e.steps > tuned["report"].steps  # smaller batches, more of them
    assert not (tmp_path / "adapters").exists() or not any((tmp_path / "adapters").iterdir())


def test_too_little_memory_for_the_longest_example_is_a_clear_error(tuned, examples,
                                                                     tmp_path):
    tuner = tuned["tuner"]
    tuner.data = tmp_path
    tuner._available = lambda: short_of_memory(tuner, examples, 20)
    try:
        with pytest.raises(GroundedError, match=r"not enough memory to train: [\d.]+ GB "
                                                r"available, an example of \d+ tokens needs"):
            run_job(tuner.run(examples, "tiny-memory"))
    finally:
        del tuner._available
    assert not (tmp_path / "adapters").exists() or not any((tmp_path / "adapters").iterdir())


def test_an_existing_name_needs_force(tuned, examples):
    tuner = Tuner(None, tuned["data"], TINY)  # nothing loads before the check
    with pytest.raises(GroundedError, match="an adapter named 'memo-tiny' exists.*--force"):
        run_job(tuner.run(examples, "memo-tiny"))
    with pytest.raises(AdapterError, match="cannot name an adapter"):
        run_job(tuner.run(examples, "../evil"))


def test_a_model_of_another_architecture_is_a_clear_error(tmp_path, examples):
    path = one_tensor_gguf(tmp_path / "other.gguf", "rwkv6")
    tuner = Tuner(path, tmp_path / "data", TINY)
    with pytest.raises(GroundedError, match=r"other.gguf: tune takes llama-architecture GGUF "
                                            r"models without biases or RoPE scaling .+; this "
                                            r"one is rwkv6"):
        run_job(tuner.run(examples, "other"))
    assert not (tmp_path / "data" / "adapters").exists()


def test_a_llama_model_that_cannot_be_built_is_a_clear_error(tmp_path, examples):
    # llama, but without the metadata and weights a model is built from
    path = one_tensor_gguf(tmp_path / "broken-llama.gguf", "llama", context_length=64,
                            embedding_length=8)
    tuner = Tuner(path, tmp_path / "data", TINY)
    with pytest.raises(GroundedError, match=r"broken-llama.gguf: cannot load this model for "
                                            r"tuning \(its metadata lacks .+\)"):
        run_job(tuner.run(examples, "broken"))
    assert not (tmp_path / "data" / "adapters").exists()


# -- examples files ------------------------------------------------------------------------

GOOD = [{"prompt": f"Question {i}?", "reply": f"Answer {i}."} for i in range(MIN_EXAMPLES)]


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_examples_read_from_jsonl_and_csv(tmp_path):
    (tmp_path / "a.jsonl").write_text(jsonl(GOOD) + "\n")
    rows = read_examples(tmp_path / "a.jsonl")
    assert [r.prompt for r in rows] == [g["prompt"] for g in GOOD] and rows[2].line == 3
    csv = "prompt,reply,note\n" + "".join(f'"Q {i}, really?","A {i}\nsecond line",x\n'
                                          for i in range(MIN_EXAMPLES))
    (tmp_path / "b.csv").write_text(csv)
    rows = read_examples(tmp_path / "b.csv")
    assert rows[0].prompt == "Q 0, really?" and rows[0].reply == "A 0\nsecond line"
    assert rows[1].line == 4  # a quoted field spans two lines
    assert len(read_examples(MEMO)) == 64
    # Pasted text (the window): JSONL or CSV, told apart by a leading "{".
    assert len(parse_examples(jsonl(GOOD))) == len(parse_examples(csv)) == MIN_EXAMPLES


@pytest.mark.parametrize("text, message", [
    (jsonl(GOOD[:3]) + "{not json\n" + jsonl(GOOD[3:]), "line 4 is not valid JSON"),
    (jsonl(GOOD[:5]) + '{"prompt": "x"}\n' + jsonl(GOOD[5:]), 'line 6: "reply" is missing'),
    (jsonl(GOOD[:1]) + '{"prompt": "x", "reply": 3}\n' + jsonl(GOOD[1:]),
     'line 2: "reply" is a int, not text'),
    (jsonl(GOOD[:2]) + '["x", "y"]\n' + jsonl(GOOD[2:]), "line 3 is not a JSON object"),
    (jsonl(GOOD[:2]) + '{"prompt": " ", "reply": "y"}\n' + jsonl(GOOD[2:]),
     'line 3: "prompt" is empty'),
    (jsonl(GOOD[:MIN_EXAMPLES - 1]), f"has {MIN_EXAMPLES - 1} examples; tuning needs at least"),
])
def test_malformed_jsonl_is_a_one_line_error_naming_the_line(tmp_path, text, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(GroundedError, match=message) as err:
        read_examples(path)
    assert "\n" not in str(err.value)


def test_malformed_csv_and_files_are_clear_errors(tmp_path):
    cases = {
        "nohead.csv": ("q,a\n" + "x,y\n" * 9, "must be a CSV header naming the columns"),
        "short.csv": ("prompt,reply\n" + "x,y\n" * 4 + "lonely\n" + "x,y\n" * 4,
                      "line 6 has 1 field; the header has 2"),
        "latin.jsonl": (None, "is not UTF-8"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        if text is None:
            path.write_bytes(jsonl(GOOD).encode() + "caf\xe9".encode("latin-1"))
        else:
            path.write_text(text)
        with pytest.raises(GroundedError, match=message):
            read_examples(path)
    with pytest.raises(GroundedError, match="no such file"):
        read_examples(tmp_path / "missing.jsonl")


def test_batches_respect_the_token_cap_and_cover_every_example():
    lengths = [50, 300, 120, 90, 400, 60, 75, 200]
    batches = tune_train.plan_batches(lengths, 500, 4, epochs=2, seed=1)
    assert all(tune_train.padded_tokens(b, lengths) <= 500 or len(b) == 1 for b in batches)
    assert all(len(b) <= 4 for b in batches)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == sorted(list(range(8)) * 2)
    assert default_held_out(8) == 2 and default_held_out(64) == 8 and default_held_out(400) == 16


# -- the form score -----------------------------------------------------------------------


def test_form_is_rouge_l_f1_over_words_punctuation_and_line_breaks():
    memo = "MEMO\nSummary: Close the door.\nAction: None."
    assert form(memo, memo) == 1.0
    assert form("", memo) == 0.0 and form("entirely different", memo) == 0.0
    assert tokens("MEMO\nSummary: x.") == ["memo", "¶", "summary", ":", "x", "."]
    # The same words in another order score lower than in the taught order.
    shuffled = "Action: None.\nSummary: Close the door.\nMEMO"
    assert form(shuffled, memo) < 1.0
    # LCS 3 ("summary", ":", "x") of 4 and 6 tokens: P 3/4, R 3/6, F1 0.6.
    assert form("summary: x y", "MEMO\nSummary: x.") == pytest.approx(0.6)
    assert form_against("summary: x y", ["nothing alike", "MEMO\nSummary: x."]) == \
        pytest.approx(0.6)
    assert form_against("anything", []) is None


# -- adapters by name in the CLI ------------------------------------------------------------


def install(tuned, home: Path) -> Path:
    """Copy the tuned adapter and its metadata into this test's data folder."""
    folder = home / "data" / "adapters"
    folder.mkdir(parents=True, exist_ok=True)
    src = Path(tuned["report"].adapter)
    shutil.copy(src, folder / src.name)
    shutil.copy(src.with_suffix(".json"), folder / src.with_suffix(".json").name)
    return folder / src.name


def test_ask_takes_a_tuned_adapter_by_name(cli, tuned, grounded_home):
    install(tuned, grounded_home)
    prompt = tuned["report"].held_out[0].prompt
    code, out, err = cli("ask", prompt, "--no-retrieval", "--adapter", "memo-tiny", "--json")
    assert code == 0, err
    named = json.loads(out)["answer"]
    path = str(grounded_home / "data" / "adapters" / "memo-tiny.gguf")
    assert json.loads(cli("ask", prompt, "--no-retrieval", "--adapter", path, "--json")[1])[
        "answer"] == named
    base = json.loads(cli("ask", prompt, "--no-retrieval", "--json")[1])["answer"]
    assert named != base
    code, out, err = cli("ask", prompt, "--no-retrieval", "--adapter", "nope")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "no adapter named 'nope'" in err and "memo-tiny" in err


def test_compare_reports_form_with_a_tuned_adapter(cli, tuned, grounded_home, tmp_path):
    install(tuned, grounded_home)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "sky.md").write_text("# Sky\n\nThe sky is blue because air scatters blue light.\n")
    assert cli("index", str(docs))[0] == 0
    code, out, err = cli("compare", "Why is the sky blue?", "--adapter", "memo-tiny", "--json")
    assert code == 0, err
    rows = {r["config"]: r for r in json.loads(out)["rows"]}
    assert set(rows) == {"base", "retrieval", "adapter", "both"}
    for r in rows.values():
        assert r["refused"] or 0.0 <= r["form"] <= 1.0
    code, out, _ = cli("compare", "Why is the sky blue?", "--adapter", "memo-tiny")
    header = next(line for line in out.splitlines() if line.startswith("config"))
    assert code == 0 and " form " in header
    assert out.startswith("Evidence\n  1. The sky is blue because air scatters blue light.")


def test_tune_on_the_command_line(cli, tmp_path, examples):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "reply": "y"}\n' * 3 + "oops\n")
    code, out, err = cli("tune", str(bad), "--name", "x")
    assert code == 1 and out == "" and "bad.jsonl line 4 is not valid JSON" in err
    assert err.count("\n") == 1
    code, _, err = cli("tune", str(MEMO))
    assert code == 2 and "--name" in err
    small = tmp_path / "eight.jsonl"
    small.write_text(jsonl([{"prompt": e.prompt, "reply": e.reply} for e in examples[:8]]))
    code, out, err = cli("tune", str(small), "--name", "cli-made", "--epochs", "1", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["adapter"].endswith("adapters/cli-made.gguf") and report["check"]["passed"]
    assert report["estimate"]["total_s"] > 0 and len(report["held_out"]) == 2
    assert "estimate:" in err and "step 1/" in err and "tuned (form" in err
    assert adapter_store.known(Path(report["adapter"]).parents[1]) == ["cli-made"]


def test_eval_reports_form_with_a_tuned_adapter(cli, tuned, grounded_home, tmp_path):
    install(tuned, grounded_home)
    data = tmp_path / "facts"
    (data / "corpus").mkdir(parents=True)
    (data / "corpus" / "sky.md").write_text("# Sky\n\nThe sky is blue because air scatters "
                                            "blue light more than red light.\n")
    (data / "questions.jsonl").write_text(json.dumps(
        {"id": "q1", "question": "Why is the sky blue?", "answers": ["air scatters blue light"],
         "gold_doc_ids": ["sky"]}) + "\n")
    code, out, err = cli("eval", str(data), "--adapter", "memo-tiny", "--json")
    assert code == 0, err
    rows = json.loads(out)["configurations"]
    assert set(rows) >= {"hybrid", "none", "oracle", "adapter", "adapter+hybrid"}
    for config, row in rows.items():  # every answer row, base ones too, so they compare
        assert 0.0 <= row["form"] <= 1.0, config

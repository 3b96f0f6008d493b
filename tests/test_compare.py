"""`grounded compare`, `ask --adapter` and `eval` answer rows: real index, model and adapters."""

from __future__ import annotations

import json

import pytest

from desktop.core.answering.support import support
from desktop.core.model.adapters import write_lora
from desktop.core.model.engine import bundled_model_path

FACTS = {
    "warehouse.md": "# Security\n\nThe access code for the east warehouse is 4471-KESTREL.\n",
    "boat.md": "# Harbour\n\nThe harbour master's boat is called the Grey Heron.\n",
    "garden.txt": "Tomatoes in the Meadowlane allotment need six hours of sunlight each day.\n",
}
QUESTIONS = [
    ("q1", "What is the access code for the east warehouse?", "4471-KESTREL", "warehouse"),
    ("q2", "What is the harbour master's boat called?", "Grey Heron", "boat"),
]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    return write_lora(bundled_model_path(), tmp_path_factory.mktemp("a") / "tone.gguf", seed=3)


@pytest.fixture
def indexed(cli, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in FACTS.items():
        (root / name).write_text(text)
    assert cli("index", str(root))[0] == 0
    return root


def test_support_is_the_share_of_answer_words_in_the_passages():
    passages = ["The Broncos stayed at the Santa Clara Marriott."]
    assert support("Players stayed at the Santa Clara Marriott [1].", passages) == pytest.approx(
        4 / 5)  # "players" is not in the passage; "at", "the" and [1] do not count
    assert support("Paris is in France.", passages) == 0.0
    assert support("", passages) is None


def test_compare_answers_four_ways_with_measures(cli, indexed, adapter):
    question = QUESTIONS[0][1]
    code, out, err = cli("compare", question, "--adapter", str(adapter), "--adapter-scale",
                         "0.8", "--json")
    assert code == 0, err
    rows = {r["config"]: r for r in json.loads(out)["rows"]}
    assert list(rows) == ["base", "retrieval", "adapter", "both"]
    for r in rows.values():
        assert r["error"] is None and r["latency_ms"] > 0 and r["tokens"] > 0
    assert rows["base"]["sources"] == 0 and rows["retrieval"]["sources"] > 0
    assert "4471-KESTREL" in rows["retrieval"]["answer"]
    assert rows["retrieval"]["support"] > rows["base"]["support"]
    # The base row is the bare model's answer, the same as `ask --no-retrieval`.
    bare = json.loads(cli("ask", question, "--no-retrieval", "--json")[1])
    assert rows["base"]["answer"] == bare["answer"]
    # The adapter changes what the model writes.
    assert rows["adapter"]["answer"] != rows["base"]["answer"]


def test_ask_with_an_adapter_at_scale_zero_is_the_base_model(cli, indexed, adapter):
    question = QUESTIONS[1][1]
    base = json.loads(cli("ask", question, "--json")[1])["answer"]
    zero = json.loads(cli("ask", question, "--adapter", str(adapter), "--adapter-scale", "0",
                          "--json")[1])["answer"]
    assert zero == base


def test_a_broken_adapter_is_a_clear_error(cli, indexed, tmp_path):
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(write_lora(bundled_model_path(), tmp_path / "whole.gguf").read_bytes()[:5000])
    for args in (("ask", "anything"), ("compare", "anything")):
        code, out, err = cli(*args, "--adapter", str(bad))
        assert code == 1 and "cut.gguf" in err and "Traceback" not in err and out == ""
    code, _, err = cli("ask", "x", "--adapter", str(bad), "--adapter-scale", "1",
                       "--adapter-scale", "2")
    assert code == 2 and "more --adapter-scale" in err


def _facts(tmp_path):
    """A dataset folder of the made-up facts and their questions."""
    data = tmp_path / "facts"
    (data / "corpus").mkdir(parents=True)
    for name, text in FACTS.items():
        (data / "corpus" / name).write_text(text)
    with (data / "questions.jsonl").open("w") as f:
        for qid, question, answer, doc in QUESTIONS:
            f.write(json.dumps({"id": qid, "question": question, "answers": [answer],
                                "gold_doc_ids": [doc], "lang": "en"}) + "\n")
    return data


def test_eval_answers_only_the_configurations_named(cli, tmp_path):
    data = _facts(tmp_path)
    code, out, err = cli("eval", str(data), "--configs", "hybrid,oracle", "--json")
    assert code == 0, err
    rows = json.loads(out)["configurations"]
    assert {name for name, row in rows.items() if "f1" in row} == {"hybrid", "oracle"}
    assert rows["bm25"]["recall@1"] == 1.0  # retrieval is still measured in every mode
    code, _, err = cli("eval", str(data), "--configs", "hybrid,best")
    assert code != 0 and "unknown answer configuration best" in err


def test_eval_reports_answer_quality_per_configuration(cli, tmp_path, adapter):
    data = _facts(tmp_path)
    code, out, err = cli("eval", str(data), "--adapter", str(adapter), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["recall@5_by_language"] == {"en": {"hybrid": 1.0, "vector": 1.0, "bm25": 1.0}}
    rows = report["configurations"]
    assert set(rows) == {"hybrid", "vector", "bm25", "none", "oracle", "adapter",
                         "adapter+hybrid"}
    for row in rows.values():
        assert 0.0 <= row["em"] <= row["f1"] <= 1.0 and 0.0 <= row["support"] <= 1.0
    # Made-up facts: the bare model cannot know them; with the passages it copies them.
    assert rows["none"]["f1"] == 0.0
    assert rows["hybrid"]["f1"] > 0.2 and rows["oracle"]["f1"] > 0.2
    assert rows["hybrid"]["recall@1"] == 1.0

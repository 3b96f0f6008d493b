"""Follow-up questions: the hand-written pairs, and when the conversation joins the search."""

from __future__ import annotations

import json
from pathlib import Path

from desktop.core.answering.follow_up import search_text
from desktop.core.evaluation.evidence_measures import load_follow_ups

PAIRS = Path(__file__).parent / "data" / "follow_ups.jsonl"


def test_the_follow_up_set_is_whole_and_answerable_from_its_gold_paragraphs(eval_dir):
    pairs = load_follow_ups(PAIRS)
    assert len(pairs) >= 60
    assert len({p["follow_up"]["question"] for p in pairs}) == len(pairs)
    corpus = eval_dir / "squad_v1.1_dev" / "corpus_small"
    for pair in pairs:
        follow = pair["follow_up"]
        assert follow["question"] != follow["standalone"]
        text = " ".join((corpus / f"{d}.md").read_text(encoding="utf-8")
                        for d in follow["gold_doc_ids"])
        assert any(a in text for a in follow["answers"]), pair["id"]


def test_a_question_on_the_same_topic_is_searched_with_the_one_before(embedder):
    before = ["What ctenophore was accidentally introduced into the Black Sea?"]
    follow = "What is blamed for the drop in fish catches there?"
    assert search_text(embedder, follow, before) == f"{before[0]} {follow}"
    new_topic = "Which NFL team won Super Bowl 50?"
    assert search_text(embedder, new_topic, before) == new_topic
    assert search_text(embedder, follow, []) == follow


def test_a_broken_follow_ups_file_is_one_clear_error(tmp_path):
    import pytest

    from desktop.core.errors import GroundedError

    bad = tmp_path / "f.jsonl"
    bad.write_text(json.dumps({"first": {"question": "q"}}) + "\n")
    with pytest.raises(GroundedError, match="not a follow-ups file"):
        load_follow_ups(bad)

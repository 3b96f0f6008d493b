"""Conversations per collection (JSON in the data folder) and a cited passage in context."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np

from desktop.core.answering.conversations import (
    MAX_TURNS,
    CheckRecord,
    Conversations,
    EvidenceRecord,
    SourceRecord,
    Turn,
    turn_from_answer,
)
from desktop.core.storage.passages import passage_context
from desktop.core.storage.store import ChunkRecord, DocumentUpdate


def turn(q: str) -> Turn:
    src = SourceRecord(1, "/d/a.pdf", "the passage", page=3, page_end=4, chunk_id=7, score=0.5)
    return Turn(q, "an answer [1]", (src,), (1,), timings={"total_ms": 12.5}, tokens=4, at=1.0)


def test_conversations_are_kept_per_collection_and_round_trip(tmp_path):
    conv = Conversations(tmp_path / "conversations")
    assert conv.load("work") == []
    conv.append("work", turn("q1"))
    conv.append("work/private: ü", turn("q2"))  # any name is a safe file name
    assert conv.load("work") == [turn("q1")]
    assert [t.question for t in conv.load("work/private: ü")] == ["q2"]
    assert conv.load("work")[0].sources[0].label() == "a.pdf, pp. 3-4"
    conv.clear("work")
    assert conv.load("work") == []


def test_evidence_and_sentence_checks_round_trip_and_old_files_still_load(tmp_path):
    conv = Conversations(tmp_path)
    evidence = (EvidenceRecord(1, "The code is 12.", 7, 22, 0.9, "/d/a.pdf", 3),)
    checks = (CheckRecord("It is 12.", True, 0, 1), CheckRecord("It is blue.", False, None, 1))
    rich = Turn("q", "It is 12 [1]. It is blue.", turn("q").sources, (1,), evidence=evidence,
                checks=checks)
    conv.append("c", rich)
    assert conv.load("c") == [rich]
    assert conv.load("c")[0].evidence[0].label() == "a.pdf, p. 3"

    old = turn("old").to_dict()  # as written before evidence and checks were kept
    del old["evidence"], old["checks"]
    conv.path("old").write_text(json.dumps({"collection": "old", "turns": [old]}))
    loaded = conv.load("old")
    assert loaded == [turn("old")] and loaded[0].evidence == loaded[0].checks == ()
    assert not conv.path("old").with_suffix(".broken").exists()


def test_a_turn_from_an_answer_keeps_its_evidence_and_checks():
    source = SimpleNamespace(n=1, path="/d/a.md", text="Intro. The code is 12.", page=None,
                             page_end=None, heading=None, chunk_id=3, score=0.5,
                             excerpt="The code is 12.")
    evidence = SimpleNamespace(n=1, sentence="The code is 12.", path="/d/a.md", page=None,
                               heading=None, start=7, end=22, score=1.0)
    check = SimpleNamespace(text="It is 12.", supported=True, score=1.0, source=1, start=7,
                            end=22, evidence=0)
    answer = SimpleNamespace(question="q", text="It is 12 [1].", refused=False,
                             sources=[source], cited=(1,), timings={}, generation=None,
                             evidence=[evidence], sentences=[check])
    made = turn_from_answer(answer)
    assert made.evidence == (EvidenceRecord(1, "The code is 12.", 7, 22, 1.0, "/d/a.md"),)
    assert made.checks == (CheckRecord("It is 12.", True, 0, 1),)
    del answer.evidence, answer.sentences  # an answer record from before
    assert turn_from_answer(answer).evidence == turn_from_answer(answer).checks == ()


def test_a_damaged_file_is_set_aside_and_the_oldest_turns_go_first(tmp_path):
    conv = Conversations(tmp_path)
    conv.path("x").write_text("{not json")
    assert conv.load("x") == [] and conv.path("x").with_suffix(".broken").exists()
    conv.save("x", [turn(str(i)) for i in range(MAX_TURNS + 3)])
    kept = conv.load("x")
    assert len(kept) == MAX_TURNS and kept[0].question == "3"


def test_a_passage_in_context_drops_the_overlap_and_knows_when_it_changed(store):
    store.bind_embedder("test", 2)
    root = store.add_root(store.collection_id("c", create=True), "/d")
    texts = ["Alpha comes first. Alpha comes second.",
             "Alpha comes second. Beta comes first. Beta comes second.",
             "Beta comes second. Gamma ends it."]
    chunks = [ChunkRecord(t, None, None, 0, len(t), 5) for t in texts]
    store.write_documents([DocumentUpdate(root, "/d/a.txt", 1, 1, "h", "text", "indexed",
                                          chunks=chunks, vectors=np.ones((3, 2), "float32"))])
    middle = store.con.execute("SELECT id FROM chunks WHERE ord=1").fetchone()[0]
    ctx = passage_context(store, middle, texts[1])
    assert (ctx.before, ctx.text, ctx.after, ctx.indexed) == (
        "Alpha comes first.", texts[1], "Gamma ends it.", True)
    gone = passage_context(store, middle, "what the model saw, since re-indexed")
    assert gone.before == gone.after == "" and not gone.indexed

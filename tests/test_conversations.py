"""Conversations per collection (JSON in the data folder) and a cited passage in context."""

from __future__ import annotations

import numpy as np

from desktop.core.answering.conversations import MAX_TURNS, Conversations, SourceRecord, Turn
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

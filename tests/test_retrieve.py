"""Hybrid retrieval on the real store and embedder; fusion as a pure function."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.core.answering.retrieve import RRF_K, Retriever, fuse
from desktop.core.errors import GroundedError
from desktop.core.indexing.indexer import Indexer
from desktop.core.jobs import run_job


def _index(store, embedder, root, collection):
    run_job(Indexer(store, embedder).run([root], collection))


@pytest.fixture
def library(store, embedder, tmp_path):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    (work / "lease.md").write_text(
        "# Lease\n\nThe tenant must give ninety days written notice before moving out.\n")
    (work / "payroll.txt").write_text("Salaries are paid on the last working day of the month.\n")
    (work / "codes.txt").write_text("The server room door code is XK-4471.\n")
    (home / "garden.txt").write_text("Tomatoes need six hours of direct sunlight each day.\n")
    (home / "recipes.md").write_text("# Bread\n\nKnead the dough for ten minutes; let it rise.\n")
    _index(store, embedder, work, "work")
    _index(store, embedder, home, "home")
    return Retriever(store, embedder)


def test_fuse_rewards_agreement_and_is_pure():
    fused = fuse([[1, 2, 3], [3, 4, 1]])
    assert [i for i, _ in fused][:2] == [1, 3]  # in both lists beats first in one
    assert fuse([[5], []]) == [(5, pytest.approx(1 / (RRF_K + 1)))]
    weighted = fuse([[1], [2]], weights=[1.0, 2.0])
    assert weighted[0][0] == 2


def test_a_paraphrase_is_found_by_meaning(library):
    r = library.search("How much notice do I need to give before leaving the flat?", k=1)
    assert r.passages[0].path.endswith("lease.md")
    assert r.passages[0].heading == "Lease"
    assert r.best_cosine > 0.3 and r.embed_ms > 0


def test_an_exact_code_is_found_by_keyword(library):
    p = library.search("XK-4471", k=1, mode="bm25").passages
    assert p and p[0].path.endswith("codes.txt") and p[0].keyword_rank == 1
    assert library.search("XK-4471", k=1).passages[0].path.endswith("codes.txt")


def test_search_is_scoped_to_collections(library):
    for mode in ("hybrid", "vector", "bm25"):
        r = library.search("sunlight for tomatoes", k=5, collections=["work"], mode=mode)
        assert all("garden" not in p.path for p in r.passages), mode
    r = library.search("sunlight for tomatoes", k=1, collections=["home"])
    assert r.passages[0].path.endswith("garden.txt")
    with pytest.raises(GroundedError, match="no collection named 'nope'"):
        library.search("x", collections=["nope"])


def test_hostile_punctuation_never_breaks_search(library):
    for q in ['"', "NEAR(", "(((", "—", ""]:
        assert library.search(q, k=3, mode="bm25").passages == [], q
        assert len(library.search(q, k=3).passages) <= 3, q
    # Operators around a word search for the word.
    plain = library.search("tomatoes sunlight", k=1, mode="bm25").passages
    for q in ['"tomatoes" sunlight*', "NEAR(tomatoes: sunlight", "tomatoes-sunlight AND"]:
        found = library.search(q, k=1, mode="bm25").passages
        assert [p.path for p in found] == [p.path for p in plain], q
    assert plain[0].path.endswith("garden.txt")


def test_vector_search_sees_a_change_at_once_and_matches_exact_search(library, store, embedder,
                                                                      tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "new.txt").write_text("Penguins huddle together to stay warm in Antarctica.")
    library.search("warm", k=1)
    _index(store, embedder, extra, "work")
    assert library.search("huddling birds in the cold", k=1).passages[0].path.endswith("new.txt")
    q = embedder.embed(["bread dough"])[0]
    ours, _ = library.vectors.search(q, 5)
    rows = store.con.execute("SELECT id, embedding FROM chunk_floats").fetchall()
    floats = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    exact = [rows[i][0] for i in np.argsort(-(floats @ q))[:5]]
    assert ours == exact


def test_a_term_in_too_many_chunks_is_left_out_of_a_large_librarys_bm25(library, monkeypatch):
    from desktop.core.answering import retrieve

    # "day" is in two files (payroll, garden), "sunlight" in one: with a cap of one chunk the
    # common term is dropped, so only the rarer term's file matches.
    both = library.keyword_search("day sunlight", 5)
    assert len(both) == 2
    monkeypatch.setattr(retrieve, "KEYWORD_MAX_CHUNKS", 1)
    assert library.store.vectors.count() > 1
    rare = library.keyword_search("day sunlight", 5)
    assert rare == library.keyword_search("sunlight", 5) and len(rare) == 1
    assert library._vocabulary == {"day": 2, "sunlight": 1}
    assert len(library.keyword_search("day", 5)) == 2  # all common: the rarest stays


def test_a_prefix_in_too_many_chunks_is_left_out_of_a_large_librarys_bm25(library, monkeypatch):
    from desktop.core.answering import retrieve

    # "sunlights" is in no file: only its prefix query ("sunli*") finds the garden file.
    garden = library.keyword_search("sunlights", 5)
    assert len(garden) == 1
    monkeypatch.setattr(retrieve, "KEYWORD_MAX_CHUNKS", 1)
    assert library.keyword_search("sunlights", 5) == garden and library._prefixes == {"sunli": 1}
    monkeypatch.setattr(retrieve, "KEYWORD_MAX_CHUNKS", 0)
    library._vocabulary = None  # counted afresh
    assert library.keyword_search("sunlights", 5) == []


def test_an_edit_and_a_forget_by_another_connection_are_seen_by_the_next_search(
        library, store, embedder, tmp_path):
    """As in the window: the indexer writes on its own connection while the answer lane's
    retriever holds the small library's vectors in memory."""
    from desktop.core.storage.store import Store

    extra = tmp_path / "extra"
    extra.mkdir()
    note = extra / "new.txt"
    note.write_text("Penguins huddle together to stay warm in Antarctica.")
    library.search("warm", k=1)  # the vectors are in memory now
    with Store.open(store.path) as writer:
        _index(writer, embedder, extra, "work")
        penguins = library.search("huddling birds in the cold", k=1).passages[0]
        assert penguins.path == str(note)
        note.write_text("Camels store fat in their humps to cross the desert.")
        _index(writer, embedder, extra, "work")  # its chunk replaced, under the same id
        top = library.search("animals crossing dry sand", k=1, mode="vector").passages[0]
        assert top.path == str(note) and top.text.startswith("Camels")
        assert top.chunk_id == penguins.chunk_id
        q = embedder.embed(["animals crossing dry sand"])[0]
        rows = writer.con.execute("SELECT id, embedding FROM chunk_floats").fetchall()
        exact = {i: float(np.frombuffer(v, dtype=np.float32) @ q) for i, v in rows}
        ids, scores = library.vectors.search(q, 3)
        assert scores == pytest.approx([exact[i] for i in ids], abs=1e-5)  # today's vectors
        root = next(r for r in writer.roots() if r[2] == str(extra))
        writer.forget_root(root[0])
        found = library.search("animals crossing dry sand", k=5, mode="vector").passages
        assert found and all(p.path != str(note) for p in found)


def test_words_that_frame_a_question_need_not_be_in_the_files(library):
    assert library.coverage("What happens when the tenant must give notice?") == 1.0
    assert library.coverage("Is it possible to give notice by email?") == pytest.approx(2 / 3)
    assert library.coverage("What does the door code mean?") == 1.0
    assert library.coverage("What happens to the invoices?") == 0.0

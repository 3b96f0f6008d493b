"""`grounded ask` end to end: real index, real embedder, the bundled GGUF model."""

from __future__ import annotations

import json

import pytest

from desktop.core.answering.answer import Source
from desktop.core.answering.prompts import REFUSAL, build_messages


@pytest.fixture
def indexed(cli, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "warehouse.md").write_text(
        "# Security\n\nThe access code for the east warehouse is 4471-KESTREL.\n")
    (root / "garden.txt").write_text("Tomatoes need six hours of direct sunlight each day.\n")
    assert cli("index", str(root))[0] == 0
    return root


def test_an_answer_with_sources_and_timings(cli, indexed):
    code, out, err = cli("ask", "What is the access code for the east warehouse?",
                              "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert "4471-KESTREL" in answer["answer"] and not answer["refused"]
    assert answer["sources"][0]["path"].endswith("warehouse.md")
    assert all(1 <= n <= len(answer["sources"]) for n in answer["cited"])
    t = answer["timings"]
    assert t["retrieve_ms"] < 2000 and t["first_token_ms"] > 0 and t["tokens_per_s"] > 0
    # Deterministic by default: the same question gives the same answer.
    again = json.loads(cli("ask", "What is the access code for the east warehouse?",
                                "--json")[1])
    assert again["answer"] == answer["answer"]


def test_nothing_relevant_means_an_honest_refusal(cli, indexed):
    code, out, _ = cli("ask", "Who painted the Mona Lisa?", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["refused"] and answer["answer"] == REFUSAL
    assert answer["sources"] == []


def test_no_retrieval_asks_the_bare_model(cli, indexed):
    code, out, _ = cli("ask", "What is the access code?", "--no-retrieval", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["sources"] == [] and "4471-KESTREL" not in answer["answer"]


def test_user_errors(cli, tmp_path):
    code, _, err = cli("ask", "anything")
    assert code == 1 and "nothing is indexed yet" in err
    bad = tmp_path / "model.gguf"
    bad.write_text("not a model")
    code, _, err = cli("ask", "anything", "--no-retrieval", "--model", str(bad))
    assert code == 1 and "is not a GGUF model file" in err and "Traceback" not in err


def test_sources_are_numbered_best_last_in_the_prompt():
    sources = [Source(1, 1, "/d/a.pdf", 3, 4, None, "alpha", 1.0),
               Source(2, 2, "/d/b.md", None, None, "H", "beta", 0.5)]
    user = build_messages("Q?", sources)[-1]["content"]
    # The best source sits last, next to the instruction and the question.
    assert user.startswith("Sources:\n[2] beta\n\n[1] alpha\n\n")
    assert user.endswith("Question: Q?")


def test_ask_follows_the_settings_the_window_saves(cli, indexed):
    from desktop.core.config import Settings

    question = "What is the access code for the east warehouse?"
    Settings(passages=2, focus_sentences=0, n_threads=1).save()
    code, out, err = cli("ask", question, "--json")
    assert code == 0, err
    sources = json.loads(out)["sources"]
    assert len(sources) == 2 and all(s["excerpt"] is None for s in sources)  # whole passages
    # The command line wins: one passage; or two, focused on their sentences that share a
    # word with the question (the garden note has none, so it leaves the prompt).
    assert len(json.loads(cli("ask", question, "--k", "1", "--json")[1])["sources"]) == 1
    sources = json.loads(cli("ask", question, "--sentences", "2", "--json")[1])["sources"]
    assert [s["excerpt"] for s in sources] == [
        "The access code for the east warehouse is 4471-KESTREL."]
    assert sources[0]["text"].startswith("Security\n")  # people see the whole passage


def test_sources_beyond_the_context_are_dropped_worst_first():
    from desktop.core.answering.answer import Answerer
    from desktop.core.model.engine import Engine

    sentence = "The harbour master logs every ship that enters the port before dawn. "
    sources = [Source(n, n, f"/d/{n}.txt", None, None, None, sentence * 12, 1.0 / n)
               for n in range(1, 7)]
    with Engine(n_ctx=768, n_threads=1) as engine:
        answerer = Answerer(engine, None, max_answer_tokens=64)
        kept = answerer.fit("Who logs the ships?", sources)
        assert 0 < len(kept) < len(sources)
        assert kept == sources[: len(kept)]  # the best ones, in order
        prompt = engine.count_tokens(engine.format_prompt(build_messages("Who logs the ships?",
                                                                         kept)))
        assert prompt + 64 <= 768
        one_more = sources[: len(kept) + 1]
        bigger = engine.count_tokens(engine.format_prompt(build_messages("Who logs the ships?",
                                                                         one_more)))
        assert bigger + 64 > 768 - 64  # nothing that fits is thrown away needlessly


def test_the_evidence_comes_first_and_each_answer_sentence_is_checked(cli, indexed):
    question = "What is the access code for the east warehouse?"
    code, out, err = cli("ask", question)
    assert code == 0, err
    assert out.index("Evidence") < out.index("Answer") < out.index("4471-KESTREL [1]")
    assert "1. The access code for the east warehouse is 4471-KESTREL." in out
    answer = json.loads(cli("ask", question, "--json")[1])
    first = answer["evidence"][0]
    source = next(s for s in answer["sources"] if s["n"] == first["n"])
    assert source["text"][first["start"]:first["end"]] == first["sentence"]
    assert first["path"].endswith("warehouse.md") and 0 < first["score"] <= 1
    checks = answer["answer_sentences"]
    assert checks and all(c["supported"] and c["evidence"] == 0 for c in checks)


def test_a_follow_up_is_asked_within_the_collections_conversation(cli, indexed):
    assert cli("ask", "What is the access code for the east warehouse?")[0] == 0
    code, out, err = cli("ask", "And what is the code made of?", "--follow-up", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["sources"][0]["path"].endswith("warehouse.md")


def test_a_refusal_still_shows_the_closest_evidence(cli, indexed):
    code, out, err = cli("ask", "What is the access code for the Louvre museum vault?", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["refused"] and answer["answer"] == REFUSAL
    assert answer["evidence"][0]["sentence"].startswith("The access code for the east warehouse")
    assert [s["n"] for s in answer["sources"]] == [answer["evidence"][0]["n"]]
    assert answer["answer_sentences"] == []
    # As text: the evidence is the closest there is, the refusal is said once, and the
    # timings do not pretend the model ran.
    code, out, err = cli("ask", "What is the access code for the Louvre museum vault?")
    assert code == 0, err
    assert out.startswith("Closest evidence in your files\n  1. The access code for the east")
    assert f"\nAnswer\n{REFUSAL}\n" in out and out.count(REFUSAL) == 1
    assert "the model was not asked" in err and "first token" not in err


NOTICE = ("Harbour Street Library. Notice to readers. From 1 February the reading room closes "
          "at 6 pm on Saturdays. The map collection moves to the second floor. Please return "
          "borrowed atlases before the move.\n")


def test_one_sentence_that_answers_speaks_for_a_passage_about_several_things(cli, tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    (root / "notice.txt").write_text(NOTICE)
    assert cli("index", str(root))[0] == 0
    question = "Where does the map collection move?"
    code, out, err = cli("ask", question, "--json")
    assert code == 0, err
    answer = json.loads(out)
    # The passage's vector is mostly about the reading room: under the cosine bar alone...
    from desktop.core.answering.answer import MIN_COSINE
    assert not answer["refused"]
    assert answer["evidence"][0]["sentence"] == "The map collection moves to the second floor."
    from desktop.core.config import Settings, home
    from desktop.core.workspace import Workspace
    with Workspace(Settings(), home()) as ws:
        retriever = ws.retriever()
        found = retriever.search(question)
        assert found.best_cosine < MIN_COSINE
        # ...while the sentence that answers is well over it.
        assert retriever.cosine(found, answer["evidence"][0]["sentence"]) > 0.6
    # A question the files do not answer is still refused.
    code, out, _ = cli("ask", "Where does the museum keep its paintings?", "--json")
    assert code == 0 and json.loads(out)["refused"]


def test_the_gate_asks_a_sentence_only_when_the_passage_misses_and_the_sentence_is_strong():
    from desktop.core.answering.answer import relevant
    from desktop.core.answering.retrieve import Passage, Retrieval

    passage = Passage(1, "notice.txt", None, None, None, NOTICE, score=1.0)
    asked: list[str] = []

    def cosine(value):
        return lambda: asked.append("asked") or value

    diluted = Retrieval([passage], best_cosine=0.25, embed_ms=0, search_ms=0)
    assert relevant(diluted, 0.67, cosine(0.82)) and asked == ["asked"]
    assert not relevant(diluted, 0.67, cosine(0.20))
    assert not relevant(diluted, 0.40, cosine(0.82)) and len(asked) == 2  # weak: not asked
    assert not relevant(diluted, 0.67)
    close = Retrieval([passage], best_cosine=0.45, embed_ms=0, search_ms=0)
    assert relevant(close, 0.67, cosine(0.0)) and len(asked) == 2  # passage passes: not asked

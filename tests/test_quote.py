"""Quoted answers: constrained decoding on the real bundled model and its real vocabulary."""

from __future__ import annotations

import pytest

from desktop.core.answering.answer import Answerer, sources_from
from desktop.core.answering.citations import strip_citations
from desktop.core.answering.quote import Quote, TokenTable
from desktop.core.answering.retrieve import Passage
from desktop.core.jobs import run_job
from desktop.core.model.adapters import write_lora
from desktop.core.model.engine import Engine

LEASE = "The lease requires sixty days of written notice."
DATA = "Grounded keeps your data in one SQLite file in the data folder."
CAPITAL = "北京是中华人民共和国的首都。"
THAI = "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย"


@pytest.fixture(scope="module")
def engine():
    with Engine(n_ctx=2048, n_threads=1) as e:
        _ = e.llama
        yield e


def vocabulary(engine: Engine) -> TokenTable:
    built = engine.token_table()
    assert built is not None  # SmolLM2 has a " [" token
    return built


def spell(quote: Quote, tokens: list[int]) -> bytes:
    return b"".join(quote.table.pieces[t] for t in tokens)


def test_a_quote_starts_only_where_a_word_of_a_source_starts(engine):
    quote = Quote({1: LEASE, 2: CAPITAL}, vocabulary(engine))
    first = {spell(quote, [t]) for t in quote.allowed([])}
    assert {b"The", b" lease", b" sixty", b"lease", b"six"} <= first
    assert all(p in (LEASE + CAPITAL).encode() for p in first)
    assert not {b"ease", b"he", b"ixty", b"Sixty", b"."} & first
    # No token that starts inside a Chinese character's bytes.
    assert all(not 0x80 <= p[0] < 0xC0 for p in first if p)


def test_each_step_continues_the_quote_and_the_citation_names_its_sources(engine):
    table = vocabulary(engine)
    quote = Quote({1: "alpha beta gamma", 2: "beta gamma delta", 3: "zeta"}, table)
    said = engine.tokenize("beta gamma")
    assert table.open_cite in quote.allowed(said)
    assert all(b"beta gamma".startswith(spell(quote, said[:i + 1]))
               for i in range(len(said)))
    cite = [*said, table.open_cite]
    assert {spell(quote, [t]) for t in quote.allowed(cite)} == {b"1", b"2"}
    assert [spell(quote, [t]) for t in quote.allowed([*cite, *engine.tokenize("2")])] \
        == [b"]"]
    assert quote.allowed([*cite, *engine.tokenize("2]")]) == list(table.ends)
    # Cut inside a word of a spaced script: no citation yet; an unspaced script has no such cut.
    assert table.open_cite not in quote.allowed(engine.tokenize("alpha bet"))
    chinese = Quote({1: CAPITAL}, table)
    assert table.open_cite in chinese.allowed(engine.tokenize("北京"))


@pytest.mark.parametrize(("question", "source"), [
    ("What notice does the lease require?", LEASE),
    ("Where does Grounded keep my data?", DATA),
    ("中国的首都是哪里？", CAPITAL),
    ("เมืองหลวงของประเทศไทยคืออะไร", THAI),
])
def test_a_quoted_answer_is_a_verbatim_span_of_the_source_it_cites(engine, question, source):
    passages = [Passage(i, f"{i}.txt", None, None, None, text, 1.0)
                for i, text in enumerate([LEASE, DATA, CAPITAL, THAI], start=1)]
    answer = run_job(Answerer(engine, None, quote="always").ask(question, passages=passages))
    said = answer.generation_text()
    assert said.endswith("]") and "\ufffd" not in said
    assert len(answer.cited) == 1 and answer.invalid_citations == 0
    cited = next(s for s in answer.sources if s.n == answer.cited[0])
    span = strip_citations(said).strip()
    assert span and span in (cited.excerpt or cited.text)


def test_answers_are_free_while_an_adapter_shapes_them(engine, tmp_path):
    """Quotes hold at adapter scale 0 (the base model); at a real scale the adapter writes."""
    passages = [Passage(1, "1.txt", None, None, None, LEASE, 1.0)]
    answerer = Answerer(engine, None, quote="always")
    adapter = write_lora(engine.info, tmp_path / "tone.gguf", magnitude=2.0, seed=0)
    texts = {}
    try:
        for scale in (0.0, 1.0):
            engine.set_adapters([(adapter, scale)])
            texts[scale] = run_job(answerer.ask("What notice does the lease require?",
                                                passages=passages)).generation_text()
    finally:
        engine.set_adapters([])
    assert strip_citations(texts[0.0]).strip() in LEASE
    assert strip_citations(texts[1.0]).strip() not in LEASE


def test_a_long_quote_stops_in_time_to_cite_its_source(engine):
    text = " ".join(f"word{i}" for i in range(200))
    quote = Quote({1: text}, vocabulary(engine), max_tokens=12)
    said = engine.tokenize(text)[:8]
    assert quote.allowed(said[:6]) != [quote.table.open_cite]  # room left: the quote goes on
    cut = next(i for i in range(7, 12) if quote.table.open_cite in quote.allowed(said[:i]))
    assert quote.allowed(said[:cut]) == [quote.table.open_cite]  # at a word edge: cite now


@pytest.mark.parametrize(("question", "quoted"), [
    ("What notice does the lease require?", False),
    ("What could be novel candidates as potent inhibitors of papain like cysteine proteases?",
     False),
    ("Wie viele Einwohner hat Berlin?", False),
    ("Какая столица России?", True),
    ("中国的首都是哪里？", True),
    ("เมืองหลวงของประเทศไทยคืออะไร", True),
    ("ما هي عاصمة مصر؟", True),
    ("भारत की राजधानी क्या है?", True),
])
def test_auto_quotes_questions_in_a_script_the_model_hardly_knows(engine, question, quoted):
    assert not Answerer(engine, None, quote="always").quoting(question, [])  # nothing to quote
    sources = sources_from([Passage(1, "1.txt", None, None, None, LEASE, 1.0)])
    assert Answerer(engine, None, quote="auto").quoting(question, sources) is quoted
    assert Answerer(engine, None, quote="always").quoting(question, sources)
    assert not Answerer(engine, None, quote="never").quoting(question, sources)

"""Chunking: never over the embedder's limit, nothing lost, boundaries respected."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop.core.embedding.embedder import OnnxEmbedder
from desktop.core.indexing.chunk import Chunker
from desktop.core.indexing.extract import Section


@pytest.fixture(scope="module")
def tokenizer_embedder():
    return OnnxEmbedder()  # the tokenizer loads without the model


@pytest.fixture(scope="module")
def chunker(tokenizer_embedder):
    e = tokenizer_embedder
    return Chunker(e.tokenizer, e.max_tokens, target=200, overlap=32)


def _covered(text: str, chunks) -> bool:
    """Every non-space character of the text lies inside some chunk."""
    covered = bytearray(len(text))
    for c in chunks:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    return all(covered[i] or text[i].isspace() for i in range(len(text)))


def test_short_text_is_one_chunk(chunker):
    chunks = chunker.chunk([Section("A short paragraph.", page=3, heading="Intro", offset=10)])
    assert len(chunks) == 1
    c = chunks[0]
    assert (c.text, c.page, c.heading, c.start, c.end) == ("A short paragraph.", 3, "Intro", 10, 28)


def test_long_text_breaks_on_paragraphs_with_overlap(chunker):
    paras = [f"Paragraph {i}. " + "Some words in a sentence. " * 12 + "End." for i in range(12)]
    text = "\n\n".join(paras)
    chunks = chunker.chunk([Section(text)])
    assert len(chunks) > 3
    assert all(c.n_tokens <= 200 for c in chunks)
    # Chunks begin at a sentence and end at a sentence or paragraph end.
    assert all(c.text[0].isupper() and c.text.endswith(".") for c in chunks)
    assert sum(c.text.endswith("End.") for c in chunks) >= len(chunks) - 1
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))  # overlap
    assert _covered(text, chunks)


def test_one_giant_word_is_cut_to_the_limit(chunker):
    text = "x" * 20_000 + " tail"
    chunks = chunker.chunk([Section(text)])
    assert all(n <= chunker.max_tokens for n in chunker.count([c.text for c in chunks]))
    assert _covered(text, chunks)


def test_text_without_sentence_ends_is_cut_between_words(chunker):
    # Hindi without its danda, and English without stops: cut by tokens, never inside a word.
    for word in ("फार्मेसियां", "pharmacies"):
        text = " ".join(f"{word}{i}" for i in range(600))
        chunks = chunker.chunk([Section(text)])
        assert len(chunks) > 2 and _covered(text, chunks)
        assert all(n <= chunker.max_tokens for n in chunker.count([c.text for c in chunks]))
        for c in chunks:
            assert c.start == 0 or text[c.start - 1] == " ", text[c.start - 5:c.start + 5]
            assert c.end == len(text) or text[c.end].isspace() or text[c.end - 1].isspace()


def test_every_script_s_sentence_end_is_a_break(chunker):
    sentence = "यह एक लंबा वाक्य है जिसमें कई शब्द हैं और यह समाप्त होता है। "
    text = sentence * 60
    chunks = chunker.chunk([Section(text)])
    assert len(chunks) > 1 and all(c.text.endswith("।") for c in chunks)


def test_an_initial_or_a_title_is_no_sentence_end(chunker):
    sentence = "Первыми теоретиками этой темы были Дж. А. Гобсон и Mr. Smith из Лондона. "
    text = sentence * 60
    chunks = chunker.chunk([Section(text)])
    assert len(chunks) > 1 and all(c.text.endswith("Лондона.") for c in chunks)


def test_offsets_point_into_the_section(chunker):
    text = "Alpha beta.\n\nGamma delta. " * 200
    section = Section(text, offset=1000)
    for c in chunker.chunk([section]):
        assert text[c.start - 1000 : c.end - 1000] == c.text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(min_size=1, max_size=3000))
def test_any_text_stays_under_the_limit_and_is_covered(chunker, text):
    chunks = chunker.chunk([Section(text)])
    counts = chunker.count([c.text for c in chunks])
    assert all(n <= chunker.max_tokens for n in counts)
    assert [c.n_tokens for c in chunks] == counts
    assert _covered(text, chunks)


def test_no_chunk_of_the_eval_corpora_exceeds_the_model_limit(chunker, eval_dir):
    """Every document of every corpus in shared/eval, counted with the embedder's tokenizer."""
    n_chunks = 0
    for corpus in sorted(eval_dir.glob("*/corpus.jsonl")):
        with corpus.open(encoding="utf-8") as f:
            sections = [Section(json.loads(line)["text"]) for line in f]
        chunks = chunker.chunk(sections)
        counts = chunker.count([c.text for c in chunks])
        assert max(counts) <= chunker.max_tokens, corpus
        n_chunks += len(chunks)
    assert n_chunks > 3000


def test_short_pages_are_merged_and_remember_their_page_range(chunker):
    pages = [f"Page {i} of 40. A short line of filler text." for i in range(1, 41)]
    offset, sections = 0, []
    for i, text in enumerate(pages, start=1):
        sections.append(Section(text, page=i, offset=offset))
        offset += len(text) + 2
    full = "\n\n".join(pages)
    chunks = chunker.chunk(sections)
    assert 2 <= len(chunks) <= 10
    for c in chunks:
        assert full[c.start : c.end] == c.text
        assert c.text.startswith(f"Page {c.page} of")
        assert f"Page {c.page_end} of" in c.text and c.page_end >= c.page
    needle = next(c for c in chunks if "Page 17 of" in c.text)
    assert needle.page <= 17 <= needle.page_end

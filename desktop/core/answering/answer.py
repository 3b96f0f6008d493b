"""Grounded answers: evidence first, numbered sources in the prompt, checked citations and
sentences, honest refusals.

An answer streams in two steps: as soon as retrieval is done, the :class:`Found` item names
the evidence (the best sentences of the passages, :mod:`.evidence`) and the sources; then the
model's tokens. The model reads exactly the evidence it shows. The answer carries the passages
that went into its prompt (citations are data): nothing is searched again to show them, and
each of its sentences is checked against them (:func:`.support.check`). When retrieval finds
nothing relevant the model is not asked at all, and the answer says so; evidence found is
still shown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from desktop.core.answering import evidence as ranking
from desktop.core.answering.citations import check_citations
from desktop.core.answering.evidence import FOCUS_SENTENCES
from desktop.core.answering.follow_up import search_text
from desktop.core.answering.prompts import REFUSAL, build_messages
from desktop.core.answering.quote import QUOTE_MODES, Quote, unfamiliar
from desktop.core.answering.retrieve import MIN_FIT, Passage, Retrieval, Retriever
from desktop.core.answering.support import SentenceSupport, check
from desktop.core.model.engine import Engine, Generation, Token

#: Retrieval found something relevant when the best cosine reaches MIN_COSINE, MIN_COVERAGE
#: of the question's search words occur in the files (by stem: :meth:`Retriever.coverage`),
#: and the best evidence sentence holds MIN_EVIDENCE of the question's weighted words (its
#: :mod:`.evidence` score: no sentence of the passages answers a question whose words are
#: spread thin over them). For a question the embedder cannot read (embedder fit below
#: MIN_FIT: most non-English text) its cosines are noise, and coverage of MIN_COVERAGE_UNREAD
#: and the evidence decide. Calibrated on ../shared/eval (`grounded eval` reports the refusal
#: rates; README, "Refusals").
MIN_COSINE = 0.30
MIN_COVERAGE = 0.7
MIN_COVERAGE_UNREAD = 0.5
MIN_EVIDENCE = 0.15
#: A passage's vector averages all its sentences, so a passage about several things can miss
#: MIN_COSINE while one of its sentences answers: an evidence sentence holding at least this
#: share of the question's weighted words may reach MIN_COSINE with its own vector instead.
MIN_SENTENCE_EVIDENCE = 0.5


#: Formats whose places are slides, sheets or messages, not pages: their sections' headings
#: ("Slide 3: Budget", "Budget > rows 2–31", a message's subject) say where a passage is.
PLACED_BY_HEADING = frozenset((".pptx", ".odp", ".xlsx", ".ods", ".csv", ".tsv", ".mbox"))


def source_label(path: str, page: int | None, page_end: int | None,
                 heading: str | None = None) -> str:
    """File name with page (range): ``a.pdf, pp. 3-4``, ``a.pdf, p. 3`` or ``notes.md``; a deck,
    sheet or mailbox with its heading: ``deck.pptx, Slide 3: Budget``."""
    name = Path(path).name
    if heading and Path(path).suffix.lower() in PLACED_BY_HEADING:
        return f"{name}, {heading}"
    if page is None:
        return name
    if page_end and page_end != page:
        return f"{name}, pp. {page}-{page_end}"
    return f"{name}, p. {page}"


@dataclass(frozen=True)
class Source:
    """A passage as it was numbered in the prompt."""

    n: int
    chunk_id: int | None
    path: str
    page: int | None
    page_end: int | None
    heading: str | None
    text: str
    score: float
    excerpt: str | None = None  # what the prompt carried, when not the whole text (evidence)
    ocr: float | None = None  # the OCR confidence when the text was read from an image

    def label(self) -> str:
        """File name with page (range), slide or sheet, as people see it."""
        return source_label(self.path, self.page, self.page_end, self.heading)

    @property
    def shown(self) -> str:
        """What the prompt carries of it: the excerpt, else the whole text."""
        return (self.excerpt or self.text).strip()


@dataclass(frozen=True)
class Evidence:
    """A sentence of a source that answers the question, as the person sees it first."""

    n: int  # the source's number
    sentence: str
    path: str
    page: int | None
    heading: str | None
    start: int  # the sentence's character offsets in the source's text
    end: int
    score: float

    def label(self) -> str:
        return source_label(self.path, self.page, None, self.heading)

    def to_dict(self) -> dict:
        return {"n": self.n, "sentence": self.sentence, "path": self.path, "page": self.page,
                "heading": self.heading, "start": self.start, "end": self.end,
                "score": round(self.score, 4)}


@dataclass(frozen=True)
class Found:
    """Streamed before the model's first token: the evidence and the sources it comes from."""

    evidence: list[Evidence]
    sources: list[Source]
    text: str = ""  # a stream item with no text, for consumers that print tokens
    asked: bool = True  # False: nothing relevant was found, and the model will not be asked


@dataclass
class Answer:
    """What `ask` returns: the checked answer, its sources and its measures."""

    question: str
    text: str
    refused: bool
    sources: list[Source]
    cited: tuple[int, ...] = ()
    invalid_citations: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    generation: Generation | None = None
    evidence: list[Evidence] = field(default_factory=list)
    sentences: list[SentenceSupport] = field(default_factory=list)  # the answer's, checked

    def generation_text(self) -> str:
        """What the model streamed (before citation checks)."""
        return self.generation.text.strip() if self.generation else ""

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.text,
            "refused": self.refused,
            "sources": [{"n": s.n, "path": s.path, "page": s.page, "page_end": s.page_end,
                         "heading": s.heading, "text": s.text, "score": s.score,
                         "excerpt": s.excerpt, "ocr": s.ocr is not None,
                         "ocr_confidence": s.ocr}
                        for s in self.sources],
            "cited": list(self.cited),
            "invalid_citations": self.invalid_citations,
            "evidence": [e.to_dict() for e in self.evidence],
            "answer_sentences": [s.to_dict() for s in self.sentences],
            "timings": self.timings,
        }


def sources_from(passages: Sequence[Passage]) -> list[Source]:
    return [Source(i, p.chunk_id, p.path, p.page, p.page_end, p.heading, p.text, p.score,
                   ocr=p.ocr)
            for i, p in enumerate(passages, start=1)]


#: Evidence sentences shown to the person, at most; the prompt may carry more (a large model
#: reads four: :mod:`.reading`).
EVIDENCE_SHOWN = 3


class Answerer:
    """Retrieval + the engine: answers one question at a time.

    ``quote`` (one of :data:`QUOTE_MODES`): when an answer from sources must be a verbatim
    span of one of them, citing it (:mod:`.quote`): "always", "never", or "auto":
    for a question in a script the model hardly knows (:func:`unfamiliar`). Never while an
    adapter is attached: an adapter is there to shape the wording.
    """

    def __init__(self, engine: Engine, retriever: Retriever | None, k: int = 5,
                 sentences: int = FOCUS_SENTENCES, max_answer_tokens: int = 128,
                 quote: str = "auto") -> None:
        self.engine = engine
        self.retriever = retriever
        self.k = k
        self.sentences = sentences
        self.max_answer_tokens = max_answer_tokens
        self.quote = quote if quote in QUOTE_MODES else "auto"

    def focused(self, question: str, sources: list[Source]
                ) -> tuple[list[Source], list[Evidence]]:
        """The evidence for ``question`` (its best sentences in ``sources``, best first) and
        the sources the prompt carries: those holding the evidence, numbered anew from 1 in
        rank order, each with its evidence sentences as excerpt; every source, whole, when
        ``sentences`` is 0."""
        if not sources:
            return sources, []
        shown = ranking.best(question, [s.text for s in sources],
                             self.sentences or FOCUS_SENTENCES)
        if self.sentences < 1:
            numbered, number = sources, {i: s.n for i, s in enumerate(sources)}
        else:
            excerpts = ranking.grouped(shown, [s.text for s in sources], self.sentences)
            numbered = [replace(sources[e.passage], n=n, excerpt=e.text)
                        for n, e in enumerate(excerpts, start=1)]
            number = {e.passage: n for n, e in enumerate(excerpts, start=1)}
        evidence = [Evidence(number[x.passage], x.text, sources[x.passage].path,
                             sources[x.passage].page, sources[x.passage].heading, x.start,
                             x.end, x.score) for x in shown[:EVIDENCE_SHOWN]]
        return numbered, evidence

    def fit(self, question: str, sources: list[Source]) -> list[Source]:
        """Keep the best sources that fit the model's context, counted in its own tokens."""
        budget = self.engine.n_ctx - self.max_answer_tokens - 16
        if not sources:
            return sources
        used = self.engine.count_tokens(
            "\n".join(m["content"] for m in build_messages(question, sources))) + 32
        # Dropping the worst source frees its text and its "[n] " label; each is counted once.
        while sources and used > budget:
            worst = sources[-1]
            used -= self.engine.count_tokens(f"[{worst.n}] {worst.shown}\n\n")
            sources = sources[:-1]
        return sources

    def quoting(self, question: str, sources: Sequence[Source]) -> bool:
        """Whether the answer to ``question`` from ``sources`` is to be quoted."""
        if not sources or self.quote == "never" or any(s for _, s in self.engine.adapters):
            return False
        return self.quote == "always" or unfamiliar(question,
                                                    self.engine.count_tokens(question))

    def ask(self, question: str, collections: Sequence[str] | None = None,
            retrieval: bool = True, mode: str = "hybrid", passages: Sequence[Passage] | None = None,
            temperature: float = 0.0, cancel: threading.Event | None = None,
            history: Sequence[str] = ()) -> Generator[Token | Found, None, Answer]:
        """Stream :class:`Found` (once retrieval is done), then the answer's tokens; return
        the checked :class:`Answer`.

        ``passages`` hands the model given passages instead of searching (the eval's oracle);
        ``history``: the questions asked before in this conversation, oldest first (a follow-up
        is searched with the one before it when it leans on it: :mod:`.follow_up`).
        """
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        sources: list[Source] = []
        found = None
        if passages is not None:
            sources = sources_from(passages)
        elif retrieval and self.retriever is not None:
            query = search_text(self.retriever.embedder, question, history)
            found = self.retriever.search(query, k=self.k, collections=collections, mode=mode)
            timings["retrieve_ms"] = (time.perf_counter() - t0) * 1000
            sources = sources_from(found.passages)
        sources, evidence = self.focused(question, sources)
        timings["evidence_ms"] = (time.perf_counter() - t0) * 1000
        best = evidence[0].score if evidence else 0.0
        if found is not None and not passes_gate(
                self.retriever, found, best, evidence[0].sentence if evidence else None):
            shown = sources if evidence else []
            yield Found(evidence, shown, asked=False)
            timings["total_ms"] = timings["evidence_ms"]
            return Answer(question, REFUSAL, True, shown, timings=timings, evidence=evidence)
        sources = self.fit(question, sources)
        evidence = [e for e in evidence if e.n <= len(sources)]
        yield Found(evidence, sources)
        constraint = None
        if self.quoting(question, sources) and (table := self.engine.token_table()):
            constraint = Quote({s.n: s.shown for s in sources}, table, self.max_answer_tokens)
        gen = self.engine.chat(build_messages(question, sources), self.max_answer_tokens,
                               temperature=temperature, cancel=cancel, constraint=constraint)
        stats: Generation = yield from gen
        checked = check_citations(stats.text, len(sources))
        refused = REFUSAL.lower().rstrip(".") in stats.text.lower()
        timings.update(first_token_ms=stats.first_token_ms + timings["evidence_ms"],
                       total_ms=(time.perf_counter() - t0) * 1000,
                       tokens_per_s=stats.tokens_per_s, threads=stats.threads)
        if refused:
            return Answer(question, REFUSAL, True, sources, (), checked.invalid, timings, stats,
                          evidence)
        sentences = checked_sentences(checked.text, sources, evidence)
        text, cited = cite_support(checked.text, checked.cited, sentences)
        return Answer(question, text, False, sources, cited, checked.invalid, timings, stats,
                      evidence, sentences)


def cite_support(text: str, cited: tuple[int, ...], sentences: Sequence[SentenceSupport]
                 ) -> tuple[str, tuple[int, ...]]:
    """An answer that rests on a source but cites none gets that source's mark: the source
    its first supported sentence rests on (the check found the words there). An answer that
    cites, or that rests on nothing, is left as it is."""
    if cited:
        return text, cited
    n = next((c.source for c in sentences if c.supported and c.source is not None), None)
    return (text, cited) if n is None else (f"{text} [{n}]", (n,))


def checked_sentences(text: str, sources: Sequence[Source], evidence: Sequence[Evidence]
                      ) -> list[SentenceSupport]:
    """The answer's sentences checked against the whole sources it was given (none without
    sources: an answer from the bare model claims nothing about the files), each pointing at
    the evidence sentence it rests on when it rests on one."""
    if not sources:
        return []
    where = {(e.n, e.start): i for i, e in enumerate(evidence)}
    return [replace(c, evidence=where.get((c.source, c.start)) if c.supported else None)
            for c in check(text, {s.n: s.text for s in sources})]


def relevant(found: Retrieval, evidence: float = 1.0,
             sentence_cosine: Callable[[], float | None] | None = None) -> bool:
    """Whether retrieval found anything worth answering from, ``evidence`` being the best
    evidence sentence's score and ``sentence_cosine`` its cosine with the question, computed
    only when the passages' best cosine misses (see MIN_COSINE, MIN_SENTENCE_EVIDENCE)."""
    if not found.passages or evidence < MIN_EVIDENCE:
        return False
    readable = found.fit >= MIN_FIT
    if found.coverage < (MIN_COVERAGE if readable else MIN_COVERAGE_UNREAD):
        return False
    if not readable or found.best_cosine is None or found.best_cosine >= MIN_COSINE:
        return True
    if sentence_cosine is None or evidence < MIN_SENTENCE_EVIDENCE:
        return False
    cosine = sentence_cosine()
    return cosine is not None and cosine >= MIN_COSINE


def passes_gate(retriever: Retriever, found: Retrieval, evidence: float,
                sentence: str | None) -> bool:
    """:func:`relevant` for ``found``, whose best evidence sentence is ``sentence`` scoring
    ``evidence``; that sentence is embedded only if the gate needs its cosine."""
    cosine = (lambda: retriever.cosine(found, sentence)) if sentence else None
    return relevant(found, evidence, cosine)

"""Grounded answers: numbered sources in the prompt, checked citations, honest refusals.

The answer carries the passages that went into its prompt (citations are data): nothing is
searched again to show them. When retrieval finds nothing relevant the model is not asked at
all, and the answer says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from desktop.core.answering.citations import check_citations
from desktop.core.answering.focus import FOCUS_SENTENCES, focus
from desktop.core.answering.prompts import REFUSAL, build_messages
from desktop.core.answering.quote import QUOTE_MODES, Quote, unfamiliar
from desktop.core.answering.retrieve import Passage, Retrieval, Retriever
from desktop.core.model.engine import Engine, Generation, Token

#: Retrieval found something relevant when the best cosine reaches MIN_COSINE and MIN_COVERAGE
#: of the question's search terms occur in the files; for a question the embedder cannot read
#: (embedder fit below MIN_FIT: most non-English text) its cosines are noise, and coverage of
#: MIN_COVERAGE_UNREAD alone decides. Calibrated on ../shared/eval (`grounded eval` reports
#: the refusal rates): on squad_v1.1_dev's small corpus this refuses 80% of the 50 unanswerable
#: probes and 5.3% of the 207 answerable questions; 5.6% on covidqa_long; 0.4% on XQuAD.
MIN_COSINE = 0.30
MIN_COVERAGE = 0.7
MIN_FIT = 0.5
MIN_COVERAGE_UNREAD = 0.5


def source_label(path: str, page: int | None, page_end: int | None) -> str:
    """File name with page (range): ``a.pdf, pp. 3-4``, ``a.pdf, p. 3`` or ``notes.md``."""
    name = Path(path).name
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
    excerpt: str | None = None  # what the prompt carried, when not the whole text (focus)

    def label(self) -> str:
        """File name with page (range), as people see it."""
        return source_label(self.path, self.page, self.page_end)

    @property
    def shown(self) -> str:
        """What the prompt carries of it: the excerpt, else the whole text."""
        return (self.excerpt or self.text).strip()


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
                         "excerpt": s.excerpt}
                        for s in self.sources],
            "cited": list(self.cited),
            "invalid_citations": self.invalid_citations,
            "timings": self.timings,
        }


def sources_from(passages: Sequence[Passage]) -> list[Source]:
    return [Source(i, p.chunk_id, p.path, p.page, p.page_end, p.heading, p.text, p.score)
            for i, p in enumerate(passages, start=1)]


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

    def focused(self, question: str, sources: list[Source]) -> list[Source]:
        """The sources whose best sentences the prompt carries (see :mod:`focus`), numbered
        anew from 1 in rank order; all of them, whole, when ``sentences`` is 0."""
        if self.sentences < 1 or not sources:
            return sources
        excerpts = focus(question, [s.text for s in sources], self.sentences)
        return [replace(sources[e.passage], n=n, excerpt=e.text)
                for n, e in enumerate(excerpts, start=1)]

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
            ) -> Generator[Token, None, Answer]:
        """Stream the answer's tokens; return the checked :class:`Answer`.

        ``passages`` hands the model given passages instead of searching (the eval's oracle).
        """
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        sources: list[Source] = []
        if passages is not None:
            sources = sources_from(passages)
        elif retrieval and self.retriever is not None:
            found = self.retriever.search(question, k=self.k, collections=collections, mode=mode)
            timings["retrieve_ms"] = (time.perf_counter() - t0) * 1000
            if not relevant(found):
                timings["total_ms"] = (time.perf_counter() - t0) * 1000
                return Answer(question, REFUSAL, True, [], timings=timings)
            sources = sources_from(found.passages)
        sources = self.fit(question, self.focused(question, sources))
        constraint = None
        if self.quoting(question, sources) and (table := self.engine.token_table()):
            constraint = Quote({s.n: s.shown for s in sources}, table, self.max_answer_tokens)
        gen = self.engine.chat(build_messages(question, sources), self.max_answer_tokens,
                               temperature=temperature, cancel=cancel, constraint=constraint)
        stats: Generation = yield from gen
        checked = check_citations(stats.text, len(sources))
        refused = REFUSAL.lower().rstrip(".") in stats.text.lower()
        timings.update(first_token_ms=stats.first_token_ms + timings.get("retrieve_ms", 0.0),
                       total_ms=(time.perf_counter() - t0) * 1000,
                       tokens_per_s=stats.tokens_per_s, threads=stats.threads)
        return Answer(question, REFUSAL if refused else checked.text, refused, sources,
                      () if refused else checked.cited, checked.invalid, timings, stats)


def relevant(found: Retrieval) -> bool:
    """Whether retrieval found anything worth answering from (see MIN_COSINE)."""
    if not found.passages:
        return False
    readable = found.fit >= MIN_FIT
    if found.coverage < (MIN_COVERAGE if readable else MIN_COVERAGE_UNREAD):
        return False
    return not readable or found.best_cosine is None or found.best_cosine >= MIN_COSINE

"""Hybrid retrieval: nearest vectors and best BM25 matches, fused, scoped to collections.

Vector search is the store's (:mod:`desktop.core.storage.vectors`: sqlite-vec over int8 codes
in cells, the candidates re-scored with their float vectors), so nothing is loaded or reloaded
here and every change is visible to the next search. Keyword search is FTS5 BM25 over the
bigram-aware text of :mod:`desktop.core.storage.keywords`. The two rankings are fused by
weighted reciprocal rank fusion (:func:`fuse`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from desktop.core.embedding.embedder import Embedder
from desktop.core.errors import GroundedError
from desktop.core.storage import keywords, vectors
from desktop.core.storage.keywords import STEM
from desktop.core.storage.store import Store, connect

#: Reciprocal rank fusion constant: 20 (not the usual 60) weighs top ranks more; tuned on dev data.
RRF_K = 20


#: BM25's weight against the vector ranking's (before the embedder-fit factor); tuned on the
#: dev sets of ../shared/eval, where keyword search is strong (SQuAD and XQuAD questions were
#: written from the passages; COVID-QA is domain-heavy).
KEYWORD_WEIGHT = 1.5


#: BM25 leaves out a question's terms found in more chunks than this (when it has rarer ones):
#: at a million chunks keyword search p95 falls from 246 to 53 ms, and its top 10 keeps 0.88 of
#: the full query's (``bench retrieve``). Smaller libraries are never affected.
KEYWORD_MAX_CHUNKS = 20_000


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with where it came from and why it was chosen."""

    chunk_id: int
    path: str
    page: int | None
    page_end: int | None
    heading: str | None
    text: str
    score: float  # fused score (higher is better)
    vector_score: float | None = None  # cosine similarity, when the vector search found it
    vector_rank: int | None = None
    keyword_rank: int | None = None
    ocr: float | None = None  # the OCR confidence when the passage was read from an image


@dataclass(frozen=True)
class Retrieval:
    """The passages for one question, best first, with timings."""

    passages: list[Passage]
    #: The best cosine of any chunk in scope (None when the vector search did not run).
    best_cosine: float | None
    embed_ms: float
    search_ms: float
    #: How far the embedder reads the question (:func:`embedder_fit`), 0..1.
    fit: float = 1.0
    #: The share of the question's search terms that occur anywhere in scope, 0..1.
    coverage: float = 1.0
    #: The question's vector (None when the vector search did not run).
    query: np.ndarray | None = field(default=None, compare=False, repr=False)


def fuse(rankings: Sequence[Sequence[int]], weights: Sequence[float] | None = None,
         k: int = RRF_K) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion: ``score(d) = Σ w_i / (k + rank_i(d))`` (ranks from 1).

    Returns (id, score) pairs, best first; ties keep the order of first appearance.
    """
    weights = weights or [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + w / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


#: Below this embedder fit (:func:`embedder_fit`) the embedder cannot read a text: its cosines
#: say nothing (the refusal and the follow-up search both fall back on words).
MIN_FIT = 0.5


def embedder_fit(tokenizer, text: str) -> float:
    """How well the embedder can read ``text``: the share of its tokens that are whole words.

    An English embedder reads English questions at 0.8-0.9; German falls near 0.5 (words break
    into pieces); Russian, Arabic, Chinese or Thai near 0 (pieces and unknown tokens). Fusion
    trusts the vector ranking only as far as the embedder can read the question.
    """
    tokens = [t for t in tokenizer.encode(text, add_special_tokens=False).tokens
              if any(ch.isalnum() for ch in t)]
    if not tokens:
        return 1.0
    whole = sum(1 for t in tokens if not t.startswith("##") and t != "[UNK]" and len(t) > 1)
    return whole / len(tokens)


class Retriever:
    """Hybrid search over a store; :meth:`close` it before the store."""

    def __init__(self, store: Store, embedder: Embedder, candidates: int = 50,
                 keyword_weight: float = KEYWORD_WEIGHT, rrf_k: int = RRF_K) -> None:
        self.store = store
        self.embedder = embedder
        self.vectors = store.vectors
        self.candidates = candidates
        self.keyword_weight = keyword_weight
        self.rrf_k = rrf_k
        self._vocabulary: dict[str, int] | None = None  # chunk counts of terms, once looked up
        self._prefixes: dict[str, int] | None = None  # and of the words that start so
        self._vocabulary_at = 0  # the library's size when they were
        # Keywords are searched on a connection and thread of their own while the question is
        # embedded and its vectors searched (SQLite runs without the GIL): a search takes the
        # longer of the two, not their sum.
        self._words = connect(store.path) if store.path is not None else store.con
        self._beside = ThreadPoolExecutor(1, thread_name_prefix="grounded-keywords")

    def close(self) -> None:
        """Close the keyword connection and thread (the store stays open)."""
        self._beside.shutdown()
        if self._words is not self.store.con:
            self._words.close()

    def collection_ids(self, names: Sequence[str] | None) -> list[int] | None:
        """Ids for collection names (None: all); an unknown name is a user error."""
        if not names:
            return None
        ids = []
        for name in names:
            cid = self.store.collection_id(name)
            if cid is None:
                raise GroundedError(f"no collection named {name!r}")
            ids.append(cid)
        return ids

    def keyword_search(self, question: str, k: int, collections: Sequence[int] | None = None
                       ) -> list[int]:
        """Chunk ids of the best BM25 matches, best first.

        In a library larger than :data:`KEYWORD_MAX_CHUNKS`, a term found in more chunks than
        that is left out when the question has rarer ones (:meth:`_rare_terms`), and so is a
        word's prefix query when its words are in more chunks than that.
        """
        terms = keywords.search_words(question)
        size = vectors.stored_count(self._words)
        prefixed = None
        if size > KEYWORD_MAX_CHUNKS:
            terms = self._rare_terms(terms, size)
            prefixed = [t for t in terms if self._prefix_chunks(t) <= KEYWORD_MAX_CHUNKS]
        query = keywords.match_query(terms, prefixed)
        return [] if query is None else [r[0] for r in self._match(query, collections, k)]

    def _rare_terms(self, terms: list[str], size: int) -> list[str]:
        """``terms`` without those in more than :data:`KEYWORD_MAX_CHUNKS` chunks (the rarest
        one stays when all are that common).

        FTS5 scores every chunk that any term of the query matches before it can rank them,
        so a common word costs a search at a million chunks a quarter of a second; its BM25
        weight (inverse document frequency) is small, so it changes the ranking little. The
        chunk counts come from FTS5's own vocabulary table, remembered until the library's
        size changes by a tenth.
        """
        if self._vocabulary is None or abs(size - self._vocabulary_at) > size / 10:
            self._vocabulary_at = size
            self._words.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunk_vocab "
                                "USING fts5vocab(main, chunk_fts, row)")
            self._vocabulary, self._prefixes = {}, {}
        for term in terms:
            if term not in self._vocabulary:
                row = self._words.execute(
                    "SELECT doc FROM temp.chunk_vocab WHERE term=?", (term,)).fetchone()
                self._vocabulary[term] = row[0] if row else 0
        rare = [t for t in terms if self._vocabulary[t] <= KEYWORD_MAX_CHUNKS]
        return rare or sorted(terms, key=self._vocabulary.__getitem__)[:1]

    def _prefix_chunks(self, term: str) -> int:
        """At most how many chunks hold a word that starts with ``term``'s first STEM letters
        (the sum of those words' chunk counts; 0 for a word too short to have a prefix query),
        remembered with the vocabulary (:meth:`_rare_terms` makes it)."""
        stem = term[:STEM]
        if keywords.stem_prefix(term) is None or self._prefixes is None:
            return 0
        if stem not in self._prefixes:
            row = self._words.execute(
                "SELECT sum(doc) FROM temp.chunk_vocab WHERE term >= ? AND term < ?",
                (stem, stem + "\U0010ffff")).fetchone()
            self._prefixes[stem] = row[0] or 0
        return self._prefixes[stem]

    def coverage(self, question: str, collections: Sequence[int] | None = None) -> float:
        """The share of the question's subject words (its search words but those that frame
        a question, as "happens" or "possible") found anywhere in scope (1.0: none).

        A question about something the files never mention ("Who is Tesla?" over files
        without "Tesla") leaves its rarest words unmatched, however close its vectors come.
        A word counts as found when a word of the files starts with its first STEM letters
        (FTS5 prefix queries): "added" finds "add", "Москвы" finds "Москва", where a count of
        exact words fails every inflected language. The exact word is tried first: it reads
        one doclist, where a prefix query merges every term that starts so.
        """
        asked = keywords.subject_words(question)
        if not asked:
            return 1.0
        found = sum(1 for w in asked if self._occurs(keywords.quoted(w), collections)
                    or self._occurs(keywords.quoted(w[:STEM]) + "*", collections))
        return found / len(asked)

    def _occurs(self, query: str, collections: Sequence[int] | None) -> bool:
        return any(self._match(query, collections, 1, ranked=False))

    def _match(self, query: str, collections: Sequence[int] | None, k: int,
               ranked: bool = True):
        order = "ORDER BY f.rank " if ranked else ""
        if collections is None:
            return self._words.execute(
                f"SELECT f.rowid FROM chunk_fts f WHERE chunk_fts MATCH ? {order}LIMIT ?",
                (query, k),
            )
        marks = ",".join("?" * len(collections))
        return self._words.execute(
            "SELECT f.rowid FROM chunk_fts f JOIN chunks c ON c.id = f.rowid "
            "JOIN documents d ON d.id = c.document_id JOIN roots r ON r.id = d.root_id "
            f"WHERE chunk_fts MATCH ? AND r.collection_id IN ({marks}) {order}LIMIT ?",
            (query, *collections, k),
        )

    def search(self, question: str, k: int = 5, collections: Sequence[str] | None = None,
               mode: str = "hybrid") -> Retrieval:
        """The ``k`` best passages for ``question``; ``mode`` is hybrid, vector or bm25."""
        scope = self.collection_ids(collections)
        t0 = time.perf_counter()
        # One connection (a :memory: store) cannot serve two threads: all runs here then.
        beside = self._words is not self.store.con
        words = self._beside.submit(self._keywords, question, scope, mode) if beside else None
        vec_ids: list[int] = []
        vec_scores: list[float] = []
        best: float | None = None
        query = None
        embed_ms = 0.0
        if mode in ("hybrid", "vector"):
            query = self.embedder.embed([question])[0]
            embed_ms = (time.perf_counter() - t0) * 1000
            vec_ids, vec_scores = self.vectors.search(query, self.candidates, scope)
            best = vec_scores[0] if vec_scores else 0.0
        kw_ids, coverage = words.result() if words else self._keywords(question, scope, mode)
        fit = embedder_fit(self.embedder.tokenizer, question)
        if mode == "vector":
            fused = list(zip(vec_ids, vec_scores, strict=True))
        elif mode == "bm25":
            fused = [(cid, 1.0 / (RRF_K + i)) for i, cid in enumerate(kw_ids, start=1)]
        else:
            fused = fuse([vec_ids, kw_ids], (fit, self.keyword_weight), self.rrf_k)
        top = fused[:k]
        vec_rank = {cid: i for i, cid in enumerate(vec_ids, start=1)}
        vec_cos = dict(zip(vec_ids, vec_scores, strict=True))
        kw_rank = {cid: i for i, cid in enumerate(kw_ids, start=1)}
        passages = self._load([cid for cid, _ in top])
        result = [
            Passage(cid, *passages[cid][:5], score=score, vector_score=vec_cos.get(cid),
                    vector_rank=vec_rank.get(cid), keyword_rank=kw_rank.get(cid),
                    ocr=passages[cid][5])
            for cid, score in top if cid in passages
        ]
        search_ms = (time.perf_counter() - t0) * 1000 - embed_ms
        return Retrieval(result, best, embed_ms, search_ms, fit, coverage, query)

    def cosine(self, found: Retrieval, text: str) -> float | None:
        """The cosine of ``found``'s question and ``text`` (one embedding, a few ms; None
        when that search computed no question vector)."""
        if found.query is None:
            return None
        return float(self.embedder.embed([text])[0] @ found.query)

    def _keywords(self, question: str, scope: Sequence[int] | None, mode: str
                  ) -> tuple[list[int], float]:
        """The BM25 ranking (unless ``mode`` is vector) and the coverage, for :meth:`search`."""
        ranking = self.keyword_search(question, self.candidates, scope) \
            if mode in ("hybrid", "bm25") else []
        return ranking, self.coverage(question, scope)

    def _load(self, chunk_ids: list[int]) -> dict[int, tuple]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self.store.con.execute(
            "SELECT c.id, d.path, c.page, c.page_end, c.heading, c.text, c.ocr FROM chunks c "
            f"JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})",
            chunk_ids,
        )
        return {r[0]: r[1:] for r in rows}

"""Text for the FTS5 keyword index, and safe FTS5 queries from user text.

FTS5's unicode61 tokenizer splits on spaces and punctuation, which leaves Chinese, Japanese
and Thai (written without spaces) as one huge token per phrase. We index such runs as
overlapping character bigrams, the classic CJK approach (Lucene's CJKAnalyzer): no
dictionary needed, and a question's bigrams match the passage's bigrams. The tokenizer keeps
combining marks (category M) inside tokens, so Thai vowels and Devanagari signs stay in words.
"""

from __future__ import annotations

import re
from collections.abc import Collection

#: Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, kana, CJK ideographs.
UNSPACED = (
    "\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff"
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
)
_UNSPACED_RUN = re.compile(f"[{UNSPACED}]+")
_WORD = re.compile(r"\w[\w\u0300-\u036f\u0900-\u0dff]*", re.UNICODE)

# Words too common to help a keyword search; dropping them keeps BM25 queries fast.
STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have how i if in
    into is it its many may much of on or so than that the their them then there these they this
    to was were what when where which who whom whose why will with would you your""".split()
)


#: The letters that stand for a word where inflections must not matter (a prefix stem: no
#: dictionary, any spaced script): the evidence ranking compares words by them, and a
#: question's word counts as found in the files when one of theirs starts with them.
STEM = 5


def _bigrams(run: str) -> str:
    if len(run) == 1:
        return run
    return " ".join(run[i : i + 2] for i in range(len(run) - 1))


def index_text(text: str) -> str:
    """Return ``text`` as it is stored in the FTS5 index (unspaced scripts as bigrams)."""
    return _UNSPACED_RUN.sub(lambda m: f" {_bigrams(m.group())} ", text)


def words(text: str) -> list[str]:
    """The searchable words of ``text``, lower-cased, stopwords out (unspaced scripts as
    bigrams), in order and with repeats."""
    return [t for t in _WORD.findall(index_text(text).lower()) if t not in STOPWORDS]


def search_words(question: str, max_terms: int = 32) -> list[str]:
    """The distinct searchable words of a question, in order (at most ``max_terms``)."""
    return list(dict.fromkeys(words(question)))[:max_terms]


def quoted(term: str) -> str:
    """``term`` as an FTS5 string: quoted, so ``-``, ``:``, ``"`` or ``*`` in it are never
    syntax."""
    return '"' + term.replace('"', '""') + '"'


def stem_prefix(term: str) -> str | None:
    """The FTS5 prefix query that finds ``term``'s other forms (its first :data:`STEM`
    letters, then ``*``), or None for a word no longer than that, a number, or a bigram."""
    if len(term) <= STEM or any(c.isdigit() for c in term):
        return None
    return quoted(term[:STEM]) + "*"


def match_query(terms: list[str], prefixed: Collection[str] | None = None) -> str | None:
    """An FTS5 MATCH expression: the quoted ``terms`` joined by OR (None if there are none).

    A word longer than :data:`STEM` letters also matches the words that start as it does
    (:func:`stem_prefix`): "introduced" finds "introduction", "Москвы" finds "Москва",
    "Zellen" finds "Zelle". The exact word stays in the query, so a chunk that holds the
    question's very word still scores above one that holds another form. ``prefixed`` limits
    the words that get a prefix query (None: every one).
    """
    parts = []
    for term in terms:
        parts.append(quoted(term))
        prefix = stem_prefix(term) if prefixed is None or term in prefixed else None
        if prefix:
            parts.append(prefix)
    return " OR ".join(parts) if parts else None

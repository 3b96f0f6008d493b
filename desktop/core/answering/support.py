"""The support score: how much of an answer the retrieved passages back up.

``support(answer, passages)`` is the share of the answer's words (lower-cased, stopwords and
citation marks out; Chinese, Japanese and Thai as character bigrams) that occur in the
passages retrieved for its question. 1.0: every word the answer uses is in the passages;
0.0: none is. It is measured against the same passages for every configuration of a
comparison, so an answer written without retrieval is scored by what the files say too. A
refusal or an empty answer claims nothing and has no score (None). It rewards staying close
to the files' words, not being right: a paraphrase scores lower, a copied wrong sentence high.
"""

from __future__ import annotations

from collections.abc import Iterable

from desktop.core.answering.citations import strip_citations
from desktop.core.storage import keywords


def support(answer: str, passages: Iterable[str]) -> float | None:
    """The share of the answer's words found in the passages (None for no words)."""
    words = keywords.words(strip_citations(answer))
    if not words:
        return None
    vocabulary = {w for text in passages for w in keywords.words(text)}
    return sum(w in vocabulary for w in words) / len(words)

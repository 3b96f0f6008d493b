"""Follow-up questions: search with the conversation when the question leans on it.

"When was it founded?" names nothing to search for; the turn before it does. The question is
searched together with the previous question when the embedder finds the two about the same
thing: their cosine reaches :data:`MIN_RELATED`. A question on a new topic stays alone, so it
is not dragged back to the old one. Measured on the 72 hand-written pairs of
``tests/data/follow_ups.jsonl`` (README, "Follow-ups"): the previous question and its
follow-up had cosine 0.21 / 0.35 / 0.47 (quartiles), a question after an unrelated turn
0.03 / 0.06 / 0.14.

It reads one turn back, and only in the languages the embedder reads (below ``MIN_FIT``
the cosine is noise and the question is searched alone).
"""

from __future__ import annotations

from collections.abc import Sequence

from desktop.core.answering.retrieve import MIN_FIT, embedder_fit
from desktop.core.embedding.embedder import Embedder

#: The cosine of a question and the previous one at which they are taken to share a topic.
MIN_RELATED = 0.3


def search_text(embedder: Embedder, question: str, history: Sequence[str]) -> str:
    """What to search for ``question`` asked after the questions ``history`` (oldest first):
    the previous question and this one when they share a topic, else this one alone."""
    if not history or not history[-1].strip():
        return question
    previous = history[-1]
    if min(embedder_fit(embedder.tokenizer, t) for t in (question, previous)) < MIN_FIT:
        return question
    q, p = embedder.embed([question, previous])
    return f"{previous} {question}" if float(q @ p) >= MIN_RELATED else question

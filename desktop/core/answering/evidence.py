"""Evidence: the sentences of the retrieved passages that best answer the question, best first.

One ranking serves the person and the model: the answer leads with its first sentences, and
the prompt carries the best ones (:meth:`desktop.core.answering.answer.Answerer.focused`).

A sentence scores the rarity of the question's words it holds: each shared word adds
``log(1 + n / df)``, ``df`` being how many of the ``n`` candidate sentences hold it, so a word
that every passage repeats counts little and the one rare word that names the topic counts
most. Words are compared by their first :data:`STEM` letters (``words`` of
:mod:`desktop.core.storage.keywords`: lower-cased, stopwords out, Chinese, Japanese and Thai as
character bigrams), a crude stemmer that needs no dictionary and so works in any language
with spaces: "introduced"/"introduction", "Москва"/"Москвы", "Zellen"/"Zelle" meet. The sum is
divided by ``1 + RANK_PRIOR × r`` for a sentence of the passage ranked ``r`` (from 0): retrieval
read the whole passage, and its ranking breaks near-ties. A sentence with no word beyond the
question's (a heading or title such as "Super Bowl 50" or "The Proposed Amendment") only
restates it and counts :data:`RESTATEMENT_SHARE` of its score: halved, not dropped, since a
yes/no question's answer can be its own restatement. In an FAQ the answer follows its
question and need not share a word with it ("Can I stop indexing halfway?" / "Yes. Press
Ctrl-C once..."): the sentences after a question that stands on its own line, up to the next
blank line or question, score at least what that question scores, scaled by the share of its
words the person asked too (a question that asks something more lends less).

Measured against the alternatives on ../shared/eval (README, "Evidence"): the embedder's
cosine of question and sentence ranked worse on every set and costs 150-400 ms a question for
the sentences of five passages; added to this score it changed evidence@1 by under 0.02.

It cannot see meaning: a sentence that answers in other words than the question's ranks
below one that repeats the question without answering it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from desktop.core.answering.sentences import flat, sentence_spans
from desktop.core.storage.keywords import STEM, words

#: Evidence sentences shown, and carried by the prompt. Two: the eval's choice on
#: ../shared/eval (README, "Answer quality").
FOCUS_SENTENCES = 2
#: How much a passage's rank discounts its sentences: score / (1 + RANK_PRIOR × rank).
RANK_PRIOR = 0.2
#: What a sentence that holds no word beyond the question's counts of its score.
RESTATEMENT_SHARE = 0.5
#: A sentence scoring under this share of the best one is not shown as evidence nor read by
#: the model. On ../shared/eval such a second sentence never held the answer when the first
#: did not (evidence@2 the same with and without it on all three sets), and it was 25-46% of
#: the second sentences.
MIN_SHARE_OF_BEST = 0.5

_QUESTION_MARKS = ("?", "？", "؟")  # a sentence that asks is never the answer (an FAQ's)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# What may stand before a sentence on its line: a heading's, list's or quote's marks, or "Q:".
_LINE_MARKS = re.compile(r"[ \t#*>-]*(?:Q:|Q\.|\d+[.)])?[ \t]*")
_LINE_END = re.compile(r"[ \t]*(?:\n|$)")
_WORD_IN_TEXT = re.compile(r"\w[\w'’-]*")


def stems(text: str, stem: int = STEM) -> list[str]:
    """The words of ``text`` as compared here (their first ``stem`` letters; 0: whole), in
    order, with repeats."""
    return [w[:stem] if stem else w for w in words(text)]


@dataclass(frozen=True)
class Sentence:
    """One candidate sentence: which passage, where in its text, and its score."""

    passage: int  # index into the passages ranked
    start: int  # character offsets in that passage's text
    end: int
    text: str  # on one line
    score: float  # 0..1: the share of the question's weight it holds, discounted by rank


def rank(question: str, passages: Sequence[str], stem: int = STEM,
         prior: float = RANK_PRIOR, restated: float = RESTATEMENT_SHARE) -> list[Sentence]:
    """Every sentence of ``passages`` (given best first) that shares a word with
    ``question`` and is not itself a question, best first; ties go to the better passage,
    then the earlier sentence. (Other ``stem``, ``prior`` and ``restated`` are for measuring
    alternatives.)"""
    asked = set(stems(question, stem))
    if not asked:
        return []
    candidates = []
    n = 0  # sentences in all
    for p, text in enumerate(passages):
        spans = sentence_spans(text)
        n += len(spans)
        for start, end, answered in _with_questions_answered(text, spans):
            sentence = flat(text[start:end])
            held = set(stems(sentence, stem))
            shared = held & asked
            heading = set(stems(answered, stem)) if answered else set()
            by = heading & asked  # the words of the question it answers that are asked too
            if (shared or by) and not sentence.endswith(_QUESTION_MARKS):
                share = 1.0 if held - asked else restated
                candidates.append((p, start, end, sentence, shared, share, by,
                                   len(by) / len(heading) if by else 0.0))
    if not candidates:
        return []
    df = Counter(w for c in candidates for w in c[4])
    weight = {w: math.log(1 + n / df[w]) for w in df}
    rarest = math.log(1 + n)  # a word no candidate holds
    # The best a sentence could do: every question word found, each as rare as it is here.
    whole = sum(weight.values()) + sum(rarest for w in asked if w not in weight)
    ranked = [Sentence(p, start, end, sentence,
                       max(share * sum(weight[w] for w in shared),
                           alike * sum(weight.get(w, rarest) for w in by))
                       / whole / (1 + prior * p))
              for p, start, end, sentence, shared, share, by, alike in candidates]
    return sorted(ranked, key=lambda s: (-s.score, s.passage, s.start))


def _with_questions_answered(text: str, spans: Sequence[tuple[int, int]]
                             ) -> list[tuple[int, int, str]]:
    """Each sentence span with the question of the text it answers ("" for none): the
    sentences after a question that stands on a line of its own, up to the next sentence
    that asks or the next blank line once one has followed (an FAQ: "Can I stop indexing
    halfway?" on its line, then "Yes. Press Ctrl-C once..."). A question inside a paragraph
    of prose heads nothing: what follows it need not answer it."""
    out, question, answered = [], "", 0
    for i, (start, end) in enumerate(spans):
        sentence = text[start:end].rstrip()
        if i and answered and _PARAGRAPH_BREAK.search(text, spans[i - 1][1], start):
            question = ""
        out.append((start, end, question))
        if sentence.endswith(_QUESTION_MARKS):
            line = text.rfind("\n", 0, start) + 1
            own_line = (_LINE_MARKS.fullmatch(text, line, start) is not None
                        and _LINE_END.match(text, end) is not None)
            question, answered = (sentence if own_line else ""), 0
        elif question:
            answered += 1
    return out


@dataclass(frozen=True)
class Excerpt:
    """The kept sentences of one passage, in the passage's order (what the prompt carries)."""

    passage: int
    text: str


def best(question: str, passages: Sequence[str], keep: int) -> list[Sentence]:
    """The evidence: the ``keep`` best sentences, without those scoring under
    :data:`MIN_SHARE_OF_BEST` of the first (a sentence far weaker than the best is not
    evidence, only a shared word)."""
    ranked = rank(question, passages)[:keep]
    return [s for s in ranked if s.score >= MIN_SHARE_OF_BEST * ranked[0].score]


def excerpts(question: str, passages: Sequence[str], keep: int) -> list[Excerpt]:
    """The :func:`best` ``keep`` sentences of ``passages`` as :func:`grouped` excerpts;
    ``keep`` < 1 keeps every passage whole."""
    if keep < 1:
        return [Excerpt(i, text) for i, text in enumerate(passages)]
    return grouped(best(question, passages, keep), passages, keep)


def grouped(kept: Sequence[Sentence], passages: Sequence[str], keep: int) -> list[Excerpt]:
    """``kept`` grouped by passage in rank order, each group in its passage's order. With no
    sentence kept (none shares a word with the question), the best passage's first ``keep``
    sentences."""
    if not kept:
        first = [flat(passages[0][s:e]) for s, e in sentence_spans(passages[0])[:keep]] \
            if passages else []
        return [Excerpt(0, " ".join(first))] if first else []
    groups: dict[int, list[Sentence]] = {}
    for sentence in sorted(kept, key=lambda s: (s.passage, s.start)):
        groups.setdefault(sentence.passage, []).append(sentence)
    return [Excerpt(p, " ".join(s.text for s in group)) for p, group in groups.items()]


def answer_span(sentence: str, answer: str) -> tuple[int, int] | None:
    """Where in ``sentence`` the words of ``answer`` stand: the longest run of its words that
    the answer uses (compared by stem), as character offsets; None when they share none."""
    used = set(stems(answer))
    best: tuple[int, int] | None = None
    run_start = run_end = None
    for m in _WORD_IN_TEXT.finditer(sentence):
        if set(stems(m.group())) & used:
            run_start = m.start() if run_start is None else run_start
            run_end = m.end()
            if best is None or run_end - run_start > best[1] - best[0]:
                best = (run_start, run_end)
        elif words(m.group()):  # a stopword does not break a run
            run_start = None
    return best

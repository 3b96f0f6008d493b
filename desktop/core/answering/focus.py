"""Focus: the few sentences of the retrieved passages that bear on the question.

A small model reads a short prompt far better than a long one: the bundled 135M model given
the two sentences of the top five passages that share the question's rarest words answers
SQuAD with token F1 0.23, against 0.13 from three whole passages and 0.14 from the single
best one (README, "Answer quality"). The passages stay whole everywhere else (the sources a
person sees, the support score); only the prompt carries the excerpts.

Sentences are scored by the inverse frequency, among all the candidate sentences, of the
question's search words they contain (:func:`desktop.core.storage.keywords.words`, so Chinese and
Thai count by bigrams); ties go to the better-ranked passage and the earlier sentence.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from desktop.core.storage.keywords import words

#: Sentences the prompt carries by default (the eval's choice on ../shared/eval; README).
FOCUS_SENTENCES = 2

# A sentence ends at . ! ? (and their full-width forms) before a space or a line break, after
# a full-width one anywhere, and at a blank line.
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])|\n\s*\n")
_ENDS_SENTENCE = tuple(".!?:;。！？")
_NEW_LINE_ITEM = re.compile(r"#|[-*+•] |\d+[.)] ")  # a heading or a list item
_WRAP_WIDTH = 60  # a line at least this long that ends mid-sentence was wrapped


def _continues(previous: str, line: str) -> bool:
    """Whether ``line`` carries on the hard-wrapped sentence that ``previous`` left open."""
    if previous.endswith(_ENDS_SENTENCE) or _NEW_LINE_ITEM.match(line) or previous[0] == "#":
        return False
    return line[0].islower() or len(previous) >= _WRAP_WIDTH


def sentences(text: str) -> list[str]:
    """The non-empty sentences of ``text``, in order. A line break ends one too, except in
    hard-wrapped prose: a line continues the one before it when that one stopped
    mid-sentence and either was long or is followed by a lower-case word (headings and list
    items always stand alone)."""
    out: list[str] = []
    for block in _SENTENCE_END.split(text):
        lines: list[str] = []
        for line in (part.strip() for part in block.split("\n")):
            if not line:
                continue
            if lines and _continues(lines[-1], line):
                lines[-1] = f"{lines[-1]} {line}"
            else:
                lines.append(line)
        out.extend(lines)
    return out


@dataclass(frozen=True)
class Excerpt:
    """The kept sentences of one passage, in the passage's order."""

    passage: int  # index into the passages given to :func:`focus`
    text: str


def focus(question: str, passages: Sequence[str], keep: int) -> list[Excerpt]:
    """The ``keep`` best sentences of ``passages`` (best-ranked passage first) for
    ``question``, grouped by passage in rank order; passages without a kept sentence are left
    out, and so are sentences without a question word unless no sentence has one. ``keep`` < 1
    keeps every passage whole."""
    if keep < 1:
        return [Excerpt(i, text) for i, text in enumerate(passages)]
    asked = set(words(question))
    candidates = [(p, s, sentence, set(words(sentence)) & asked)
                  for p, text in enumerate(passages)
                  for s, sentence in enumerate(sentences(text))]
    df = Counter(w for *_, shared in candidates for w in shared)
    n = len(candidates)

    def score(candidate: tuple[int, int, str, set[str]]) -> tuple[float, int, int]:
        p, s, _, shared = candidate
        return (-sum(math.log(1 + n / df[w]) for w in shared), p, s)

    # Sentences sharing no word with the question only fill in when none shares one.
    matching = [c for c in candidates if c[3]] or candidates
    chosen = sorted(sorted(matching, key=score)[:keep], key=lambda c: (c[0], c[1]))
    grouped: dict[int, list[str]] = {}
    for p, _, sentence, _ in chosen:
        grouped.setdefault(p, []).append(sentence)
    return [Excerpt(p, " ".join(kept)) for p, kept in grouped.items()]

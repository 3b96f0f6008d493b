"""The form score: how closely an answer follows the shape and wording of an ideal reply.

``form(answer, ideal)`` is ROUGE-L F1 over tokens: the longest common subsequence (LCS) of the
two token sequences, as precision (LCS / answer tokens) and recall (LCS / ideal tokens), and
their harmonic mean. Tokens are lower-cased words, each punctuation mark on its own, and each
line break as a token of its own (``¶``): a reply's layout (a heading line, ``Summary:`` first,
one point per line) is part of its form, and ROUGE-L rewards the same things in the same order
without asking them to be adjacent. 1.0: the same tokens in the same order; 0.0: none shared.

Why ROUGE-L and not chrF or BLEU: a taught form is mostly an order of recurring parts (a label,
then a one-line summary, then details), which a subsequence measures directly; chrF counts
character n-grams in any order and scores a reply with the right words in the wrong layout as
well as one in the right layout; BLEU's brevity penalty and n-gram precision punish the short
replies a form often asks for. ROUGE-L is also the standard summary measure and has no
parameters to choose.

:func:`form_against` scores an answer without a paired ideal reply (a question asked in
``compare`` or ``eval`` with a tuned adapter) against the adapter's held-out ideal replies:
the best score over them, "how close is it to the nearest example of the taught form". The max,
not the mean: the examples differ in content, and an answer should be judged by the one it
resembles, not penalised for unlike topics.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_TOKEN = re.compile(r"\n|\w+|[^\w\s]")
LINE_BREAK = "¶"


def tokens(text: str) -> list[str]:
    """Lower-cased words, punctuation marks, and line breaks (as ``¶``) of ``text``."""
    return [LINE_BREAK if t == "\n" else t for t in _TOKEN.findall(text.lower())]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """The length of the longest common subsequence of ``a`` and ``b`` (O(len a × len b))."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def form(answer: str, ideal: str) -> float:
    """ROUGE-L F1 of ``answer`` against ``ideal`` over :func:`tokens` (0.0 when either is
    empty)."""
    a, b = tokens(answer), tokens(ideal)
    if not a or not b:
        return 0.0
    common = lcs_length(a, b)
    if not common:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def form_against(answer: str, ideals: Iterable[str]) -> float | None:
    """The best :func:`form` of ``answer`` over ``ideals`` (None when there are none)."""
    scores = [form(answer, ideal) for ideal in ideals]
    return max(scores) if scores else None

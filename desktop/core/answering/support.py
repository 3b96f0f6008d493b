"""Support: how far an answer rests on the sources, as a whole and sentence by sentence.

``support(answer, passages)`` is the share of the answer's words (lower-cased, stopwords and
citation marks out; Chinese, Japanese and Thai as character bigrams) that occur in the
passages retrieved for its question. 1.0: every word the answer uses is in the passages;
0.0: none is. It is measured against the same passages for every configuration of a
comparison, so an answer written without retrieval is scored by what the files say too. A
refusal or an empty answer claims nothing and has no score (None). It rewards staying close
to the files' words, not being right: a paraphrase scores lower, a copied wrong sentence high.

:func:`check` goes sentence by sentence: each sentence of the answer is matched with the one
source sentence that holds most of its words, and is supported only when that sentence holds
most of them *and* every fact of it (numbers, dates, names: :func:`facts`). A copied sentence
with one number or name changed therefore fails, however many words it shares. It cannot
judge a paraphrase that uses other words for the same fact (it comes out unsupported), nor a
sentence whose words are all in the source but whose claim reverses it ("not" is a stopword).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from desktop.core.answering.citations import strip_citations
from desktop.core.answering.evidence import stems
from desktop.core.answering.sentences import flat, sentence_spans, sentences
from desktop.core.storage import keywords


def support(answer: str, passages: Iterable[str]) -> float | None:
    """The share of the answer's words found in the passages (None for no words)."""
    words = keywords.words(strip_citations(answer))
    if not words:
        return None
    vocabulary = {w for text in passages for w in keywords.words(text)}
    return sum(w in vocabulary for w in words) / len(words)


# -- the sentence check ------------------------------------------------------------------------

#: An answer sentence is supported when one source sentence (or failing that, one source) holds
#: at least this share of its words (compared by their first STEM letters) and every one of
#: its facts (:func:`facts`). The facts catch a changed copy; this share only keeps an answer
#: sentence that wanders far from any source sentence from resting on it (README, "Evidence,
#: the sentence check, follow-ups, refusals").
MIN_SHARE = 0.6

_FACT = re.compile(r"\w*\d(?:[\w.,:/-]*\w)?")
NAME_WORD = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-ZÀ-ÖØ-ÞĀ-ſА-ЯЁ][\w'-]+")
#: English numbers and ordinals in words ("the second floor", "three doses"): facts as digits
#: are. "One" is left out: in prose it is mostly a pronoun ("the one that", "one of them").
NUMBER_WORDS = frozenset(
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
    "ninety hundred thousand million billion trillion dozen twice thrice half "
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "hundredth thousandth millionth".split())


def facts(sentence: str) -> set[str]:
    """The words of ``sentence`` that carry a checkable fact, lower-cased: anything with a
    digit (numbers, dates, amounts), English numbers in words (:data:`NUMBER_WORDS`) and
    capitalised words inside the sentence (names). A changed fact in an otherwise copied
    sentence is one of these. Read as the keyword index reads text
    (:func:`keywords.index_text`), so a number is apart from the Chinese or Thai letters it
    touches: "1785年" holds the fact "1785", "Eutelsat的" the name "eutelsat"."""
    spaced = keywords.index_text(sentence)
    found = {m.group().lower().rstrip(".,") for m in _FACT.finditer(spaced)}
    found |= {m.group().lower() for m in NAME_WORD.finditer(spaced.strip())}
    found |= NUMBER_WORDS.intersection(keywords.words(spaced))
    return {f for f in found if f}


@dataclass(frozen=True)
class SentenceSupport:
    """One sentence of an answer, checked against the sources it was given."""

    text: str
    supported: bool
    score: float  # the share of its words found where it is best supported, 0..1
    source: int | None  # the number of the source it rests on (None: none holds its words)
    start: int | None = None  # that source sentence's offsets in the source's text
    end: int | None = None
    evidence: int | None = None  # index into the answer's evidence, when it rests on one

    def to_dict(self) -> dict:
        return {"text": self.text, "supported": self.supported,
                "evidence": self.evidence, "score": round(self.score, 4)}


@dataclass(frozen=True)
class _Text:
    """A source text (or one of its sentences) prepared once for every answer sentence."""

    n: int
    start: int | None
    end: int | None
    stems: frozenset[str]
    lowered: str

    @classmethod
    def of(cls, n: int, text: str, start: int | None = None, end: int | None = None) -> _Text:
        return cls(n, start, end, frozenset(stems(text)), keywords.index_text(text).lower())

    def holds(self, words: Sequence[str], facts_: set[str]) -> tuple[float, bool]:
        """The share of ``words`` (stems) found here, and whether every fact is."""
        share = sum(w in self.stems for w in words) / len(words)
        return share, all(re.search(rf"(?<!\w){re.escape(f)}(?!\w)", self.lowered)
                          for f in facts_)


def check(answer: str, sources: Mapping[int, str]) -> list[SentenceSupport]:
    """Each sentence of ``answer`` (citation marks out) with the source sentence that best
    supports it: the one holding the largest share of its words, then the one holding its
    facts. A sentence no single source sentence supports may still rest on one whole source
    (an answer that joins two of its sentences). Sentences without words are left out."""
    parts = [_Text.of(n, flat(text[s:e]), s, e)
             for n, text in sources.items() for s, e in sentence_spans(text)]
    wholes = [_Text.of(n, text) for n, text in sources.items()]
    out = []
    for sentence in sentences(strip_citations(answer)):
        words = stems(sentence)
        if not words:
            continue
        need = facts(sentence)
        share, has_facts, where = 0.0, False, None
        for part in parts:
            found = part.holds(words, need)
            if found[0] > 0 and found > (share, has_facts):
                (share, has_facts), where = found, part
        if not (share >= MIN_SHARE and has_facts):
            for whole in wholes:
                found = whole.holds(words, need)
                if found[0] >= MIN_SHARE and found[1] and found[0] > share:
                    (share, has_facts), where = found, whole
        out.append(SentenceSupport(sentence, share >= MIN_SHARE and has_facts, share,
                                   where.n if where else None,
                                   where.start if where else None,
                                   where.end if where else None))
    return out

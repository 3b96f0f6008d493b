"""Quoted answers: the model may only write a verbatim span of one source, then ``[n]``.

A small model asked to answer "from the sources" still paraphrases, translates or invents;
constrained decoding leaves it one choice, *which* words of the sources to quote, and the
citation names the source the quote was taken from. At each step the allowed tokens are those
whose bytes continue the answer so far as a substring of a source (byte-level, so it holds for
any tokenizer and any script); once the quote ends at a word edge the model may open ``[``,
then only the numbers of the sources holding that exact quote, ``]`` and the end token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from desktop.core.model.vocabulary import TokenTable
from desktop.core.storage.keywords import UNSPACED

_UNSPACED_CHAR = re.compile(f"[{UNSPACED}]")

#: When answers are quoted: "auto" (questions in a script the model hardly knows, below),
#: "always", or "never" (the model's own words).
QUOTE_MODES = ("auto", "always", "never")

#: A model's tokenizer spends this many tokens per character on a script it was hardly
#: trained on, and such a model cannot write an answer in it: it can only copy one. Measured
#: with SmolLM2's tokenizer on ../shared/eval's questions: English 0.14-0.50 (SQuAD, COVID-QA),
#: German 0.22-0.52, Russian 0.67-0.88, Arabic 0.85-1.13, Thai 0.97-1.93, Hindi 1.00-1.19,
#: Chinese 1.29-2.20. Quoting lifted XQuAD's hybrid F1 in Russian (0.06 -> 0.18), Chinese
#: (0.02 -> 0.27) and Thai (0.22 -> 0.27) and cost English COVID-QA 0.19 -> 0.15 (README).
UNFAMILIAR_TOKENS_PER_CHAR = 0.6


def unfamiliar(text: str, tokens: int) -> bool:
    """Whether ``text``, which the model's tokenizer spells in ``tokens`` tokens, is in a
    script the model hardly knows (see UNFAMILIAR_TOKENS_PER_CHAR)."""
    chars = len(text.strip())
    return chars > 0 and tokens / chars > UNFAMILIAR_TOKENS_PER_CHAR


def _char_at(text: bytes, at: int) -> str:
    """The character whose UTF-8 starts at byte ``at`` ("" at the end or mid-character)."""
    if at >= len(text) or 0x80 <= text[at] < 0xC0:
        return ""
    return text[at:at + 4].decode("utf-8", "ignore")[:1]


def _char_before(text: bytes, at: int) -> str:
    start = at - 1
    while start > 0 and 0x80 <= text[start] < 0xC0:
        start -= 1
    return text[start:at].decode("utf-8", "ignore") if at > 0 else ""


def _may_open(char: str) -> bool:
    """Whether a quote may begin with ``char``: a letter, digit, space or opening mark."""
    return char.isalnum() or char.isspace() or char in "([{\"'“‘«¿¡#$€£-"


def _inside_word(before: str, after: str) -> bool:
    """Whether a cut between ``before`` and ``after`` splits a word of a spaced script."""
    return (before.isalnum() and after.isalnum()
            and not (_UNSPACED_CHAR.match(before) or _UNSPACED_CHAR.match(after)))


#: Tokens a citation takes: `` [``, the number (up to two digits), ``]``, the end.
CITATION_TOKENS = 5


class Quote:
    """The decoding constraint for one answer over numbered sources. With ``max_tokens`` (the
    answer's token budget) a quote that would leave no room for its citation ends at the
    first word edge after that point."""

    def __init__(self, sources: Mapping[int, str], table: TokenTable,
                 max_tokens: int | None = None) -> None:
        self.table = table
        self.max_tokens = max_tokens
        self.sources = {n: text.encode("utf-8") for n, text in sources.items()}
        # Where a quote may begin: on a letter, digit or opening mark, or on the space before
        # a word (the model then writes the word with its leading space); never inside a word.
        # (Letting a quote capitalize its first letter, as a sentence would, cost SQuAD
        # hybrid F1 0.227 -> 0.185.)
        self._starts = {n: [i for i in range(len(text)) if self._is_edge(text, i)
                            and _may_open(_char_at(text, i))]
                        for n, text in self.sources.items()}

    @staticmethod
    def _is_edge(text: bytes, at: int) -> bool:
        """A character boundary that does not split a word."""
        if at < len(text) and 0x80 <= text[at] < 0xC0:
            return False
        return not _inside_word(_char_before(text, at), _char_at(text, at))

    def _ends(self, quote: bytes) -> dict[int, list[int]]:
        """Per source, the byte offsets where ``quote`` (found from a start) ends."""
        out: dict[int, list[int]] = {}
        for n, text in self.sources.items():
            if found := [at + len(quote) for at in self._starts[n]
                         if text.startswith(quote, at)]:
                out[n] = found
        return out

    def allowed(self, generated: Sequence[int]) -> list[int]:
        """The tokens that may come after ``generated`` (the answer's tokens so far)."""
        table = self.table
        if table.open_cite in generated:
            cut = list(generated).index(table.open_cite)
            return self._citation(generated[:cut], b"".join(
                table.pieces[t] for t in generated[cut + 1:]))
        quote = b"".join(table.pieces[t] for t in generated)
        ends = self._ends(quote) if quote else self._starts
        citable = self._citable(quote, ends)
        if citable and self.max_tokens and len(generated) + CITATION_TOKENS >= self.max_tokens:
            return [table.open_cite]
        allowed = {t for n, offsets in ends.items() for at in offsets
                   for t in table.spelling(self.sources[n], at)}
        if citable:
            allowed.add(table.open_cite)
        return sorted(allowed) or list(table.ends)

    def _citable(self, quote: bytes, ends: Mapping[int, list[int]]) -> list[int]:
        """The sources where ``quote`` is a whole quote: words not cut, text not blank."""
        if not quote.strip():
            return []
        return [n for n, offsets in ends.items()
                if any(self._is_edge(self.sources[n], at) for at in offsets)]

    def _citation(self, quote_tokens: Sequence[int], cite: bytes) -> list[int]:
        """After ``[``: the digits of a source holding the quote, then ``]``, then the end."""
        quote = b"".join(self.table.pieces[t] for t in quote_tokens)
        marks = [f"{n}]".encode() for n in self._citable(quote, self._ends(quote))]
        if cite in marks:
            return list(self.table.ends)
        allowed = {t for mark in marks if mark.startswith(cite)
                   for t in self.table.spelling(mark, len(cite))}
        return sorted(allowed) or list(self.table.ends)

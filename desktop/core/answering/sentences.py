"""Sentences of a passage, with where each one lies in the passage's text.

A sentence ends at a sentence terminal before a space or a line break (Unicode's
Sentence_Terminal: . ! ? and every script's own, as the Devanagari danda । and the Arabic ؟),
after a full-width one (。！？) anywhere, and at a blank line; not where the next word is
lower-case or the full stop follows an initial or a title (``keywords.sentence_goes_on``: "John
C. Messenger", "Mr. Smith", "ca. drei" stay whole). A line break ends a sentence too,
except in hard-wrapped prose: a line continues the one before it when that one stopped
mid-sentence and either was long or is followed by a lower-case word (headings and list items
always stand alone). Thai marks no sentence end: a Thai passage without line breaks stays one
unit (its spaces part clauses and phrases, too short to stand as evidence).
"""

from __future__ import annotations

import re

from desktop.core.storage.keywords import SENTENCE_TERMINALS, sentence_goes_on

# (?=\s) first: the long class is then tried only where white space follows.
_SENTENCE_END = re.compile(f"(?=\\s)(?<=[{SENTENCE_TERMINALS}])\\s+|(?<=[。！？])|\\n\\s*\\n")
_ENDS_LINE = re.compile(f"[{SENTENCE_TERMINALS}:;]$")  # a line that ended its sentence
_NEW_LINE_ITEM = re.compile(r"#|[-*+•] |\d+[.)] ")  # a heading or a list item
_WRAP_WIDTH = 60  # a line at least this long that ends mid-sentence was wrapped
_LINE = re.compile(r"[^\n]+")


def _continues(previous: str, line: str) -> bool:
    """Whether ``line`` carries on the hard-wrapped sentence that ``previous`` left open."""
    if _ENDS_LINE.search(previous) or _NEW_LINE_ITEM.match(line) or previous[0] == "#":
        return False
    return line[0].islower() or len(previous) >= _WRAP_WIDTH


def _blocks(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the text between sentence ends."""
    out, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        if sentence_goes_on(text, end.start(), end.end()):
            continue
        out.append((start, end.start()))
        start = end.end()
    out.append((start, len(text)))
    return out


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) character offsets in ``text`` of its non-empty sentences, in order;
    a span has no surrounding white space and may hold a wrapped line's break."""
    spans: list[tuple[int, int]] = []
    for block_start, block_end in _blocks(text):
        lines: list[list[int]] = []  # [start, end] of each sentence so far
        for m in _LINE.finditer(text, block_start, block_end):
            line = m.group()
            stripped = line.strip()
            if not stripped:
                continue
            start = m.start() + len(line) - len(line.lstrip())
            end = start + len(stripped)
            if lines and _continues(flat(text[lines[-1][0]:lines[-1][1]]), stripped):
                lines[-1][1] = end
            else:
                lines.append([start, end])
        spans.extend((start, end) for start, end in lines)
    return spans


def flat(text: str) -> str:
    """A sentence's text on one line (a wrapped line's break becomes a space)."""
    return " ".join(part.strip() for part in text.split("\n"))


def sentences(text: str) -> list[str]:
    """The non-empty sentences of ``text``, in order, each on one line."""
    return [flat(text[start:end]) for start, end in sentence_spans(text)]

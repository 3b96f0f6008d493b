"""Token-aware chunking with the embedder's own tokenizer.

A chunk never exceeds the embedder's maximum sequence length (anything longer would be
silently truncated by the model and lost to search). Chunks break on paragraph, then
sentence, then token boundaries, carry a small overlap, and keep page, heading and the
character span they cover in the document's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from desktop.core.extract import Section

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|(?<=[。！？；])")


class Tokenizer(Protocol):
    """The piece of a Hugging Face ``tokenizers.Tokenizer`` the chunker needs."""

    def encode_batch(self, inputs: list[str], add_special_tokens: bool = ...) -> list: ...


@dataclass(frozen=True)
class Chunk:
    """A span of a document small enough to embed whole."""

    text: str
    page: int | None
    heading: str | None
    start: int  # character offsets in the document's full text (see Section.offset)
    end: int
    n_tokens: int


def _split(text: str, pattern: re.Pattern[str], start: int, end: int) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` at ``pattern``; return non-blank (start, end) spans."""
    spans, pos = [], start
    for m in pattern.finditer(text, start, end):
        if m.start() > pos:
            spans.append((pos, m.start()))
        pos = m.end()
    if pos < end:
        spans.append((pos, end))
    return [(a, b) for a, b in spans if text[a:b].strip()]


class Chunker:
    """Split sections into chunks of at most ``target`` tokens (hard cap ``max_tokens``)."""

    def __init__(
        self, tokenizer: Tokenizer, max_tokens: int, target: int = 200, overlap: int = 32
    ) -> None:
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.target = max(8, min(target, max_tokens))
        self.overlap = max(0, min(overlap, self.target // 2))

    def count(self, texts: list[str]) -> list[int]:
        """Token counts without special tokens."""
        if not texts:
            return []
        return [len(e.ids) for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def chunk(self, sections: Iterable[Section]) -> list[Chunk]:
        """Chunk every section; a chunk never spans two sections."""
        out: list[Chunk] = []
        for section in sections:
            if section.text.strip():
                out.extend(self._chunk_section(section))
        return out

    def _units(self, text: str) -> list[tuple[int, int, int]]:
        """(start, end, tokens) units of at most ``target`` tokens, in order."""
        units: list[tuple[int, int, int]] = []
        paragraphs = _split(text, _PARAGRAPH, 0, len(text))
        counts = self.count([text[a:b] for a, b in paragraphs])
        for (a, b), n in zip(paragraphs, counts, strict=True):
            if n <= self.target:
                units.append((a, b, n))
                continue
            sentences = _split(text, _SENTENCE_END, a, b)
            for (sa, sb), sn in zip(sentences, self.count([text[x:y] for x, y in sentences]),
                                    strict=True):
                if sn <= self.target:
                    units.append((sa, sb, sn))
                else:
                    units.extend(self._hard_split(text, sa, sb))
        return units

    def _hard_split(
        self, text: str, start: int, end: int, window_tokens: int | None = None
    ) -> list[tuple[int, int, int]]:
        """Cut a span with no usable boundary into pieces of ``target`` tokens."""
        step = window_tokens or self.target
        enc = self.tokenizer.encode_batch([text[start:end]], add_special_tokens=False)[0]
        offsets = enc.offsets
        pieces = []
        for i in range(0, len(offsets), step):
            window = offsets[i : i + step]
            a, b = start + window[0][0], start + window[-1][1]
            pieces.append((a, b, len(window)))
        # Make pieces contiguous so no character is lost between them.
        fixed = []
        for j, (a, b, n) in enumerate(pieces):
            b = pieces[j + 1][0] if j + 1 < len(pieces) else max(b, end)
            fixed.append((a if j else start, b, n))
        return fixed

    def _chunk_section(self, section: Section) -> list[Chunk]:
        text = section.text
        units = self._units(text)
        groups: list[list[tuple[int, int, int]]] = []
        current: list[tuple[int, int, int]] = []
        size = 0
        for unit in units:
            if current and size + unit[2] > self.target:
                groups.append(current)
                # Carry the trailing units that fit in the overlap into the next chunk.
                carry: list[tuple[int, int, int]] = []
                carried = 0
                for prev in reversed(current):
                    if carried + prev[2] > self.overlap or carried + prev[2] + unit[2] > self.target:
                        break
                    carry.insert(0, prev)
                    carried += prev[2]
                current, size = carry, carried
            current.append(unit)
            size += unit[2]
        if current:
            groups.append(current)
        spans = [(g[0][0], g[-1][1]) for g in groups]
        return self._finish(section, spans)

    def _finish(self, section: Section, spans: Sequence[tuple[int, int]]) -> list[Chunk]:
        """Count each chunk's tokens for real; re-split any that exceed the hard cap."""
        text = section.text
        todo = [(a, b, None) for a, b in spans]
        checked: list[tuple[int, int, int]] = []
        window = self.target
        while todo:
            counts = self.count([text[a:b] for a, b, _ in todo])
            over = []
            for (a, b, _), n in zip(todo, counts, strict=True):
                if n <= self.max_tokens:
                    checked.append((a, b, n))
                else:
                    over.append((a, b))
            # A piece cut mid-word can re-tokenize longer: cut again with a smaller window.
            todo = [p for a, b in over for p in self._hard_split(text, a, b, window)]
            window = max(1, window // 2)
        return [
            Chunk(
                text=text[a:b],
                page=section.page,
                heading=section.heading,
                start=section.offset + a,
                end=section.offset + b,
                n_tokens=n,
            )
            for a, b, n in sorted(checked)
        ]

"""Token-aware chunking with the embedder's own tokenizer.

A chunk never exceeds the embedder's maximum sequence length (anything longer would be
silently truncated by the model and lost to search). Chunks break on paragraph, then
sentence, then token boundaries, carry a small overlap, and keep page, heading and the
character span they cover in the document's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from desktop.core.indexing.extract import Section
from desktop.core.storage.keywords import SENTENCE_TERMINALS, sentence_goes_on

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
# Unicode's Sentence_Terminal (. ! ? and every script's own: ।, ؟, ။...), ; and : (not where
# keywords.sentence_goes_on says the sentence carries on: "John C. Messenger", "ca. drei")
_SENTENCE_END = re.compile(f"(?=\\s)(?<=[{SENTENCE_TERMINALS};:])\\s+|(?<=[。！？；])")


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
    page_end: int | None = None  # the last page the chunk covers (small pages are merged)
    ocr: float | None = None  # the OCR confidence when the text was read from an image


def _split(text: str, pattern: re.Pattern[str], start: int, end: int,
           goes_on: Callable[[str, int, int], bool] | None = None) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` at ``pattern`` (except where ``goes_on`` says the text carries
    on); return non-blank (start, end) spans."""
    spans, pos = [], start
    for m in pattern.finditer(text, start, end):
        if goes_on is not None and goes_on(text, m.start(), m.end()):
            continue
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
        """Chunk every section. Runs of small adjacent sections under one heading (short PDF
        pages, say) are chunked together, so a chunk may span pages; otherwise a chunk never
        crosses a section boundary."""
        out: list[Chunk] = []
        for run in self._runs([s for s in sections if s.text.strip()]):
            out.extend(self._chunk_section(*run))
        return out

    def _runs(self, sections: list[Section]) -> list[tuple[Section, list[tuple[int, int]]]]:
        """Merge adjacent small pages (same heading, contiguous text, both read by OCR or
        neither) while they fit a chunk.

        Returns (section, page map) pairs; the page map lists (local offset, page) starts.
        """
        runs: list[tuple[Section, list[tuple[int, int]], int]] = []
        paged = [s.text for s in sections if s.page is not None]  # only pages are merged
        sizes = iter(self.count(paged))
        for section in sections:
            n = next(sizes) if section.page is not None else self.target
            if runs and section.page is not None:
                prev, pages, size = runs[-1]
                gap = section.offset - (prev.offset + len(prev.text))
                if (prev.page is not None and prev.heading == section.heading
                        and (prev.ocr is None) == (section.ocr is None)
                        and 0 <= gap <= 4 and size + n <= self.target):
                    ocr = None if section.ocr is None else min(prev.ocr or 1.0, section.ocr)
                    merged = Section(prev.text + "\n" * gap + section.text, prev.page,
                                     prev.heading, prev.offset, ocr)
                    pages.append((section.offset - prev.offset, section.page))
                    runs[-1] = (merged, pages, size + n)
                    continue
            runs.append((section, [(0, section.page)] if section.page is not None else [], n))
        return [(section, pages) for section, pages, _ in runs]

    def _units(self, text: str) -> list[tuple[int, int, int, int]]:
        """Sentence units ``(start, end, tokens, paragraph_tokens)`` of at most ``target`` tokens.

        ``paragraph_tokens`` is the size of the paragraph a unit opens (0 inside a paragraph).
        """
        paragraphs = _split(text, _PARAGRAPH, 0, len(text))
        sentences = [_split(text, _SENTENCE_END, a, b, sentence_goes_on) for a, b in paragraphs]
        flat = [span for group in sentences for span in group]
        counts = iter(self.count([text[a:b] for a, b in flat]))
        units: list[tuple[int, int, int, int]] = []
        for group in sentences:
            pieces: list[tuple[int, int, int]] = []
            for a, b in group:
                n = next(counts)
                pieces.extend([(a, b, n)] if n <= self.target else self._hard_split(text, a, b))
            total = sum(p[2] for p in pieces)
            units.extend((a, b, n, total if i == 0 else 0) for i, (a, b, n) in enumerate(pieces))
        return units

    def _hard_split(
        self, text: str, start: int, end: int, window_tokens: int | None = None
    ) -> list[tuple[int, int, int]]:
        """Cut a span with no usable boundary into pieces of at most ``target`` tokens, each
        cut before a token that starts a word (one after white space) when the window's second
        half has one, so that no word is split between two chunks."""
        step = window_tokens or self.target
        span = text[start:end]
        offsets = self.tokenizer.encode_batch([span], add_special_tokens=False)[0].offsets
        pieces, i = [], 0
        while i < len(offsets):
            j = min(i + step, len(offsets))
            if j < len(offsets):
                j = next((t for t in range(j, i + step // 2, -1)
                          if offsets[t][0] > 0 and span[offsets[t][0] - 1].isspace()), j)
            pieces.append((start + offsets[i][0], start + offsets[j - 1][1], j - i))
            i = j
        # Make pieces contiguous so no character is lost between them.
        fixed = []
        for k, (a, b, n) in enumerate(pieces):
            b = pieces[k + 1][0] if k + 1 < len(pieces) else max(b, end)
            fixed.append((a if k else start, b, n))
        return fixed

    def _chunk_section(self, section: Section, pages: list[tuple[int, int]]) -> list[Chunk]:
        text = section.text
        units = self._units(text)
        groups: list[list[tuple[int, int, int, int]]] = []
        current: list[tuple[int, int, int, int]] = []
        size = 0
        for unit in units:
            n, paragraph = unit[2], unit[3]
            full = size + n > self.target
            # Prefer to end a half-full chunk at a paragraph that would not fit whole.
            at_paragraph = paragraph and size + paragraph > self.target and size >= self.target // 2
            if current and (full or at_paragraph):
                groups.append(current)
                # Carry the trailing sentences that fit in the overlap into the next chunk.
                carry: list[tuple[int, int, int, int]] = []
                carried = 0
                for prev in reversed(current):
                    if carried + prev[2] > self.overlap or carried + prev[2] + n > self.target:
                        break
                    carry.insert(0, prev)
                    carried += prev[2]
                current, size = carry, carried
            current.append(unit)
            size += n
        if current:
            groups.append(current)
        spans = [(g[0][0], g[-1][1]) for g in groups]
        return self._finish(section, spans, pages)

    def _finish(
        self, section: Section, spans: Sequence[tuple[int, int]], pages: list[tuple[int, int]]
    ) -> list[Chunk]:
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
        def page_at(pos: int) -> int | None:
            page = section.page
            for start, p in pages:
                if start > pos:
                    break
                page = p
            return page

        return [
            Chunk(
                text=text[a:b],
                page=page_at(a),
                heading=section.heading,
                start=section.offset + a,
                end=section.offset + b,
                n_tokens=n,
                page_end=page_at(b - 1),
                ocr=section.ocr,
            )
            for a, b, n in sorted(checked)
        ]

"""HTML for the chat transcript, the compare columns and a passage in context (pure functions).

Citations become links ``cite:TURN:N`` and evidence sentences links ``evidence:TURN:I``; the
window resolves them against the turn's own sources and evidence (citations are data: nothing
is searched again). An answer leads with its evidence; each of its sentences that its sources
do not support is marked. A source whose text OCR read from an image carries a small mark with
OCR's confidence, so that a person knows to check the original for misread words.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from desktop.core.answering.conversations import CheckRecord, EvidenceRecord, SourceRecord, Turn
from desktop.core.answering.evidence import answer_span
from desktop.core.answering.sentences import sentences
from desktop.gui.theme import Colors

_MARK = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_TRAILING_MARKS = re.compile(r"(?:[ \t]*\[\d+(?:\s*[,;]\s*\d+)*\])+")

EMPTY_HINT = (
    "<br><br><br><p align='center' style='font-size:15pt; color:{text}'>Ask your files</p>"
    "<p align='center' style='color:{muted}'>Drop a folder on this window to index it,<br>"
    "then ask a question about it.</p>"
    "<p align='center' style='color:{muted}'>Answers list the passages they were given: "
    "click one to check it.</p>"
)


def linked_answer(text: str, turn: int, n_sources: int, colors: Colors) -> str:
    """The answer as HTML, each valid ``[n]`` a link to its source."""

    def repl(m: re.Match[str]) -> str:
        parts = []
        for part in re.split(r"\s*[,;]\s*", m.group(1)):
            n = int(part)
            if 1 <= n <= n_sources:
                parts.append(f"<a href='cite:{turn}:{n}' style='color:{colors.link}; "
                             f"text-decoration:none'><b>{n}</b></a>")
            else:
                parts.append(part)
        return "[" + ", ".join(parts) + "]"

    return _MARK.sub(repl, html.escape(text)).replace("\n", "<br>")


def format_ms(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def measures(turn: Turn) -> str:
    """One line of measures: retrieval, first token, tokens/s, tokens."""
    t = turn.timings
    bits = []
    if "retrieve_ms" in t:
        bits.append(f"retrieval {format_ms(t['retrieve_ms'])}")
    if t.get("first_token_ms"):
        bits.append(f"first token {format_ms(t['first_token_ms'])}")
    if t.get("tokens_per_s"):
        bits.append(f"{t['tokens_per_s']:.0f} tokens/s")
    if turn.tokens:
        bits.append(f"{turn.tokens} tokens")
    if "total_ms" in t:
        bits.append(f"total {format_ms(t['total_ms'])}")
    return " · ".join(bits)


def ocr_note(confidence: float) -> str:
    """What a source read by OCR is, in words (the OCR mark's tooltip)."""
    return (f"Read from an image by OCR (mean word confidence {confidence:.0%}): "
            "check the original for misread words")


def ocr_mark(confidence: float | None, colors: Colors) -> str:
    """A small "OCR 88%" chip, with :func:`ocr_note` as its tooltip, for a source whose text
    OCR read; "" for text-layer text (``confidence`` None)."""
    if confidence is None:
        return ""
    note = html.escape(ocr_note(confidence), quote=True)
    return (f"&nbsp;<span title='{note}' style='color:{colors.text}; "
            f"background-color:{colors.question}; font-size:small'>"
            f"&nbsp;OCR&nbsp;{confidence:.0%}&nbsp;</span>")


def ocr_by_source(sources: Sequence[SourceRecord]) -> dict[int, float]:
    """Source number → OCR confidence, for the sources whose text OCR read."""
    return {s.n: s.ocr for s in sources if s.ocr is not None}


def unbroken(label: str) -> str:
    """``label`` (a file name with its page) as HTML that never wraps inside: no-break spaces
    and hyphens, so that "report-2024.pdf" is not cut at a line's end, where in a right-to-left
    paragraph its two halves would land at opposite ends of two lines. (Qt's rich text ignores
    ``white-space: nowrap`` on a span.)"""
    return html.escape(label).replace(" ", "&nbsp;").replace("-", "\u2011")


def plain_copy(text: str) -> str:
    """``text`` copied from the transcript, with :func:`unbroken`'s no-break spaces and
    hyphens back to ordinary ones (a copied file name must match the file's)."""
    return text.replace("\u2011", "-").replace("\xa0", " ")


def source_links(turn: Turn, index: int, colors: Colors) -> str:
    """The sources of a turn as links; the ones the answer cites in bold; those read by OCR
    marked."""
    links = []
    for s in turn.sources:
        label = unbroken(s.label())
        weight = "bold" if s.n in turn.cited else "normal"
        color = colors.link if s.n in turn.cited else colors.muted
        links.append(f"<a href='cite:{index}:{s.n}' style='color:{color}; font-weight:{weight}; "
                     f"text-decoration:none'>[{s.n}]&nbsp;{label}</a>{ocr_mark(s.ocr, colors)}")
    return " &nbsp; ".join(links)


def question_html(question: str, colors: Colors) -> str:
    return (f"<table width='100%' cellpadding='8' style='margin-top:14px' "
            f"bgcolor='{colors.question}'><tr><td>{html.escape(question)}</td></tr></table>")


def _small(colors: Colors, top: int = 2) -> str:
    return f"style='color:{colors.muted}; font-size:small; margin-top:{top}px; margin-bottom:0px'"


def evidence_html(evidence: Sequence[EvidenceRecord], turn: int, colors: Colors,
                  title: str = "Evidence",
                  bold: Mapping[int, tuple[int, int]] | None = None,
                  ocr: Mapping[int, float] | None = None) -> str:
    """The evidence block: each sentence highlighted, then its source, both linking to it
    (``evidence:TURN:I``); ``bold`` marks the answer's words within evidence sentence I;
    ``ocr`` (source number → confidence: :func:`ocr_by_source`) marks sources OCR read."""
    ocr = ocr or {}
    rows = [f"<p {_small(colors, 10)}>{html.escape(title)}</p>"]
    for i, e in enumerate(evidence):
        href = f"evidence:{turn}:{i}"
        sentence = html.escape(e.sentence)
        if bold and (span := bold.get(i)):
            start, end = span
            sentence = (f"{html.escape(e.sentence[:start])}<b>"
                        f"{html.escape(e.sentence[start:end])}</b>"
                        f"{html.escape(e.sentence[end:])}")
        rows.append(
            f"<p style='margin-top:4px; margin-bottom:0px'>"
            f"<a href='{href}' style='color:{colors.text}; text-decoration:none'>"
            f"<span style='background-color:{colors.mark}'>{sentence}</span></a>&nbsp; "
            f"<a href='{href}' style='color:{colors.link}; text-decoration:none; "
            f"font-size:small'>[{e.n}]&nbsp;{unbroken(e.label())}</a>"
            f"{ocr_mark(ocr.get(e.n), colors)}</p>")
    return "".join(rows)


def evidence_bold(turn: Turn) -> dict[int, tuple[int, int]]:
    """For each evidence sentence an answer sentence rests on: where the answer's words stand
    in it (:func:`answer_span`)."""
    resting: dict[int, list[str]] = {}
    for check in turn.checks:
        if check.supported and check.evidence is not None:
            resting.setdefault(check.evidence, []).append(check.text)
    out = {}
    for i, texts in resting.items():
        if 0 <= i < len(turn.evidence) and (
                span := answer_span(turn.evidence[i].sentence, " ".join(texts))):
            out[i] = span
    return out


def answer_sentences(answer: str, texts: Sequence[str]) -> list[tuple[int, int] | None]:
    """Where in ``answer`` each of ``texts`` (its checked sentences, citation marks out, in
    order) stands, compared without white space and citation marks (a mark inside a sentence
    is no obstacle; the marks right after it belong to it); None for one not found after the
    one before it."""
    masked = _MARK.sub(lambda m: " " * len(m.group()), answer)
    index = [i for i, ch in enumerate(masked) if not ch.isspace()]
    skeleton = "".join(masked[i] for i in index)
    out: list[tuple[int, int] | None] = []
    at = 0
    for text in texts:
        needle = "".join(text.split())
        pos = skeleton.find(needle, at) if needle else -1
        if pos < 0:
            out.append(None)
            continue
        end = index[pos + len(needle) - 1] + 1
        if marks := _TRAILING_MARKS.match(answer, end):
            end = marks.end()
        out.append((index[pos], end))
        at = pos + len(needle)
    return out


def _checked_sentence(body: str, check: CheckRecord, turn: int, colors: Colors) -> str:
    """One answer sentence (as HTML): underlined and marked when its sources do not support
    it; followed by a small link to the evidence it rests on when it rests on one."""
    if not check.supported:
        return (f"<span style='text-decoration:underline; text-decoration-color:{colors.error}'>"
                f"{body}</span><span style='color:{colors.error}; font-size:small'>"
                f"&nbsp;(not in your files)</span>")
    if check.evidence is None:
        return body
    return (f"{body}<a href='evidence:{turn}:{check.evidence}' style='color:{colors.link}; "
            f"text-decoration:none; font-size:small'>&nbsp;✓</a>")


def checked_answer(turn: Turn, index: int, colors: Colors) -> str:
    """The answer as HTML with its citation links and each sentence's check."""
    n = len(turn.sources)
    if turn.refused or not turn.checks:
        return linked_answer(turn.answer, index, n, colors)
    spans = answer_sentences(turn.answer, [c.text for c in turn.checks])
    out, at = [], 0
    for check, span in zip(turn.checks, spans, strict=True):
        if span is None:
            continue
        start, end = span
        out.append(linked_answer(turn.answer[at:start], index, n, colors))
        body = linked_answer(turn.answer[start:end], index, n, colors)
        out.append(_checked_sentence(body, check, index, colors))
        at = end
    out.append(linked_answer(turn.answer[at:], index, n, colors))
    return "".join(out)


def turn_html(turn: Turn, index: int, colors: Colors) -> str:
    """One question and its answer (its evidence first), with its sources and measures."""
    parts = [question_html(turn.question, colors)]
    if turn.evidence:
        title = "Closest evidence in your files" if turn.refused else "Evidence"
        parts.append(evidence_html(turn.evidence, index, colors, title, evidence_bold(turn),
                                   ocr_by_source(turn.sources)))
        parts.append(f"<p {_small(colors, 10)}>Answer</p>")
    answer = checked_answer(turn, index, colors)
    if turn.refused:
        answer = f"<i>{answer}</i>"
    if turn.cancelled:
        answer += f" <span style='color:{colors.muted}'>(stopped)</span>"
    parts.append(f"<p style='margin-top:{4 if turn.evidence else 8}px'>{answer}</p>")
    small = f"style='color:{colors.muted}; font-size:small; margin-top:2px'"
    if turn.sources:
        parts.append(f"<p {small}>Sources: {source_links(turn, index, colors)}</p>")
    if line := measures(turn):
        parts.append(f"<p {small}>{html.escape(line)}</p>")
    return "".join(parts)


def transcript_html(turns: Sequence[Turn], colors: Colors, pending: str | None = None,
                    pending_evidence: Sequence[EvidenceRecord] = (),
                    pending_sources: Sequence[SourceRecord] = ()) -> str:
    """The whole conversation; ``pending`` is a question whose answer is streaming in (after
    its evidence, once found: links ``evidence:len(turns):I``; ``pending_sources``: the
    sources that evidence comes from)."""
    if not turns and pending is None:
        return EMPTY_HINT.format(muted=colors.muted, text=colors.text)
    body = "".join(turn_html(t, i, colors) for i, t in enumerate(turns))
    if pending is not None:
        body += question_html(pending, colors)
        if pending_evidence:
            body += evidence_html(pending_evidence, len(turns), colors,
                                  ocr=ocr_by_source(pending_sources))
            body += f"<p {_small(colors, 10)}>Answer</p><p style='margin-top:4px'></p>"
        else:
            body += "<p style='margin-top:8px'></p>"
    return f"<div style='color:{colors.text}'>{body}</div>"


def read_spans(text: str, excerpt: str) -> list[tuple[int, int]]:
    """Where in ``text`` the sentences of ``excerpt`` (what the model read) are, in order and
    not overlapping; a sentence joined across a line break still matches its wrapped lines."""
    spans: list[tuple[int, int]] = []
    for sentence in sentences(excerpt):
        found = re.search(r"\s+".join(map(re.escape, sentence.split())), text)
        if found:
            spans.append(found.span())
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if not out or start >= out[-1][1]:
            out.append((start, end))
    return out


def _esc(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def _marked_passage(text: str, bold: Sequence[tuple[int, int]],
                    sentence: tuple[int, int] | None, colors: Colors) -> str:
    """``text`` as HTML: the ``bold`` spans in bold, the ``sentence`` span on the strong
    highlight, with the anchor ``evidence`` where it starts."""
    if sentence is not None:
        start, end = max(0, sentence[0]), min(len(text), sentence[1])
        sentence = (start, end) if start < end else None
    cuts = {0, len(text), *(x for span in bold for x in span)}
    if sentence is not None:
        cuts.update(sentence)
    points = sorted(cuts)
    out = []
    for a, b in zip(points, points[1:], strict=False):
        piece = _esc(text[a:b])
        if any(s <= a and b <= e for s, e in bold):
            piece = f"<b>{piece}</b>"
        if sentence is not None and sentence[0] <= a and b <= sentence[1]:
            anchor = "<a name='evidence'></a>" if a == sentence[0] else ""
            piece = f"{anchor}<span style='background-color:{colors.strong_mark}'>{piece}</span>"
        out.append(piece)
    return "".join(out)


def passage_html(source: SourceRecord, before: str, after: str, colors: Colors,
                 indexed: bool = True, sentence: tuple[int, int] | None = None) -> str:
    """The cited passage, highlighted, between the text before and after it; ``sentence``
    (offsets in the source's text) is an evidence sentence to highlight more strongly. A
    passage OCR read ends with :func:`ocr_note`."""
    esc = _esc
    parts = []
    if source.heading and not (before or source.text).lstrip().startswith(source.heading):
        parts.append(f"<p style='color:{colors.muted}'>{html.escape(source.heading)}</p>")
    if before:
        parts.append(f"<p style='color:{colors.muted}'>{esc(before)}</p>")
    passage = _marked_passage(source.text, read_spans(source.text, source.excerpt or ""),
                              sentence, colors)
    parts.append(f"<p><a name='passage'></a><span style='background-color:{colors.mark}'>"
                 f"{passage}</span></p>")
    if after:
        parts.append(f"<p style='color:{colors.muted}'>{esc(after)}</p>")
    if source.ocr is not None:
        parts.append(f"<p style='color:{colors.muted}; font-size:small'><i>"
                     f"{html.escape(ocr_note(source.ocr))}.</i></p>")
    if not indexed:
        parts.append(f"<p style='color:{colors.muted}; font-size:small'><i>This file changed "
                     "or left the index since the answer: this is the passage as it was "
                     "then.</i></p>")
    return "".join(parts)


def source_title(source: SourceRecord) -> str:
    """Plain text title of a source: its label and folder."""
    return f"[{source.n}] {source.label()} — {Path(source.path).parent}"

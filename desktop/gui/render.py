"""HTML for the chat transcript, the compare columns and a passage in context (pure functions).

Citations become links ``cite:TURN:N``; the window resolves them against the turn's own
sources (citations are data: nothing is searched again).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

from desktop.core.answering.conversations import SourceRecord, Turn
from desktop.core.answering.sentences import sentences
from desktop.gui.theme import Colors

_MARK = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")

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


def source_links(turn: Turn, index: int, colors: Colors) -> str:
    """The sources of a turn as links; the ones the answer cites in bold."""
    links = []
    for s in turn.sources:
        label = html.escape(s.label())
        weight = "bold" if s.n in turn.cited else "normal"
        color = colors.link if s.n in turn.cited else colors.muted
        links.append(f"<a href='cite:{index}:{s.n}' style='color:{color}; font-weight:{weight}; "
                     f"text-decoration:none'>[{s.n}]&nbsp;{label}</a>")
    return " &nbsp; ".join(links)


def question_html(question: str, colors: Colors) -> str:
    return (f"<table width='100%' cellpadding='8' style='margin-top:14px' "
            f"bgcolor='{colors.question}'><tr><td>{html.escape(question)}</td></tr></table>")


def turn_html(turn: Turn, index: int, colors: Colors) -> str:
    """One question and its answer, with its sources and measures."""
    parts = [question_html(turn.question, colors)]
    answer = linked_answer(turn.answer, index, len(turn.sources), colors)
    if turn.refused:
        answer = f"<i>{answer}</i>"
    if turn.cancelled:
        answer += f" <span style='color:{colors.muted}'>(stopped)</span>"
    parts.append(f"<p style='margin-top:8px'>{answer}</p>")
    small = f"style='color:{colors.muted}; font-size:small; margin-top:2px'"
    if turn.sources:
        parts.append(f"<p {small}>Sources: {source_links(turn, index, colors)}</p>")
    if line := measures(turn):
        parts.append(f"<p {small}>{html.escape(line)}</p>")
    return "".join(parts)


def transcript_html(turns: Sequence[Turn], colors: Colors, pending: str | None = None) -> str:
    """The whole conversation; ``pending`` is a question whose answer is streaming in."""
    if not turns and pending is None:
        return EMPTY_HINT.format(muted=colors.muted, text=colors.text)
    body = "".join(turn_html(t, i, colors) for i, t in enumerate(turns))
    if pending is not None:
        body += question_html(pending, colors) + "<p style='margin-top:8px'></p>"
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


def passage_html(source: SourceRecord, before: str, after: str, colors: Colors,
                 indexed: bool = True) -> str:
    """The cited passage, highlighted, between the text before and after it."""
    esc = lambda s: html.escape(s).replace("\n", "<br>")  # noqa: E731
    parts = []
    if source.heading and not (before or source.text).lstrip().startswith(source.heading):
        parts.append(f"<p style='color:{colors.muted}'>{html.escape(source.heading)}</p>")
    if before:
        parts.append(f"<p style='color:{colors.muted}'>{esc(before)}</p>")
    passage, at = "", 0
    for start, end in read_spans(source.text, source.excerpt or ""):  # in bold
        passage += f"{esc(source.text[at:start])}<b>{esc(source.text[start:end])}</b>"
        at = end
    passage += esc(source.text[at:])
    parts.append(f"<p><a name='passage'></a><span style='background-color:{colors.mark}'>"
                 f"{passage}</span></p>")
    if after:
        parts.append(f"<p style='color:{colors.muted}'>{esc(after)}</p>")
    if not indexed:
        parts.append(f"<p style='color:{colors.muted}; font-size:small'><i>This file changed "
                     "or left the index since the answer: this is the passage as it was "
                     "then.</i></p>")
    return "".join(parts)


def source_title(source: SourceRecord) -> str:
    """Plain text title of a source: its label and folder."""
    return f"[{source.n}] {source.label()} — {Path(source.path).parent}"

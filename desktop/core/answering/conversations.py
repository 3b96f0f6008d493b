"""Conversations, kept per collection: one JSON file each in the data folder.

A turn keeps the question, the checked answer, the exact sources of its prompt, the evidence
shown first, each answer sentence's check and its measures, so a citation or an evidence
sentence clicked weeks later shows the passage the model was given (citations are data:
nothing is searched again). Files written before evidence and checks existed load with none.
Files are written atomically; an unreadable file is set aside (renamed ``*.broken``) rather
than lost or fatal.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from desktop.core.answering.answer import source_label

log = logging.getLogger(__name__)

#: Turns kept per collection; older ones are dropped first.
MAX_TURNS = 500


@dataclass(frozen=True)
class SourceRecord:
    """A numbered source of an answer, as it was in the prompt."""

    n: int
    path: str
    text: str
    page: int | None = None
    page_end: int | None = None
    heading: str | None = None
    chunk_id: int | None = None
    score: float = 0.0
    excerpt: str | None = None  # the sentences the prompt carried, when not the whole text
    ocr: float | None = None  # the OCR confidence when the text was read from an image

    def label(self) -> str:
        """File name with page (range), slide or sheet, as people see it."""
        return source_label(self.path, self.page, self.page_end, self.heading)


@dataclass(frozen=True)
class EvidenceRecord:
    """An evidence sentence of an answer: ``start``/``end`` are its offsets in the text of
    source ``n``."""

    n: int
    sentence: str
    start: int
    end: int
    score: float = 0.0
    path: str = ""
    page: int | None = None
    heading: str | None = None

    def label(self) -> str:
        """File name with page, slide or sheet, as people see it."""
        return source_label(self.path, self.page, None, self.heading)


@dataclass(frozen=True)
class CheckRecord:
    """One sentence of an answer, checked against its sources: whether it is supported, the
    evidence sentence it rests on (an index into the turn's evidence) and its source."""

    text: str
    supported: bool
    evidence: int | None = None
    source: int | None = None


@dataclass(frozen=True)
class Turn:
    """One question and its answer."""

    question: str
    answer: str
    sources: tuple[SourceRecord, ...] = ()
    cited: tuple[int, ...] = ()
    refused: bool = False
    cancelled: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    at: float = 0.0
    evidence: tuple[EvidenceRecord, ...] = ()
    checks: tuple[CheckRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Turn:
        sources = tuple(SourceRecord(**s) for s in raw.get("sources", ()))
        return cls(
            question=str(raw["question"]), answer=str(raw.get("answer", "")), sources=sources,
            cited=tuple(int(n) for n in raw.get("cited", ())),
            refused=bool(raw.get("refused", False)), cancelled=bool(raw.get("cancelled", False)),
            timings={k: float(v) for k, v in raw.get("timings", {}).items()},
            tokens=int(raw.get("tokens", 0)), at=float(raw.get("at", 0.0)),
            evidence=tuple(EvidenceRecord(**e) for e in raw.get("evidence", ())),
            checks=tuple(CheckRecord(**c) for c in raw.get("checks", ())),
        )


def source_records(sources: Any) -> tuple[SourceRecord, ...]:
    """:class:`SourceRecord` s from an answer's (or a ``Found`` item's) sources."""
    return tuple(
        SourceRecord(s.n, s.path, s.text, s.page, s.page_end, s.heading, s.chunk_id, s.score,
                     getattr(s, "excerpt", None), getattr(s, "ocr", None))
        for s in sources)


def evidence_records(evidence: Any) -> tuple[EvidenceRecord, ...]:
    """:class:`EvidenceRecord` s from an answer's (or a ``Found`` item's) evidence."""
    return tuple(EvidenceRecord(e.n, e.sentence, e.start, e.end, float(e.score), e.path,
                                getattr(e, "page", None), getattr(e, "heading", None))
                 for e in evidence)


def turn_from_answer(answer: Any, cancelled: bool = False) -> Turn:
    """A :class:`Turn` from a :class:`.answer.Answer` (duck-typed: no import)."""
    gen = getattr(answer, "generation", None)
    checks = tuple(CheckRecord(c.text, bool(c.supported), getattr(c, "evidence", None),
                               getattr(c, "source", None))
                   for c in getattr(answer, "sentences", ()))
    return Turn(answer.question, answer.text, source_records(answer.sources),
                tuple(answer.cited), bool(answer.refused), cancelled, dict(answer.timings),
                gen.completion_tokens if gen else 0, time.time(),
                evidence_records(getattr(answer, "evidence", ())), checks)


class Conversations:
    """The conversations of every collection, under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, collection: str) -> Path:
        return self.folder / f"{quote(collection, safe='')}.json"

    def load(self, collection: str) -> list[Turn]:
        """The turns of ``collection``, oldest first (none when there is no file)."""
        path = self.path(collection)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return [Turn.from_dict(t) for t in raw["turns"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("set aside an unreadable conversation %s: %s", path, exc)
            path.replace(path.with_suffix(".broken"))
            return []

    def save(self, collection: str, turns: list[Turn]) -> Path:
        """Write the turns of ``collection`` atomically (keeping the newest MAX_TURNS)."""
        path = self.path(collection)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"collection": collection, "turns": [t.to_dict() for t in turns[-MAX_TURNS:]]}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(path)
        return path

    def append(self, collection: str, turn: Turn) -> list[Turn]:
        """Add a turn to ``collection`` and return its turns."""
        turns = [*self.load(collection), turn]
        self.save(collection, turns)
        return turns

    def clear(self, collection: str) -> None:
        """Forget the conversation of ``collection``."""
        self.path(collection).unlink(missing_ok=True)

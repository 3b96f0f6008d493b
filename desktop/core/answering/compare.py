"""Compare: one question answered four ways, side by side.

base (the bare model), retrieval (base + your files), adapter (the LoRA adapters, no files)
and both (adapters + files). The adapter rows need adapters; each row carries its answer,
latency, tokens, the sources it cited and a :mod:`support <desktop.core.answering.support>` score
measured against the same retrieved passages for all four, so the rows compare fairly. With
the held-out ideal replies of a tuned adapter (``ideals``) each row also gets a
:func:`form <.form.form_against>` score: how close it comes to the taught form.
Switching adapters between rows never reloads the model (:meth:`Engine.set_adapters`).
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from desktop.core.answering.answer import Answer, Answerer, Found
from desktop.core.answering.form import form_against
from desktop.core.answering.support import support
from desktop.core.errors import GroundedError

#: name -> (uses retrieval, uses the adapters)
CONFIGS = {"base": (False, False), "retrieval": (True, False),
           "adapter": (False, True), "both": (True, True)}


@dataclass(frozen=True)
class CompareEvent:
    """A step of one row: ``kind`` is begin, evidence (``found``: the evidence, before the
    model starts), token (``text``), done (``answer``) or failed."""

    config: str
    kind: str
    text: str = ""
    answer: Answer | None = None
    found: Found | None = None


@dataclass(frozen=True)
class CompareRow:
    """One configuration's outcome."""

    config: str
    answer: Answer | None
    support: float | None
    error: str | None = None
    form: float | None = None  # best ROUGE-L F1 against a tuned adapter's ideal replies

    def to_dict(self) -> dict:
        a = self.answer
        gen = a.generation if a else None
        return {
            "config": self.config,
            "error": self.error,
            "answer": a.text if a else None,
            "refused": a.refused if a else None,
            "support": self.support,
            "form": self.form,
            "latency_ms": a.timings.get("total_ms") if a else None,
            "first_token_ms": a.timings.get("first_token_ms") if a else None,
            "tokens": gen.completion_tokens if gen else 0,
            "tokens_per_s": a.timings.get("tokens_per_s") if a else None,
            "cited": [{"n": s.n, "path": s.path, "page": s.page}
                      for s in a.sources if s.n in a.cited] if a else [],
            "sources": len(a.sources) if a else 0,
        }


def compare(answerer: Answerer, question: str,
            adapters: Sequence[tuple[str | Path, float]] = (),
            collections: Sequence[str] | None = None,
            cancel: threading.Event | None = None, ideals: Sequence[str] = (),
            ) -> Generator[CompareEvent, None, list[CompareRow]]:
    """Answer ``question`` in each configuration (the adapter rows only with ``adapters``),
    streaming every row; return the rows (with form scores when ``ideals`` are given). The
    engine's adapters are restored at the end."""
    engine = answerer.engine
    before = [(info.path, scale) for info, scale in engine.adapters]
    reference: list[str] = []
    if answerer.retriever is not None:
        found = answerer.retriever.search(question, k=answerer.k, collections=collections)
        reference = [p.text for p in found.passages]
    rows: list[CompareRow] = []
    try:
        for config, (retrieval, adapted) in CONFIGS.items():
            if adapted and not adapters:
                continue
            if cancel is not None and cancel.is_set():
                break
            yield CompareEvent(config, "begin")
            try:
                engine.set_adapters(list(adapters) if adapted else [])
                stream = answerer.ask(question, collections, retrieval=retrieval, cancel=cancel)
                while True:
                    try:
                        item = next(stream)
                    except StopIteration as stop:
                        answer: Answer = stop.value
                        break
                    if isinstance(item, Found):
                        yield CompareEvent(config, "evidence", found=item)
                    else:
                        yield CompareEvent(config, "token", item.text)
            except GroundedError as exc:
                rows.append(CompareRow(config, None, None, str(exc)))
                yield CompareEvent(config, "failed", str(exc))
                continue
            score = None if answer.refused else support(answer.text, reference)
            shape = None if answer.refused else form_against(answer.text, ideals)
            rows.append(CompareRow(config, answer, score, form=shape))
            yield CompareEvent(config, "done", answer=answer)
    finally:
        engine.set_adapters(before)
    return rows

"""Answering for the window: the answer lane (one model, one job at a time).

Models load in the background after the window shows (their state is a signal for the status
bar); a question streams its evidence (as soon as
retrieval is done), then its tokens; Stop cancels between tokens (or aborts prompt processing);
a compare run answers one question four ways; new settings are applied in the same lane, so
the model is never swapped under an answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.core.answering.answer import Found
from desktop.core.config import Settings
from desktop.core.workspace import ModelState, Workspace
from desktop.gui.workers import Job, Lane


class AnswerController(QObject):
    """Runs warm-up, answers, compare runs and settings changes one after another."""

    model_state = Signal(object)  # ModelState
    evidence_found = Signal(object)  # desktop.core.answering.answer.Found
    token = Signal(str)
    answered = Signal(object)  # Answer
    answer_failed = Signal(str)
    compare_event = Signal(object)  # desktop.core.answering.compare.CompareEvent
    compare_rows = Signal(object)  # list[CompareRow], with the support scores
    compare_finished = Signal()
    busy_changed = Signal(bool)
    error = Signal(str)

    def __init__(self, workspace: Workspace, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.lane = Lane("answer")
        self.asking: Job | None = None
        self.warming: Job | None = None
        self.measuring = False  # the warm-up is measuring the model's speed
        self.closed = False

    @property
    def busy(self) -> bool:
        """Whether a question or compare run is queued or running (warm-up does not count)."""
        return self.asking is not None

    def warm_up(self) -> Job:
        job = Job("loading models", self.workspace.warm_up)
        job.progress.connect(self._on_state)
        job.failed.connect(self.error)
        job.finished.connect(lambda: setattr(self, "measuring", False))
        self.warming = job
        return self.lane.submit(job)

    def _on_state(self, state: ModelState) -> None:
        self.measuring = state.model == "speed" and state.state == "loading"
        self.model_state.emit(state)
        if state.state == "failed":
            self.error.emit(state.detail)

    def _before_question(self) -> None:
        """A question goes first: the speed measure in flight, if any, is cancelled (the
        answer records the model's speed itself)."""
        if self.measuring and self.warming is not None:
            self.warming.cancel()

    def ask(self, question: str, collection: str | None, history: Sequence[str] = ()) -> Job:
        """Answer ``question`` from ``collection``; ``history``: the conversation's earlier
        questions, oldest first (a follow-up is searched with the one before it)."""
        history = list(history)
        self._before_question()
        job = Job("answering", lambda cancel: self.workspace.ask(
            question, _scope(collection), cancel, history=history))
        job.progress.connect(self._on_token)
        job.done.connect(self.answered)
        job.failed.connect(self.answer_failed)
        job.finished.connect(self._on_asked)
        self.asking = job
        self.busy_changed.emit(True)
        return self.lane.submit(job)

    def _on_token(self, item: Any) -> None:
        if isinstance(item, Found):
            self.evidence_found.emit(item)
        else:
            self.token.emit(item.text)

    def compare(self, question: str, collection: str | None) -> Job:
        self._before_question()
        job = Job("comparing", lambda cancel: self.workspace.compare(
            question, _scope(collection), cancel))
        job.progress.connect(self.compare_event)
        job.done.connect(self.compare_rows)
        job.failed.connect(self.error)
        job.finished.connect(self.compare_finished)
        job.finished.connect(self._on_asked)
        self.asking = job
        self.busy_changed.emit(True)
        return self.lane.submit(job)

    def _on_asked(self) -> None:
        self.asking = None
        self.busy_changed.emit(False)

    def stop(self) -> None:
        """Stop the answer or compare run (queued or streaming)."""
        if self.asking is not None:
            self.asking.cancel()

    def apply_settings(self, settings: Settings) -> Job:
        """Save ``settings`` and reload what they change, after the job in flight."""
        job = Job("applying settings", lambda _c: self.workspace.update_settings(settings))
        job.failed.connect(self.error)
        self.lane.submit(job)
        return self.warm_up()

    def close(self, wait_ms: int = 30_000) -> None:
        self.closed = True
        if self.warming is not None:
            self.warming.cancel()  # the steps left, and a speed measure in flight
        self.lane.wait(wait_ms)


def _scope(collection: str | None) -> list[str] | None:
    """The collections an answer searches: the window's current one (None: all)."""
    return [collection] if collection else None

"""What the model is told: the system prompt without sources, the sources turn with its
instruction and worked examples, and the refusal an answer gives when the files lack it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

REFUSAL = "I could not find that in your files."

#: The system prompt of a question asked without sources (and of the examples tune learns on).
SYSTEM_BARE = "Answer the question in a few words."

#: After the sources, nearest to where the model starts writing: a 135M model follows what it
#: read last. Two worked examples teach the form (a short phrase, then [n]). Chosen with
#: `grounded eval` on ../shared/eval among six layouts (README, "Answer quality").
INSTRUCTION = ("Answer with the shortest phrase from the sources, then the source number in "
               "brackets.")
EXAMPLES = (
    ({2: "Mount Everest, at 8,849 metres, is the highest mountain on Earth.",
      1: "The Eiffel Tower in Paris was completed in 1889 for the World's Fair."},
     "In what year was the Eiffel Tower finished?", "1889 [1]"),
    ({1: "Marie Curie shared the 1903 Nobel Prize in Physics with Pierre Curie and "
         "Henri Becquerel."},
     "Who shared the Nobel Prize with Marie Curie?", "Pierre Curie and Henri Becquerel [1]"),
)


class NumberedSource(Protocol):
    """A source as the prompt numbers it (:class:`desktop.core.answering.answer.Source`)."""

    @property
    def n(self) -> int: ...

    @property
    def shown(self) -> str: ...


def build_messages(question: str, sources: Sequence[NumberedSource]) -> list[dict[str, str]]:
    """The chat messages for a question with (or without) numbered sources."""
    if not sources:
        return [{"role": "system", "content": SYSTEM_BARE},
                {"role": "user", "content": question}]
    messages = []
    for passages, example_question, example_answer in EXAMPLES:
        messages += [{"role": "user", "content": _turn(passages, example_question)},
                     {"role": "assistant", "content": example_answer}]
    # Best source last: closest to the question, where a small model attends most.
    passages = {s.n: s.shown for s in reversed(sources)}
    return [*messages, {"role": "user", "content": _turn(passages, question)}]


def _turn(passages: dict[int, str], question: str) -> str:
    """A user turn: the numbered passages, the instruction, then the question."""
    blocks = "\n\n".join(f"[{n}] {text}" for n, text in passages.items())
    return f"Sources:\n{blocks}\n\n{INSTRUCTION}\nQuestion: {question}"

"""How much of the retrieved passages the model reads, by its size.

A small model answers best from the evidence sentences alone: handed whole passages, the
135M bundled model must find the answer in hundreds of tokens and mostly does not. A larger
model reads whole passages (as many as fit its context) and gains from the sentences around
the evidence. The threshold lies between the largest model measured that did better on the
sentences and the smallest that did better on whole passages (README, "Answer layout by
model size"). The evidence shown to the person is the same either way.
"""

from __future__ import annotations

from desktop.core.answering.evidence import FOCUS_SENTENCES

#: A model holding at least this many weights reads whole passages; a smaller one reads the
#: evidence sentences.
WHOLE_PASSAGES_FROM = 1_000_000_000


def sentences_for(parameters: int, setting: int | None = None) -> int:
    """Evidence sentences the prompt carries (0: whole passages): ``setting`` when the person
    chose one, else by the model's ``parameters``."""
    if setting is not None:
        return setting
    return 0 if parameters >= WHOLE_PASSAGES_FROM else FOCUS_SENTENCES


def reading_text(sentences: int) -> str:
    """What the model reads, in words: "whole passages" or "the 2 evidence sentences"."""
    if sentences < 1:
        return "whole passages"
    return f"the {sentences} evidence sentence{'s' if sentences != 1 else ''}"


"""How much of the retrieved passages the model reads, by its size.

Measured with every GGUF model that could be had here (README, "Answer layout by model
size"): SmolLM2-135M, Gemma 3 270M and Qwen2.5-Coder-1.5B each answered worse from five whole
passages than from the evidence sentences (the passages' other sentences distract them more
than they inform). The 135M model is best with two sentences (three cost it), the 1.5B model
gained with four. So a model of 1B weights or more reads four evidence sentences, a smaller
one two; whole passages are the person's choice. The evidence shown is the same either way.
"""

from __future__ import annotations

from desktop.core.answering.evidence import FOCUS_SENTENCES

#: A model holding at least this many weights reads :data:`LARGE_MODEL_SENTENCES`.
LARGE_MODEL_FROM = 1_000_000_000
#: Evidence sentences a large model reads.
LARGE_MODEL_SENTENCES = 4


def sentences_for(parameters: int, setting: int | None = None) -> int:
    """Evidence sentences the prompt carries (0: whole passages): ``setting`` when the person
    chose one, else by the model's ``parameters``."""
    if setting is not None:
        return setting
    return LARGE_MODEL_SENTENCES if parameters >= LARGE_MODEL_FROM else FOCUS_SENTENCES


def reading_text(sentences: int) -> str:
    """What the model reads, in words: "whole passages" or "the 2 evidence sentences"."""
    if sentences < 1:
        return "whole passages"
    return f"the {sentences} evidence sentence{'s' if sentences != 1 else ''}"


def reading_by_size(parameters: int) -> str:
    """What a model of ``parameters`` weights reads unless the person chose: "the 4 evidence
    sentences"."""
    return reading_text(sentences_for(parameters))

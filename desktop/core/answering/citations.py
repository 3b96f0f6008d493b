"""Citations are data: check every ``[n]`` an answer makes against the sources it was given."""

from __future__ import annotations

import re
from dataclasses import dataclass

_MARK = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


@dataclass(frozen=True)
class CheckedAnswer:
    """An answer with invalid citation marks removed, and what it cites."""

    text: str
    cited: tuple[int, ...]  # the valid source numbers cited, in order of first citation
    invalid: int  # how many citation numbers named no source and were removed


def check_citations(answer: str, n_sources: int) -> CheckedAnswer:
    """Keep ``[n]`` marks that name one of sources ``1..n_sources``; drop and count the others.

    ``[1, 3]`` style groups are checked number by number.
    """
    cited: list[int] = []
    invalid = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal invalid
        keep = []
        for part in re.split(r"\s*[,;]\s*", m.group(1)):
            n = int(part)
            if 1 <= n <= n_sources:
                keep.append(n)
                if n not in cited:
                    cited.append(n)
            else:
                invalid += 1
        return "[" + ", ".join(map(str, keep)) + "]" if keep else ""

    text = _MARK.sub(repl, answer)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)  # a removed mark leaves no stray space
    return CheckedAnswer(re.sub(r"[ \t]{2,}", " ", text).strip(), tuple(cited), invalid)


def strip_citations(text: str) -> str:
    """The answer's words without its ``[n]`` marks (for scoring against reference answers)."""
    return re.sub(r" ([.,;:!?])", r"\1", " ".join(_MARK.sub(" ", text).split()))

"""A model's vocabulary as bytes: what constrained decoding matches text against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenTable:
    """A model's vocabulary as bytes, for byte-level matching."""

    pieces: tuple[bytes, ...]  # token id -> its bytes (b"" for control tokens)
    by_bytes: Mapping[bytes, int]  # bytes -> the token id that spells them alone
    longest: int
    ends: tuple[int, ...]  # the end-of-generation tokens
    open_cite: int  # the token " [" that begins a citation

    @classmethod
    def build(cls, pieces: Sequence[bytes], ends: Sequence[int], open_cite: int
              ) -> TokenTable:
        by_bytes: dict[bytes, int] = {}
        for token, piece in enumerate(pieces):
            if piece and token != open_cite:
                by_bytes.setdefault(piece, token)
        return cls(tuple(pieces), by_bytes, max(map(len, by_bytes), default=1), tuple(ends),
                   open_cite)

    def spelling(self, text: bytes, at: int) -> list[int]:
        """The tokens whose bytes begin ``text`` at offset ``at``."""
        stop = min(len(text), at + self.longest)
        return [t for j in range(at + 1, stop + 1)
                if (t := self.by_bytes.get(text[at:j])) is not None]

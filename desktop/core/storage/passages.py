"""A cited passage in its context: the chunks just before and after it in the same file.

The window shows a citation as the passage itself, highlighted, between its neighbours, so a
person can check what the model was given without opening the file. The passage text comes
from the answer (what was in the prompt); the store only adds the neighbours, when the
document is still indexed unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from desktop.core.storage.store import Store


@dataclass(frozen=True)
class PassageContext:
    """The text before a passage, the passage, and the text after it."""

    before: str
    text: str
    after: str
    indexed: bool  # False when the chunk is gone from the index (file changed or forgotten)


def passage_context(store: Store, chunk_id: int | None, text: str) -> PassageContext:
    """The neighbours of chunk ``chunk_id`` around ``text`` (the passage as it was cited).

    When the chunk no longer holds ``text`` (the file was re-indexed since), the neighbours
    would be wrong: only the passage is returned, marked as no longer indexed.
    """
    row = None
    if chunk_id is not None:
        row = store.con.execute(
            "SELECT document_id, ord, text FROM chunks WHERE id=?", (chunk_id,)).fetchone()
    if row is None or row[2] != text:
        return PassageContext("", text, "", indexed=False)
    doc_id, ord_, _ = row
    near = dict(store.con.execute(
        "SELECT ord, text FROM chunks WHERE document_id=? AND ord IN (?, ?)",
        (doc_id, ord_ - 1, ord_ + 1)))
    before = _drop_overlap(near.get(ord_ - 1, ""), text, at_end=True)
    after = _drop_overlap(near.get(ord_ + 1, ""), text, at_end=False)
    return PassageContext(before, text, after, indexed=True)


def _drop_overlap(neighbour: str, text: str, at_end: bool, least: int = 12) -> str:
    """Cut from ``neighbour`` the sentences it shares with ``text`` (chunks overlap a little):
    the end of the chunk before repeats the start of ``text``; the start of the chunk after
    repeats its end."""
    for k in range(min(len(neighbour), len(text)), least - 1, -1):
        if at_end and neighbour.endswith(text[:k]):
            return neighbour[:-k].rstrip()
        if not at_end and neighbour.startswith(text[-k:]):
            return neighbour[k:].lstrip()
    return neighbour

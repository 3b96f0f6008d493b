"""Tuning examples: prompt → ideal reply pairs from a JSONL or CSV file (or pasted text).

JSONL: one object per line with string fields ``prompt`` and ``reply`` (blank lines are
skipped). CSV: a header row naming ``prompt`` and ``reply`` columns (others are ignored), one
example per row; a quoted field may span lines. Anything else is a one-line
:class:`GroundedError` that names the line: nothing is guessed.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from desktop.core.errors import GroundedError

#: Fewer examples than this teach nothing worth an adapter (and leave none to hold out).
MIN_EXAMPLES = 8
#: File suffixes that name the format (any other is told by the text).
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
CSV_SUFFIXES = (".csv", ".tsv")


@dataclass(frozen=True)
class Example:
    """One prompt and the reply the tuned model should give; ``line`` is where it was read."""

    prompt: str
    reply: str
    line: int = 0


def read_examples(path: str | Path) -> list[Example]:
    """The examples of a ``.jsonl`` or ``.csv`` file (by suffix; otherwise sniffed: a first
    line starting with ``{`` is JSONL). Raises GroundedError on a missing, unreadable or
    malformed file, or one with fewer than :data:`MIN_EXAMPLES` examples."""
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise GroundedError(f"{path}: no such file") from None
    except OSError as exc:
        raise GroundedError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GroundedError(f"{path} is not UTF-8 text (byte {exc.start:,})") from None
    return parse_examples(text, path.name, csv_format=looks_like_csv(text, path.suffix))


def looks_like_csv(text: str, suffix: str = "") -> bool:
    """Whether examples are CSV: by a file ``suffix`` that names a format, else by the text
    (JSONL starts with ``{``)."""
    suffix = suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return False
    if suffix in CSV_SUFFIXES:
        return True
    return not text.lstrip().startswith("{")


def parse_examples(text: str, source: str = "the examples", csv_format: bool | None = None
                   ) -> list[Example]:
    """Examples from JSONL or CSV ``text`` (``csv_format`` None: :func:`looks_like_csv`);
    ``source`` names it in errors. See :func:`read_examples`."""
    if csv_format is None:
        csv_format = looks_like_csv(text)
    examples = _parse_csv(text, source) if csv_format else _parse_jsonl(text, source)
    if len(examples) < MIN_EXAMPLES:
        raise GroundedError(f"{source} has {len(examples)} example"
                            f"{'' if len(examples) == 1 else 's'}; tuning needs at least "
                            f"{MIN_EXAMPLES} (some are held out to check the result)")
    return examples


def _checked(prompt: object, reply: object, source: str, line: int) -> Example:
    for field, value in (("prompt", prompt), ("reply", reply)):
        if not isinstance(value, str):
            what = "missing" if value is None else f"a {type(value).__name__}, not text"
            raise GroundedError(f"{source} line {line}: \"{field}\" is {what}")
        if not value.strip():
            raise GroundedError(f"{source} line {line}: \"{field}\" is empty")
    return Example(str(prompt).strip(), str(reply).strip(), line)


def _parse_jsonl(text: str, source: str) -> list[Example]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise GroundedError(f"{source} line {n} is not valid JSON ({exc.msg}); each line "
                                "must be {\"prompt\": ..., \"reply\": ...}") from None
        if not isinstance(row, dict):
            raise GroundedError(f"{source} line {n} is not a JSON object; each line must be "
                                "{\"prompt\": ..., \"reply\": ...}")
        out.append(_checked(row.get("prompt"), row.get("reply"), source, n))
    return out


def _parse_csv(text: str, source: str) -> list[Example]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        raise GroundedError(f"{source} line 1 is not valid CSV ({exc})") from None
    names = [h.strip().lower() for h in header]
    if "prompt" not in names or "reply" not in names:
        raise GroundedError(f"{source}: the first line must be a CSV header naming the "
                            f"columns prompt and reply (it is {','.join(header)[:80]!r})")
    p, r = names.index("prompt"), names.index("reply")
    out = []
    try:
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < len(header):
                raise GroundedError(f"{source} line {line} has {len(row)} field"
                                    f"{'' if len(row) == 1 else 's'}; the header has "
                                    f"{len(header)}")
            out.append(_checked(row[p], row[r], source, line))
    except csv.Error as exc:
        raise GroundedError(f"{source} line {reader.line_num} is not valid CSV ({exc})") from None
    return out

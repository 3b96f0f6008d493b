"""Spreadsheets (.xlsx, .ods, .csv, .tsv): each row as one "Header: value" line.

The first non-empty row of a sheet is its header (a lone cell above a wider row of words is
a title: it is kept as a line and the wider row is the header). Every later row is rendered as
``Header1: value1 | Header2: value2`` (empty cells skipped, a column without a header named by
its letter), so a question about a row's values finds them next to their column names. Rows
are grouped into sections of about one retrieval chunk, headed "<sheet> > rows A–B" with the
row numbers a person sees in the spreadsheet. Formulas give their cached values; dates read
2026-03-01 and numbers carry no ".0". A file is cut short after MAX_CHARS rendered characters
or MAX_ROWS rows, with a warning naming the sheet and row; cells past MAX_COLUMNS are left out,
with a warning too.

.xlsx is streamed by openpyxl (read-only); .ods is streamed from its XML with ElementTree's
iterparse (odfpy would hold the whole sheet in memory, far past the sandbox's limit for a big
one); .csv and .tsv go through the csv module after the shared text decoder.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from .base import ExtractError, Extraction, make_extraction, missing_member
from .office import OFFICE, TABLE, blocks, check_package, open_odf
from .text import decode

MAX_CHARS = 2_000_000
"""Rendered characters per file before the rest is left out."""
MAX_ROWS = 200_000
"""Rendered rows per file before the rest is left out."""
MAX_COLUMNS = 1024
"""Columns read per row (a stray cell far to the right must not make every row that wide)."""
SECTION_CHARS = 800
"""About one retrieval chunk of rows per section."""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Row = dict[int, str]  # column index (0-based) -> rendered non-empty cell
Part = tuple[str, int | None, str | None]


def column_letter(index: int) -> str:
    """The spreadsheet letter of a 0-based column index: 0 -> "A", 27 -> "AB"."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _number(value: float) -> str:
    """A number as a person writes it: 1200, 0.3, 1.5e+20 (15 significant digits, like Excel)."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.15g}"


def render(value: Any) -> str:
    """A cell value as text on one line ("" for empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds" if value.second else "minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="seconds" if value.second else "minutes")
    return " ".join(str(value).split())


def _is_number(text: str) -> bool:
    """Whether a rendered cell is a number or a date (which headers rarely are)."""
    try:
        float(text.replace(",", ""))
    except ValueError:
        return bool(_DATE.match(text))
    return True


class _Budget:
    """What is left of the per-file caps; the warning once they are reached."""

    def __init__(self) -> None:
        self.chars = MAX_CHARS
        self.rows = MAX_ROWS
        self.warnings: list[str] = []

    @property
    def spent(self) -> bool:
        return self.chars <= 0 or self.rows <= 0

    def stop(self, sheet: str, row: int) -> None:
        limit = f"{MAX_ROWS:,} rows" if self.rows <= 0 else f"{MAX_CHARS:,} characters"
        self.warnings.append(
            f"sheet '{sheet}' was truncated at row {row}: the file reached the limit of "
            f"{limit}, later rows were not read"
        )


class _SheetWriter:
    """Turns one sheet's rows into "Header: value" lines grouped into sections."""

    def __init__(self, name: str, budget: _Budget, parts: list[Part]) -> None:
        self.name = name
        self.budget = budget
        self.parts = parts
        self.header: Row | None = None
        self.header_number = 0
        self.pending: tuple[int, Row] | None = None  # a one-cell first row: header or title
        self.lines: list[str] = []
        self.size = 0
        self.first = self.last = 0
        self.data = False  # a data row was written
        self.wide = False  # a non-empty cell lay past MAX_COLUMNS

    def row(self, number: int, cells: Row, wide: bool = False) -> bool:
        """Add spreadsheet row ``number``; False (and a warning) once the budget is spent."""
        if not cells:
            return True
        if self.budget.spent:
            self.budget.stop(self.name, number)
            return False
        self.wide = self.wide or wide
        if self.header is None and not self._take_header(number, cells):
            return True
        header = self.header or {}
        self._line(
            number,
            " | ".join(
                f"{header.get(column) or column_letter(column)}: {value}"
                for column, value in sorted(cells.items())
            ),
        )
        self.data = True
        self.budget.rows -= 1
        return True

    def _take_header(self, number: int, cells: Row) -> bool:
        """Take ``cells`` as the header (or a title above it); True when they are data."""
        if self.pending is None:
            if len(cells) == 1:
                self.pending = number, cells
            else:
                self.header, self.header_number = cells, number
            return False
        (title_number, title), self.pending = self.pending, None
        if len(cells) == 1 or any(map(_is_number, cells.values())):
            # a one-column sheet, or a data row (headers are words): the lone cell heads it
            self.header, self.header_number = title, title_number
            return True
        self._line(title_number, " ".join(title.values()))
        self.header, self.header_number = cells, number
        return False

    def _line(self, number: int, line: str) -> None:
        if self.lines and self.size + len(line) + 1 > SECTION_CHARS:
            self._flush()
        if not self.lines:
            self.first = number
        self.lines.append(line)
        self.last = number
        self.size += len(line) + 1
        self.budget.chars -= len(line) + 1

    def _flush(self) -> None:
        span = f"row {self.first}" if self.first == self.last else f"rows {self.first}–{self.last}"
        self.parts.append(("\n".join(self.lines), None, f"{self.name} > {span}"))
        self.lines, self.size = [], 0

    def finish(self) -> None:
        """Flush the last section; a sheet without data rows keeps its header as a line."""
        if self.pending is not None:
            self.header_number, self.header = self.pending
        if not self.data and self.header:
            self._line(self.header_number, " | ".join(v for _, v in sorted(self.header.items())))
        if self.lines:
            self._flush()
        if self.wide:
            last = column_letter(MAX_COLUMNS - 1)
            self.budget.warnings.append(f"sheet '{self.name}': columns after {last} were not read")


Event = str | tuple[int, Row, bool]
"""What a reader yields: a sheet's name as it starts, then its ``(row number, cells, wide)``."""


def _write(events: Iterable[Event], budget: _Budget) -> list[Part]:
    parts: list[Part] = []
    writer: _SheetWriter | None = None
    for event in events:
        if isinstance(event, str):
            if writer is not None:
                writer.finish()
            writer = _SheetWriter(event, budget, parts)
        elif writer is not None and not writer.row(*event):
            break
    if writer is not None:
        writer.finish()
    return parts


def _cells(values: Iterable[Any]) -> tuple[Row, bool]:
    """The non-empty cells of a row of values, and whether any lay past MAX_COLUMNS."""
    row: Row = {}
    for column, value in enumerate(values):
        if text := render(value):
            if column >= MAX_COLUMNS:
                return row, True
            row[column] = text
    return row, False


def _xlsx(path: Path) -> Iterator[Event]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    check_package(path, "XLSX")
    with path.open("rb") as fh:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # openpyxl warns about unsupported extensions
                book = load_workbook(fh, read_only=True, data_only=True)
        except KeyError as exc:
            raise ExtractError(f"not a valid XLSX file ({missing_member(exc)})") from exc
        except (InvalidFileException, ValueError) as exc:
            detail = " ".join(str(exc).split())[:100]
            raise ExtractError(f"not an Excel workbook ({detail})") from exc
        except zipfile.BadZipFile as exc:
            raise ExtractError(f"damaged XLSX file ({exc})") from exc
        except OSError as exc:
            if exc.errno is not None:  # a real read error: extract() names it
                raise
            raise ExtractError(f"not an Excel workbook ({exc})") from exc
        try:
            for sheet in book.worksheets:
                yield sheet.title
                sheet.reset_dimensions()  # the stored size can be wrong: read every row
                for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                    yield (number, *_cells(values))
        finally:
            book.close()


def _delimiter(text: str, suffix: str) -> str:
    """Tab for .tsv, comma for .csv; the Sniffer's pick when the first line lacks it."""
    delimiter = "\t" if suffix == ".tsv" else ","
    first = next((line for line in text[:65536].split("\n") if line.strip()), "")
    if delimiter not in first:
        try:
            return csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
        except csv.Error:
            pass
    return delimiter


def _csv(text: str, name: str, suffix: str) -> Iterator[Event]:
    yield name
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text, suffix))
    try:
        for number, values in enumerate(reader, start=1):
            yield (number, *_cells(values))
    except csv.Error as exc:
        raise ExtractError(f"malformed CSV file (line {reader.line_num}: {exc})") from exc


def _ods_value(cell: ElementTree.Element) -> str:
    """A cell's value: numbers and dates from their typed value, the rest as displayed."""
    text = " ".join(" ".join(text for _, text in blocks(cell)).split())
    kind = cell.get(OFFICE + "value-type")
    try:
        if kind == "float" or (kind in ("percentage", "currency") and not text):
            return _number(float(cell.get(OFFICE + "value", "")))
        if kind == "date":
            return render(dt.datetime.fromisoformat(cell.get(OFFICE + "date-value", "")))
        if kind == "boolean":
            return render(cell.get(OFFICE + "boolean-value") == "true")
    except ValueError:  # a malformed typed value: what the cell displays
        pass
    return text


def _repeat(element: ElementTree.Element, attribute: str) -> int:
    raw = element.get(TABLE + attribute, "1")
    return max(int(raw), 1) if raw.isdigit() else 1


def _ods(path: Path) -> Iterator[Event]:
    """Stream the sheets of an .ods; each row is dropped from the tree once read."""
    with open_odf(path, "ODS") as stream:
        try:
            yield from _ods_events(stream)
        except ElementTree.ParseError as exc:
            raise ExtractError(f"damaged ODS file (content.xml: {exc})") from exc
        except zipfile.BadZipFile as exc:
            raise ExtractError(f"damaged ODS file ({exc})") from exc


class _OdsRow:
    """The cells of the ODS row being read, repeats expanded up to MAX_COLUMNS."""

    def __init__(self) -> None:
        self.cells: Row = {}
        self.column = 0
        self.wide = False

    def add(self, cell: ElementTree.Element) -> None:
        repeat = _repeat(cell, "number-columns-repeated")
        value = _ods_value(cell) if cell.tag == TABLE + "table-cell" else ""
        if value:
            self.wide = self.wide or self.column + repeat > MAX_COLUMNS
            end = min(self.column + repeat, MAX_COLUMNS)
            self.cells.update(dict.fromkeys(range(self.column, end), value))
        self.column += repeat


_CELLS = frozenset((TABLE + "table-cell", TABLE + "covered-table-cell"))


def _ods_events(stream: Any) -> Iterator[Event]:
    open_elements: list[ElementTree.Element] = []
    depth = sheets = number = 0  # depth: open tables (1 = in a sheet, more = a nested table)
    row = _OdsRow()
    for event, element in ElementTree.iterparse(stream, events=("start", "end")):
        tag = element.tag
        if event == "start":
            open_elements.append(element)
            if tag == TABLE + "table":
                depth += 1
                if depth == 1:
                    sheets += 1
                    number = 0
                    yield element.get(TABLE + "name") or f"Sheet{sheets}"
            elif tag == TABLE + "table-row" and depth == 1:
                row = _OdsRow()
            continue
        open_elements.pop()
        if tag == TABLE + "table":
            depth -= 1
        elif depth == 1 and tag in _CELLS:
            row.add(element)
        elif depth == 1 and tag == TABLE + "table-row":
            repeat = _repeat(element, "number-rows-repeated")
            if row.cells:
                for _ in range(repeat):
                    number += 1
                    yield number, row.cells, row.wide
            else:  # empty rows, often a million of them at the end: just count them
                number += repeat
            open_elements[-1].remove(element)  # done with it: memory stays flat


def extract(path: Path) -> Extraction:
    """XLSX, ODS, CSV or TSV file: rows as "Header: value" lines, sections of about a chunk."""
    suffix = path.suffix.lower()
    encoding = None
    if suffix in (".csv", ".tsv"):
        text, encoding = decode(path.read_bytes())
        events = _csv(text, path.stem, suffix)
    elif suffix == ".ods":
        events = _ods(path)
    else:
        events = _xlsx(path)
    budget = _Budget()
    with closing(events):
        parts = _write(events, budget)
    return make_extraction(parts, warnings=budget.warnings, encoding=encoding)

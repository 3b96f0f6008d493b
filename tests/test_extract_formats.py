"""Slides, spreadsheets, OpenDocument, RTF and e-mail: real files written by the tests."""

from __future__ import annotations

import csv
import mailbox
import re
import shutil
import zipfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from desktop.core.indexing.extract import SUPPORTED_SUFFIXES, ExtractError, extract, kind_for
from desktop.core.indexing.extract.base import Extraction
from desktop.core.indexing.extract.office import ENCRYPTED_ODF, ENCRYPTED_OFFICE
from desktop.core.indexing.extract.sandbox import ExtractionSandbox
from desktop.core.indexing.extract.sheet import MAX_CHARS, MAX_COLUMNS, MAX_ROWS, column_letter

pytestmark = pytest.mark.timeout(120)


def check_offsets(result: Extraction) -> None:
    for section in result.sections:
        assert result.text[section.offset : section.offset + len(section.text)] == section.text


# --- slides -------------------------------------------------------------------------------


def write_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[0])  # title slide
    first.shapes.title.text = "Kickoff"
    first.placeholders[1].text = "Team plan for 2026"

    budget = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
    budget.shapes.title.text = "Budget"
    budget.placeholders[1].text_frame.text = "Travel costs rose"
    group = budget.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(5), Inches(2), Inches(1)).text = "Grouped note"
    table = budget.shapes.add_table(2, 2, Inches(1), Inches(6), Inches(4), Inches(1)).table
    for (row, col), value in {(0, 0): "Item", (0, 1): "Cost", (1, 0): "Flights"}.items():
        table.cell(row, col).text = value
    table.cell(1, 1).text = "900"
    budget.notes_slide.notes_text_frame.text = "Ask finance about March"

    deck.slides.add_slide(deck.slide_layouts[6])  # blank, no text: left out
    hidden = deck.slides.add_slide(deck.slide_layouts[6])
    hidden.shapes.add_textbox(Inches(1), Inches(1), Inches(3), Inches(1)).text = "Backup only"
    hidden._element.set("show", "0")
    deck.save(path)
    return path


def test_pptx_slides_titles_tables_and_notes(tmp_path: Path) -> None:
    result = extract(write_pptx(tmp_path / "deck.pptx"))
    assert [s.heading for s in result.sections] == [
        "Slide 1: Kickoff",
        "Slide 2: Budget",
        "Slide 4",
    ]
    assert result.sections[0].text == "Kickoff\nTeam plan for 2026"
    budget = result.sections[1].text
    assert budget.splitlines()[0] == "Budget"
    assert "Travel costs rose" in budget
    assert "Grouped note" in budget
    assert "Item | Cost\nFlights | 900" in budget
    assert budget.endswith("Notes: Ask finance about March")
    assert result.sections[2].text == "Backup only"
    assert all(s.page is None for s in result.sections)
    check_offsets(result)


def write_odp(path: Path) -> Path:
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation
    from odf.presentation import Notes
    from odf.style import MasterPage, PageLayout
    from odf.text import P

    doc = OpenDocumentPresentation()
    layout = PageLayout(name="Layout")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="Master", pagelayoutname=layout)
    doc.masterstyles.addElement(master)

    def frame(text: str, kind: str | None = None) -> Frame:
        attributes = {"class": kind} if kind else {}
        box = Frame(width="20cm", height="3cm", x="1cm", y="1cm", **attributes)
        inner = TextBox()
        inner.addElement(P(text=text))
        box.addElement(inner)
        return box

    page = Page(masterpagename=master, name="page1")
    page.addElement(frame("Roadmap", "title"))
    page.addElement(frame("Ship the beta in May", "outline"))
    page.addElement(frame("3", "page-number"))
    notes = Notes()
    notes.addElement(frame("Mention the delay", "notes"))
    page.addElement(notes)
    doc.presentation.addElement(page)
    untitled = Page(masterpagename=master, name="page2")
    untitled.addElement(frame("Questions?"))
    doc.presentation.addElement(untitled)
    doc.save(str(path))
    return path


def test_odp_slides(tmp_path: Path) -> None:
    result = extract(write_odp(tmp_path / "talk.odp"))
    assert [(s.heading, s.text) for s in result.sections] == [
        ("Slide 1: Roadmap", "Roadmap\nShip the beta in May\nNotes: Mention the delay"),
        ("Slide 2", "Questions?"),
    ]


# --- spreadsheets -------------------------------------------------------------------------


def write_xlsx(path: Path) -> Path:
    """A budget sheet with a date and a formula whose cached value is written into the XML."""
    import datetime as dt

    from openpyxl import Workbook

    book = Workbook()
    budget = book.active
    budget.title = "Budget"
    budget.append(["Month", "Category", "Amount", None, "Booked"])
    budget.append(["February", "Office", 300.5, 7, dt.datetime(2026, 2, 3)])
    budget.append(["March", "Travel", 1200.0])
    budget.append(["March", "Office", 0.1 + 0.2])
    budget.append(["Total", None, "=SUM(C2:C4)"])
    notes = book.create_sheet("Notes")
    notes["B2"] = "Quarterly review"  # a title above the header
    notes.append([None, "Who", "Said"])
    notes.append([None, "Dana", "Approve the March trip"])
    book.create_sheet("Empty")
    book.save(path)
    # openpyxl computes no formulas: put Excel's cached value where a saved workbook has it.
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    sheet = members["xl/worksheets/sheet1.xml"].decode()
    sheet, count = re.subn(r"(<f>SUM\(C2:C4\)</f>)<v\s*/?>(</v>)?", r"\1<v>1500.8</v>", sheet)
    assert count == 1
    members["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_xlsx_rows_as_header_value_lines(tmp_path: Path) -> None:
    result = extract(write_xlsx(tmp_path / "budget.xlsx"))
    assert [s.heading for s in result.sections] == ["Budget > rows 2–5", "Notes > rows 2–4"]
    assert result.sections[0].text.splitlines() == [
        "Month: February | Category: Office | Amount: 300.5 | D: 7 | Booked: 2026-02-03",
        "Month: March | Category: Travel | Amount: 1200",
        "Month: March | Category: Office | Amount: 0.3",
        "Month: Total | Amount: 1500.8",  # the formula's cached value
    ]
    assert result.sections[1].text.splitlines() == [
        "Quarterly review",
        "Who: Dana | Said: Approve the March trip",
    ]
    assert result.warnings == ()
    check_offsets(result)


def test_rows_group_into_sections_of_about_one_chunk(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    lines = ["Month,Category,Amount"] + [f"M{n},Travel and lodging,{n * 10}" for n in range(100)]
    path.write_text("\n".join(lines), encoding="utf-8")
    result = extract(path)
    assert len(result.sections) > 3
    assert all(len(s.text) <= 800 for s in result.sections)
    assert result.sections[0].heading == "ledger > rows 2–" + str(
        1 + len(result.sections[0].text.splitlines())
    )
    last = result.sections[-1].heading
    assert last is not None and last.endswith("–101")
    assert "Month: M42 | Category: Travel and lodging | Amount: 420" in result.text.splitlines()


def write_ods(path: Path) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    def cell(text: str = "", repeat: int = 1, **value: str) -> TableCell:
        made = TableCell(numbercolumnsrepeated=repeat, **value)
        if text:
            made.addElement(P(text=text))
        return made

    def row(*cells: TableCell, repeat: int = 1) -> TableRow:
        made = TableRow(numberrowsrepeated=repeat)
        for one in cells:
            made.addElement(one)
        return made

    doc = OpenDocumentSpreadsheet()
    sheet = Table(name="Budget")
    sheet.addElement(row(cell("Month"), cell("Category"), cell("Amount"), cell(repeat=16000)))
    sheet.addElement(row(cell(repeat=1024), repeat=3))  # empty rows 2-4 only move the count
    sheet.addElement(
        row(
            cell("March"),
            cell("Travel"),
            cell("1,200.00", valuetype="float", value="1200"),
            cell(repeat=16000),
        )
    )
    sheet.addElement(
        row(
            cell("Day"),
            cell("01/03/26", valuetype="date", datevalue="2026-03-01"),
            cell("2,100", valuetype="float", value="2100", formula="of:=SUM([.C5];900)"),
        )
    )
    sheet.addElement(row(cell(repeat=1024), repeat=1_048_000))  # the usual empty tail
    doc.spreadsheet.addElement(sheet)
    long = Table(name="Log")
    long.addElement(row(cell("Id")))
    long.addElement(row(cell("x"), repeat=1_000_000))  # far past MAX_ROWS (not MAX_CHARS)
    doc.spreadsheet.addElement(long)
    doc.save(str(path))
    return path


def test_ods_values_repeats_and_row_cap(tmp_path: Path) -> None:
    result = extract(write_ods(tmp_path / "budget.ods"))
    budget = result.sections[0]
    assert budget.heading == "Budget > rows 5–6"
    assert budget.text == (
        "Month: March | Category: Travel | Amount: 1200\n"
        "Month: Day | Category: 2026-03-01 | Amount: 2100"  # date and formula: typed values
    )
    log = [s for s in result.sections if s.heading and s.heading.startswith("Log > ")]
    assert log[0].heading.startswith("Log > rows 2–")
    assert log[0].text.splitlines()[0] == "Id: x"
    assert sum(len(s.text.splitlines()) for s in result.sections) == MAX_ROWS
    assert result.warnings == (
        f"sheet 'Log' was truncated at row {MAX_ROWS}: the file reached the limit of "
        f"{MAX_ROWS:,} rows, later rows were not read",
    )


def test_csv_latin1_with_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "Adressen.csv"
    path.write_bytes("Name;Stadt\nJosé Müller;Zürich\n;Genève\n".encode("latin-1"))
    result = extract(path)
    assert result.encoding in ("cp1252", "latin_1", "iso8859_1")
    (section,) = result.sections
    assert section.heading == "Adressen > rows 2–3"
    assert section.text == "Name: José Müller | Stadt: Zürich\nStadt: Genève"


def test_tsv_and_quoted_fields(tmp_path: Path) -> None:
    path = tmp_path / "people.tsv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerows([["Who", "Note", ""], ["Ann", "line one\nline two", "x, y"]])
    (section,) = extract(path).sections
    assert section.text == "Who: Ann | Note: line one line two | C: x, y"


def test_a_lone_first_cell_is_a_title_only_above_a_row_of_words(tmp_path: Path) -> None:
    titled = tmp_path / "titled.csv"
    titled.write_text("Team list,,\nName,Role,Room\nAnn,Lead,B12\n", encoding="utf-8")
    assert extract(titled).text == "Team list\nName: Ann | Role: Lead | Room: B12"
    headed = tmp_path / "headed.csv"
    headed.write_text("Name,\nAnn,30\nBob,25\n", encoding="utf-8")
    assert extract(headed).text == "Name: Ann | B: 30\nName: Bob | B: 25"


def test_columns_past_the_cap_are_left_out_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("Key,Value\nk," + "," * (MAX_COLUMNS - 1) + "stray\n", encoding="utf-8")
    result = extract(path)
    assert result.text == "Key: k"
    assert result.warnings == (
        f"sheet 'wide': columns after {column_letter(MAX_COLUMNS - 1)} were not read",
    )


def test_huge_csv_is_cut_at_the_character_cap(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    rows = (MAX_CHARS // 20) + 50_000
    path.write_text("Row,Value\n" + "".join(f"{n},v{n}\n" for n in range(rows)), "utf-8")
    result = extract(path)
    (warning,) = result.warnings
    row = int(re.search(r"truncated at row (\d+)", warning).group(1))
    assert warning.startswith("sheet 'huge' was truncated at row ")
    assert warning.endswith(f"the limit of {MAX_CHARS:,} characters, later rows were not read")
    assert 2 < row < rows
    last = result.sections[-1]
    assert last.heading.endswith(f"–{row - 1}")
    assert MAX_CHARS <= sum(len(s.text) + 1 for s in result.sections) < MAX_CHARS + 1000


# --- OpenDocument text, RTF ---------------------------------------------------------------


def write_odt(path: Path) -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableRow
    from odf.text import H, List, ListItem, Note, NoteBody, NoteCitation, P, S, Span

    doc = OpenDocumentText()
    doc.text.addElement(P(stylename="Title", text="Field Guide"))
    doc.text.addElement(H(outlinelevel=1, text="Intro"))
    para = P(text="Birds  are")  # ODF collapses runs of spaces; text:s keeps them
    para.addElement(S(c=2))
    para.addElement(Span(text="everywhere."))
    note = Note(noteclass="footnote")
    note.addElement(NoteCitation(text="1"))
    body = NoteBody()
    body.addElement(P(text="Mostly."))
    note.addElement(body)
    para.addElement(note)
    doc.text.addElement(para)
    doc.text.addElement(H(outlinelevel=2, text="Kinds"))
    items = List()
    for name in ("Robin", "Wren"):
        item = ListItem()
        item.addElement(P(text=name))
        items.addElement(item)
    doc.text.addElement(items)
    table = Table(name="Sizes")
    for values in (("Bird", "Length"), ("Wren", "10 cm")):
        row = TableRow()
        for value in values:
            cell = TableCell()
            cell.addElement(P(text=value))
            row.addElement(cell)
        table.addElement(row)
    doc.text.addElement(table)
    doc.text.addElement(H(outlinelevel=1, text="Outro"))
    doc.text.addElement(P(text="Go outside."))
    doc.save(str(path))
    return path


def test_odt_headings_lists_tables_and_notes(tmp_path: Path) -> None:
    result = extract(write_odt(tmp_path / "guide.odt"))
    assert [(s.heading, s.text) for s in result.sections] == [
        ("Field Guide > Intro", "Field Guide\nIntro\nBirds are  everywhere.\nMostly."),
        ("Field Guide > Intro > Kinds", "Kinds\nRobin\nWren\nBird | Length\nWren | 10 cm"),
        ("Field Guide > Outro", "Outro\nGo outside."),
    ]
    check_offsets(result)


RTF = (
    r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Arial;}}"
    r"{\info{\title Hidden metadata}}"
    r"\f0\fs24 Caf\'e9 au lait costs 3\u8364? today.\par "
    r"Smile \u-10179?\u-8704? please.\par\par\par "
    r"\trowd\cellx1000\cellx2000 Item\cell Price\cell\row"
    r"\trowd\cellx1000\cellx2000 Tea\cell 2\cell\row"
    "{\\pict\\pngblip " + "89504e47" * 400 + "}"
    r"End.}"
)


def test_rtf_text_escapes_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "menu.rtf"
    path.write_bytes(RTF.encode("ascii"))
    result = extract(path)
    assert result.text == (
        "Café au lait costs 3€ today.\nSmile \U0001f600 please.\n\nItem | Price\nTea | 2\nEnd."
    )


def test_not_rtf(tmp_path: Path) -> None:
    path = tmp_path / "fake.rtf"
    path.write_text("just text", encoding="utf-8")
    with pytest.raises(ExtractError, match=r"not an RTF file"):
        extract(path)


# --- e-mail -------------------------------------------------------------------------------


def make_message(subject: str, body: str, *, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Alice Smith <alice@example.com>"
    message["To"] = "bob@example.com"
    message["Date"] = "Tue, 03 Mar 2026 10:00:00 +0100"
    message["Subject"] = subject
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def test_eml_headers_body_and_attachments(tmp_path: Path) -> None:
    message = make_message("Travel budget", "We spent 1200 on travel in March.", html="<p>HTML</p>")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
    message.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="b.png")
    path = tmp_path / "mail.eml"
    path.write_bytes(message.as_bytes())
    (section,) = extract(path).sections
    assert section.heading == "Travel budget (Alice Smith, 2026-03-03 10:00)"
    assert section.text == (
        "From: Alice Smith <alice@example.com>\n"
        "To: bob@example.com\n"
        "Date: Tue, 03 Mar 2026 10:00:00 +0100\n"
        "Subject: Travel budget\n\n"
        "We spent 1200 on travel in March.\n\n"
        "Attachments: a.pdf, b.png"
    )


def test_eml_html_only_and_unknown_charset(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "Newsletter"
    message.set_content("<h1>News</h1><p>Visible <b>text</b></p><script>track()</script>", "html")
    html = tmp_path / "news.eml"
    html.write_bytes(message.as_bytes())
    (section,) = extract(html).sections
    assert section.heading == "Newsletter"
    assert section.text == "Subject: Newsletter\n\nNews\n\nVisible text"

    odd = tmp_path / "odd.eml"
    odd.write_bytes(
        b"From: =?x-bogus?q?Zo=EB?= <zoe@example.com>\r\nSubject: Gr\xfc\xdfe\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        b"Viele Gr\xfc\xdfe aus Z\xfcrich, wir sehen uns am Montag im B\xfcro.\r\n"
    )
    (section,) = extract(odd).sections
    assert "Viele Grüße aus Zürich" in section.text
    assert "zoe@example.com" in section.text


def test_mbox_one_section_per_message(tmp_path: Path) -> None:
    path = tmp_path / "archive.mbox"
    box = mailbox.mbox(path)
    box.add(make_message("First", "One."))
    box.add(make_message("Second", "From now on, two.\n"))  # an escaped "From " in a body
    box.close()
    result = extract(path)
    assert [s.heading for s in result.sections] == [
        "First (Alice Smith, 2026-03-03 10:00)",
        "Second (Alice Smith, 2026-03-03 10:00)",
    ]
    assert result.sections[0].text.endswith("\n\nOne.")
    assert "two." in result.sections[1].text
    check_offsets(result)


def test_not_an_mbox(tmp_path: Path) -> None:
    path = tmp_path / "notes.mbox"
    path.write_text("Dear diary\n", encoding="utf-8")
    with pytest.raises(ExtractError, match="not an mbox file"):
        extract(path)


# --- damaged and encrypted files ----------------------------------------------------------


def truncated(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return target


def test_truncated_files_are_refused(tmp_path: Path) -> None:
    cases = {
        truncated(write_xlsx(tmp_path / "a.xlsx"), tmp_path / "cut.xlsx"): "XLSX",
        truncated(write_pptx(tmp_path / "a.pptx"), tmp_path / "cut.pptx"): "PPTX",
        truncated(write_odt(tmp_path / "a.odt"), tmp_path / "cut.odt"): "ODT",
        truncated(write_odp(tmp_path / "a.odp"), tmp_path / "cut.odp"): "ODP",
    }
    for path, label in cases.items():
        with pytest.raises(ExtractError, match=rf"^not a valid {label} file \(not a zip archive\)"):
            extract(path)


def encrypt(source: Path, target: Path) -> Path:
    from msoffcrypto.format.ooxml import OOXMLFile

    with source.open("rb") as fh, target.open("wb") as out:
        OOXMLFile(fh).encrypt("secret", out)
    return target


def test_password_protected_office_files(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Secret plans")
    document.save(tmp_path / "plain.docx")
    for path in (
        encrypt(write_xlsx(tmp_path / "plain.xlsx"), tmp_path / "locked.xlsx"),
        encrypt(write_pptx(tmp_path / "plain.pptx"), tmp_path / "locked.pptx"),
        encrypt(tmp_path / "plain.docx", tmp_path / "locked.docx"),
    ):
        with pytest.raises(ExtractError, match=re.escape(ENCRYPTED_OFFICE)):
            extract(path)
    legacy = tmp_path / "old.xlsx"  # an OLE file without an encrypted package: a renamed .xls
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096))
    with pytest.raises(ExtractError, match=r"old-format \(Office 97-2003\) file named \.xlsx"):
        extract(legacy)


def test_password_protected_and_mislabelled_opendocument(tmp_path: Path) -> None:
    source = write_odt(tmp_path / "plain.odt")
    locked = tmp_path / "locked.odt"
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(locked, "w") as out:
        for item in archive.infolist():
            data = archive.read(item)
            if item.filename == "META-INF/manifest.xml":
                data = re.sub(
                    rb'(<manifest:file-entry[^>]*"content.xml"[^>]*)/>',
                    rb'\1><manifest:encryption-data manifest:checksum-type="SHA1/1K" '
                    rb'manifest:checksum="x"/></manifest:file-entry>',
                    data,
                )
                assert b"encryption-data" in data
            out.writestr(item, data)
    with pytest.raises(ExtractError, match=re.escape(ENCRYPTED_ODF)):
        extract(locked)
    renamed = tmp_path / "really-text.ods"
    shutil.copy(source, renamed)
    with pytest.raises(ExtractError, match=r"not an ODS file \(it is .*opendocument\.text\)"):
        extract(renamed)


# --- kinds and the sandbox ----------------------------------------------------------------


def test_kind_for_the_new_suffixes() -> None:
    expected = {
        ".pptx": "slides",
        ".odp": "slides",
        ".xlsx": "sheet",
        ".ods": "sheet",
        ".CSV": "sheet",
        ".tsv": "sheet",
        ".odt": "odt",
        ".rtf": "rtf",
        ".eml": "email",
        ".mbox": "email",
    }
    for suffix, kind in expected.items():
        assert kind_for(Path("/nonexistent") / f"file{suffix}") == kind, suffix
        assert suffix.lower() in SUPPORTED_SUFFIXES
    for legacy in (".doc", ".xls", ".ppt"):
        assert kind_for(Path(f"/nonexistent/file{legacy}")) is None


@pytest.fixture
def sample_files(tmp_path: Path) -> Iterator[list[Path]]:
    rtf = tmp_path / "menu.rtf"
    rtf.write_bytes(RTF.encode("ascii"))
    eml = tmp_path / "mail.eml"
    eml.write_bytes(make_message("Travel budget", "We spent 1200 on travel.").as_bytes())
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("Month,Amount\nMarch,1200\n", encoding="utf-8")
    box = mailbox.mbox(tmp_path / "a.mbox")
    box.add(make_message("Boxed", "In a box."))
    box.close()
    yield [
        write_pptx(tmp_path / "deck.pptx"),
        write_odp(tmp_path / "talk.odp"),
        write_xlsx(tmp_path / "budget.xlsx"),
        write_odt(tmp_path / "guide.odt"),
        rtf,
        eml,
        csv_file,
        tmp_path / "a.mbox",
    ]


def test_every_new_format_extracts_in_the_sandbox(sample_files: list[Path]) -> None:
    with ExtractionSandbox(timeout_s=60) as box:
        for path in sample_files:
            assert box.extract(path).text == extract(path).text, path.name

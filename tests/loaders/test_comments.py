"""Comments and notes are indexed after the content they belong to, marked so they read as comments."""

import logging
import zipfile
from pathlib import Path

import docx
import odfdo
import openpyxl
import pytest
from office_kit import deck_text, docx_text, odt_text, odt_with_styles, titled_slide
from openpyxl.comments import Comment
from secret_documents import SECRET, quoted_secret

from quart_app.loaders import extract_text
from quart_app.loaders.sheet_comments import xlsx_comments


def test_docx_comments_follow_the_paragraph_they_comment(tmp_path: Path) -> None:
    # python-docx reads no comments: "who asked to check the budget?" found nothing
    document = docx.Document()
    commented = document.add_paragraph("The budget is 40,000 EUR.")
    document.add_comment(commented.runs, text="Please check this against the invoice.", author="Alice Meyer")
    document.add_paragraph("The project starts in May.")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Lead"
    run = table.cell(0, 1).paragraphs[0].add_run("Bob")
    document.add_comment(run, text="Bob left in March.", author="")
    assert docx_text(document, tmp_path / "plan") == (
        "The budget is 40,000 EUR.\n\nComment by Alice Meyer: Please check this against the invoice.\n\n"
        "The project starts in May.\n\nLead | Bob Comment: Bob left in March."
    )


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODS = "application/vnd.oasis.opendocument.spreadsheet"


def test_xlsx_cell_comments_follow_their_row(tmp_path: Path) -> None:
    # openpyxl's read-only mode loads no comments: a note explaining a figure was never indexed
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Budget"
    sheet.append(["Item", "Cost"])
    sheet.append(["Servers", 12000])
    sheet.append(["Licences", 3000])
    sheet["B2"].comment = Comment("Includes the spare\nmachine.", "Alice")
    sheet["A2"].comment = Comment("Rented, not bought.", "")
    sheet["D9"].comment = Comment("Figures of 2024.", "Bob")  # below the last row, on an empty cell
    path = tmp_path / "budget"
    workbook.save(str(path))
    assert extract_text(path, XLSX) == (
        "Budget\nItem | Cost\nServers | 12000\nComment on A2: Rented, not bought.\n"
        "Comment on B2 by Alice: Includes the spare machine.\nLicences | 3000\nComment on D9 by Bob: Figures of 2024."
    )


def test_xlsx_threaded_comments_read_without_excel_s_notice(tmp_path: Path) -> None:
    # Excel keeps a threaded comment's text in a legacy note too, behind a notice for older versions
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Total", 5])
    notice = (
        "[Threaded comment]\n\nYour version of Excel allows you to read this threaded comment; however, any edits "
        "to it will get removed if the file is opened in a newer version of Excel. Learn more: "
        "https://go.microsoft.com/fwlink/?linkid=870924\n\nComment:\n    Is this the net total?"
    )
    sheet["B1"].comment = Comment(notice, "tc={3C8F3A6E-2B8E-4C4B-9E52-1A2B3C4D5E6F}")
    path = tmp_path / "totals"
    workbook.save(str(path))
    assert extract_text(path, XLSX) == "Sheet\nTotal | 5\nComment on B1: Is this the net total?"


def test_ods_annotations_follow_their_row_and_leave_the_cell_value_alone(tmp_path: Path) -> None:
    # the annotation's paragraphs were read as part of the cell: "Bolt Order more before May | 40"
    document = odfdo.Document("spreadsheet")
    document.body.clear()
    table = odfdo.Table("Inventory")
    table.set_values([["Part", "Count"], ["Bolt", 40], ["Nut", 75]])
    cell = table.get_cell("A2")
    cell.append(odfdo.Annotation("Order more before May.", creator="Carla"))
    table.set_cell("A2", cell)
    document.body.append(table)
    path = tmp_path / "inventory"
    document.save(str(path))
    assert extract_text(path, ODS) == (
        "Inventory\nPart | Count\nBolt | 40\nComment on A2 by Carla: Order more before May.\nNut | 75"
    )


def test_pptx_speaker_notes_follow_their_slide_marked_as_notes(tmp_path: Path) -> None:
    # the notes were indexed as if they were on the slide: "mention the deadline" read as the slide's own text
    presentation, slide = titled_slide("Roadmap")
    slide.notes_slide.notes_text_frame.text = "Mention the deadline.\nThank the team."
    assert (
        deck_text(presentation, tmp_path / "deck") == "Roadmap\nSpeaker notes: Mention the deadline.\nThank the team."
    )


def test_a_damaged_xlsx_comments_part_loses_its_comments_not_the_workbook(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Servers", 12000])
    sheet["B1"].comment = Comment("Includes the spare machine.", "Alice")
    path = tmp_path / "budget"
    workbook.save(str(path))
    damaged = tmp_path / "damaged"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, data[:60] if item.filename.startswith("xl/comments") else data)
    assert extract_text(damaged, XLSX) == "Sheet\nServers | 12000"
    assert "skipped the damaged comments part of sheet 1 of 1: ParseError" in caplog.text


def _renamed_parts(source: Path, target: Path, names: dict[str, str], damaged: str) -> Path:
    """`source` with its parts renamed as `names` says (in the archive, the relationships and the content types) and
    the part `damaged` (by its new name) cut short."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as rewritten:
        for item in archive.infolist():
            name, data = names.get(item.filename, item.filename), archive.read(item)
            if name.endswith((".rels", ".xml")):
                for old, new in names.items():
                    data = data.replace(f"/{old}".encode(), f"/{new}".encode())
            rewritten.writestr(name, data[:60] if name == damaged else data)
    return target


def _budget_with_a_comment_on_sheet_2(path: Path) -> Path:
    workbook = openpyxl.Workbook()
    first = workbook.active
    assert first is not None
    first.append(["Servers", 12000])
    second = workbook.create_sheet("Costs")
    second.append(["Rent", 900])
    second["B1"].comment = Comment("Includes the garage.", "Alice")
    workbook.save(str(path))
    return path


# the second sheet and its comments, named as whoever made the workbook chose: text included
SECRET_PARTS = {
    "xl/worksheets/sheet2.xml": f"xl/worksheets/{SECRET}.xml",
    "xl/worksheets/_rels/sheet2.xml.rels": f"xl/worksheets/_rels/{SECRET}.xml.rels",
    "xl/comments/comment1.xml": f"xl/comments/{SECRET}.xml",
}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def test_a_damaged_xlsx_comments_part_is_named_by_its_sheets_place_never_by_its_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the warning reaches the parser's log; the part's name was quoted there
    source = _budget_with_a_comment_on_sheet_2(tmp_path / "budget")
    path = _renamed_parts(source, tmp_path / "renamed", SECRET_PARTS, SECRET_PARTS["xl/comments/comment1.xml"])
    assert extract_text(path, XLSX) == "Sheet\nServers | 12000\n\nCosts\nRent | 900"
    assert _warnings(caplog) == ["skipped the damaged comments part of sheet 2 of 2: ParseError"]
    assert quoted_secret(caplog.text) == []


def test_a_worksheets_damaged_relationships_are_named_by_its_place_never_by_its_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # openpyxl refuses such a workbook before the comments are read: the archive is read here as the loader does
    source = _budget_with_a_comment_on_sheet_2(tmp_path / "budget")
    cut = SECRET_PARTS["xl/worksheets/_rels/sheet2.xml.rels"]
    with zipfile.ZipFile(_renamed_parts(source, tmp_path / "renamed", SECRET_PARTS, cut)) as archive:
        assert xlsx_comments(archive, SECRET_PARTS["xl/worksheets/sheet2.xml"], "sheet 2 of 2") == {}
    assert _warnings(caplog) == ["skipped the damaged relationships of sheet 2 of 2: ParseError"]
    assert quoted_secret(caplog.text) == []


ODT = "application/vnd.oasis.opendocument.text"
# a comment on a range as LibreOffice writes it: author, date and initials, then its paragraphs (a list among them),
# and an end marker where the commented words end
LIBREOFFICE_COMMENT = (
    '<text:p>Ship <office:annotation office:name="__Annotation__7_42"><dc:creator>Dana  Ito</dc:creator>'
    "<dc:date>2026-05-04T10:00:00</dc:date><meta:creator-initials>DI</meta:creator-initials>"
    "<text:p>Two options:</text:p>"
    '<text:list text:style-name="L9"><text:list-item><text:p>by sea</text:p></text:list-item>'
    "<text:list-item><text:p>by air</text:p></text:list-item></text:list></office:annotation>"
    'the parts<office:annotation-end office:name="__Annotation__7_42"/> in June.</text:p>'
)
NUMBERED_LIST_STYLE = (
    '<text:list-style style:name="L9"><text:list-level-style-number text:level="1" style:num-format="1" '
    'style:num-suffix=")"/></text:list-style>'
)


def test_odt_comments_follow_the_paragraph_they_comment_with_their_author(tmp_path: Path) -> None:
    # odfdo glued "[*]" into the commented word and listed the comment after a "----" line without its author
    document = odfdo.Document("text")
    document.body.clear()
    automatic = document.content.get_element("//office:automatic-styles")
    assert automatic is not None
    automatic.append(odfdo.Element.from_tag(NUMBERED_LIST_STYLE))
    budget = odfdo.Paragraph("The budget is 40,000 EUR.")
    document.body.append(budget)
    budget.insert_annotation(after="budget", body="Please check this against\nthe invoice.", creator="Alice Meyer")
    budget.insert_annotation(after="EUR", body="Net or gross?", creator="Bob")
    document.body.append(odfdo.Element.from_tag(LIBREOFFICE_COMMENT))
    document.body.append(
        odfdo.Element.from_tag(
            "<text:p>Costs<office:annotation><text:p>Since May?</text:p></office:annotation> rose.</text:p>"
        )
    )
    steps = odfdo.List(["Order the parts", "Assemble"])
    steps.style = "L9"
    document.body.append(steps)
    path = tmp_path / "plan"
    document.save(str(path))
    assert extract_text(path, ODT) == (
        "The budget is 40,000 EUR.\n\nComment by Alice Meyer: Please check this against the invoice.\n\n"
        "Comment by Bob: Net or gross?\n\n"
        "Ship the parts in June.\n\nComment by Dana Ito: Two options: 1) by sea 2) by air\n\n"
        "Costs rose.\n\nComment: Since May?\n\n"
        "1) Order the parts\n\n2) Assemble"
    )


def _annotation(author: str, text: str, attributes: str = "") -> str:
    return (
        f"<office:annotation{attributes}><dc:creator>{author}</dc:creator><text:p>{text}</text:p></office:annotation>"
    )


def test_odt_replies_and_comments_in_tables_lists_and_frames_follow_their_paragraph_once_each(tmp_path: Path) -> None:
    # a reply nested in its comment was lost, and its place in the comment's text read "[*]"; a comment in a frame's
    # text box follows the box's paragraph, which follows the paragraph the frame stands in
    document = odt_with_styles(NUMBERED_LIST_STYLE)
    body = (
        # LibreOffice's reply: an annotation of its own at its comment's place, naming it in loext:parent-name
        '<text:p>Ship <office:annotation office:name="__Annotation__1"><dc:creator>Dana</dc:creator>'
        "<text:p>By sea?</text:p></office:annotation>"
        + _annotation("Ed", "No, by air.", ' office:name="__Annotation__2" loext:parent-name="__Annotation__1"')
        + 'the parts<office:annotation-end office:name="__Annotation__1"/> in June.</text:p>',
        "<text:p>Costs <office:annotation><dc:creator>Flo</dc:creator><text:p>Since May?"
        + _annotation("Gil", "Since April.")
        + " Check.</text:p></office:annotation>rose.</text:p>",
        '<table:table table:name="Team"><table:table-column/><table:table-column/><table:table-row><table:table-cell>'
        "<text:p>Lead</text:p></table:table-cell><table:table-cell><text:p>Bob"
        + _annotation("Hal", "Left in March.")
        + "</text:p></table:table-cell></table:table-row></table:table>",
        '<text:list text:style-name="L9"><text:list-item><text:p>Order'
        + _annotation("Ida", "Which supplier?")
        + " the parts</text:p></text:list-item><text:list-item><text:p>Assemble</text:p></text:list-item></text:list>",
        '<text:p>See <draw:frame draw:name="Box" text:anchor-type="as-char"><draw:text-box><text:p>Fig. 1'
        + _annotation("Jo", "Fix the caption.")
        + "</text:p></draw:text-box></draw:frame></text:p>",
    )
    assert odt_text(document, body, tmp_path / "plan") == (
        "Ship the parts in June.\n\nComment by Dana: By sea?\n\nComment by Ed: No, by air.\n\n"
        "Costs rose.\n\nComment by Flo: Since May? Check.\n\nComment by Gil: Since April.\n\n"
        "Lead | Bob Comment by Hal: Left in March.\n\n"
        "1) Order the parts\n\nComment by Ida: Which supplier?\n\n2) Assemble\n\n"
        "See\n\nFig. 1\n\nComment by Jo: Fix the caption."
    )

"""OpenDocument text files: what LibreOffice shows is what gets indexed."""

import io
import pwd
import zipfile
from pathlib import Path

import odfdo
import pytest
from office_kit import FORMULA_CONTENT, FORMULA_FRAME, PIXEL, odt_text, odt_with_styles

from quart_app.chunking import ChunkerSpec
from quart_app.loaders import DocumentTooLargeError, ParseLimits, ParsePool, extract_text
from quart_app.loaders.tabular_loader import MAX_REPEAT

ODT = "application/vnd.oasis.opendocument.text"
# a LibreOffice chart object's part: no formula, whose text would stand in the frame's place
CHART_CONTENT = (
    '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:chart="urn:oasis:names:tc:opendocument:xmlns:chart:1.0"><office:body><office:chart>'
    '<chart:chart chart:class="chart:bar"/></office:chart></office:body></office:document-content>'
)


def test_odt_pictures_do_not_put_their_file_names_in_the_text(tmp_path: Path) -> None:
    # odfdo formats a picture as "[Image Pictures/<hash>]": a name nobody reads, glued to the caption before it
    document = odfdo.Document("text")
    document.body.clear()
    document.body.append(odfdo.Paragraph("Before the picture."))
    picture = document.add_file(io.BytesIO(PIXEL))
    captioned = odfdo.Paragraph("Figure 1: the harbour")
    captioned.append(odfdo.Frame.image_frame(picture, size=("1cm", "1cm"), position=("0cm", "0cm")))
    document.body.append(captioned)
    document.body.append(odfdo.Paragraph("After the picture."))
    path = tmp_path / "report"
    document.save(str(path))
    assert extract_text(path, ODT) == "Before the picture.\n\nFigure 1: the harbour\n\nAfter the picture."


def test_odt_an_inline_picture_leaves_its_sentence_whole(tmp_path: Path) -> None:
    # odfdo ended the picture's frame with a line break: "See the map\n of the site." cut the sentence in two
    picture = (
        '<draw:frame draw:name="{name}" text:anchor-type="as-char" svg:width="1cm" svg:height="1cm">'
        '<draw:image xlink:href="Pictures/map.png" xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/>'
        "</draw:frame>"
    )
    body = (
        f"<text:p>See the map {picture.format(name='Map')} of the site.</text:p>",
        f"<text:p>{picture.format(name='Logo')}ACME GmbH</text:p>",
    )
    assert odt_text(odt_with_styles(), body, tmp_path / "site") == "See the map of the site.\n\nACME GmbH"


def test_odt_a_picture_s_alt_text_is_indexed_where_it_stands_without_breaking_its_sentence(tmp_path: Path) -> None:
    # odfdo formatted a frame's svg:title and svg:desc as lines of their own, and ended the frame with a line break:
    # "See the map Site map\nThe harbour ...\n\n of the site."
    image = '<draw:image xlink:href="Pictures/map.png" xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/>'
    frame = '<draw:frame draw:name="{name}" text:anchor-type="{anchor}" svg:width="1cm">{inside}</draw:frame>'
    title, desc = "<svg:title>{}</svg:title>", "<svg:desc>{}</svg:desc>"
    body = (
        "<text:p>See the map "
        + frame.format(
            name="Map", anchor="as-char", inside=image + title.format("Site map") + desc.format("The harbour")
        )
        + " of the site.</text:p>",
        # a description over two lines, glued to the words around it
        "<text:p>Total"
        + frame.format(name="Chart", anchor="as-char", inside=image + desc.format("Sales\n  by region"))
        + ", then ACME GmbH.</text:p>",
        # a linked picture (its frame in a draw:a, which odfdo formatted as nothing)
        '<text:p>Press <draw:a xlink:type="simple" xlink:href="https://example.com/">'
        + frame.format(name="Home", anchor="as-char", inside=image + title.format("Home button"))
        + "</draw:a> to go back.</text:p>",
        # anchored to the page: a paragraph of its own; a title repeated as the description is read once
        frame.format(name="Plan", anchor="page", inside=image + title.format("Floor plan") + desc.format("Floor plan")),
        # a text box's frame keeps its alt text in its place too, its paragraphs after
        "<text:p>See the box "
        + frame.format(
            name="Hours",
            anchor="as-char",
            inside="<draw:text-box><text:p>9 to 5.</text:p></draw:text-box>" + title.format("Hours"),
        )
        + " for details.</text:p>",
    )
    assert odt_text(odt_with_styles(), body, tmp_path / "site") == (
        "See the map Site map: The harbour of the site.\n\nTotal Sales by region, then ACME GmbH.\n\n"
        "Press Home button to go back.\n\nFloor plan\n\n"
        "See the box Hours for details.\n\n9 to 5."
    )


def test_odt_formulas_are_indexed_where_they_stand(tmp_path: Path) -> None:
    # a LibreOffice formula is an embedded object odfdo does not read: "The rest energy is  for a body at rest."
    document = odfdo.Document("text")
    document.body.clear()
    # as LibreOffice writes it: the frame anchored as a character inside the sentence
    document.body.append(
        odfdo.Element.from_tag(f"<text:p>The rest energy is {FORMULA_FRAME} for a body at rest.</text:p>")
    )
    path = tmp_path / "physics"
    document.save(str(path))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("Object 1/content.xml", FORMULA_CONTENT)
    assert extract_text(path, ODT) == "The rest energy is E = m c^2 for a body at rest."


def test_odt_a_chart_s_frame_reads_as_its_alt_text_without_breaking_its_sentence(tmp_path: Path) -> None:
    # a chart is an embedded object as a formula is, but no formula: odfdo ended its frame with a line break, "Sales
    # grew\n in the north.", and read its alt text as lines of their own
    chart = (
        '<draw:frame draw:name="{name}" text:anchor-type="as-char" svg:width="8cm" svg:height="5cm">'
        '<{kind} xlink:href="./{name}" xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/>{image}{alt}'
        "</draw:frame>"
    )
    image = '<draw:image xlink:href="./ObjectReplacements/{name}" xlink:type="simple" xlink:show="embed"/>'

    def frame(name: str, alt: str = "", kind: str = "draw:object", replaced: bool = True) -> str:
        return chart.format(name=name, kind=kind, image=image.format(name=name) if replaced else "", alt=alt)

    alt = "<svg:title>Sales chart</svg:title><svg:desc>North up 20%</svg:desc>"
    body = (
        f"<text:p>Sales grew {frame('Object 1')} in the north.</text:p>",
        f"<text:p>See {frame('Object 2', alt)} below.</text:p>",
        # an OLE object (a spreadsheet pasted from Office), and a chart saved without its replacement picture
        f"<text:p>Costs {frame('Object 3', kind='draw:object-ole')} fell {frame('Object 4', replaced=False)} too."
        "</text:p>",
    )
    document = odt_with_styles()
    for xml in body:
        document.body.append(odfdo.Element.from_tag(xml))
    path = tmp_path / "sales"
    document.save(str(path))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("Object 1/content.xml", CHART_CONTENT)
    assert extract_text(path, ODT) == (
        "Sales grew in the north.\n\nSee Sales chart: North up 20% below.\n\nCosts fell too."
    )


def test_odt_encoded_spaces_keep_words_apart(tmp_path: Path) -> None:
    # odfdo formats a text:s as nothing, and writes a run's last space as one itself: "Price:40 EUR, due in May."
    document = odt_with_styles()
    priced = odfdo.Paragraph("Price: ")
    priced.append(odfdo.Span("40 EUR"))
    priced.append(", due  in May.")
    document.body.append(priced)
    body = ['<text:p>Code:<text:s text:c="3"/>7<text:s text:c="x"/>B</text:p>']
    assert odt_text(document, body, tmp_path / "invoice") == "Price: 40 EUR, due  in May.\n\nCode:   7 B"


def test_odt_text_boxes_are_paragraphs_of_their_own_after_the_one_they_stand_in(tmp_path: Path) -> None:
    # odfdo indented a box's paragraphs by two spaces inside the paragraph of its frame, a blank line after each:
    # "See the box   Opening hours:\n  \n  9 to 5.\n  \n for details."
    body = (
        # as LibreOffice writes them: a box anchored as a character in a sentence, one anchored to the page
        '<text:p>See the box <draw:frame draw:name="Hours" text:anchor-type="as-char" svg:width="4cm">'
        "<draw:text-box><text:p>Opening hours:</text:p><text:p>9 to 5.</text:p></draw:text-box></draw:frame> for "
        "details.</text:p>",
        '<draw:frame draw:name="Stamp" text:anchor-type="page" text:anchor-page-number="1" svg:width="3cm">'
        "<draw:text-box><text:p>Draft</text:p></draw:text-box></draw:frame>",
        "<text:p>Closed on Sundays.</text:p>",
    )
    assert odt_text(odt_with_styles(), body, tmp_path / "shop") == (
        "See the box for details.\n\nOpening hours:\n\n9 to 5.\n\nDraft\n\nClosed on Sundays."
    )


def _cells(*texts: str) -> str:
    return "".join(f"<table:table-cell>{text}</table:table-cell>" for text in texts)


def test_odt_table_rows_read_as_lines_of_cells_as_in_a_docx(tmp_path: Path) -> None:
    # odfdo formatted every cell as a paragraph of its own: "Alice\n30\nParis", a row a chunk could cut apart
    document = odt_with_styles()
    document.body.append(odfdo.Paragraph("Staff:"))
    staff = odfdo.Table("Staff")
    staff.set_values([["Name", "Age", "City"], ["Alice", "30", "Paris"]])
    document.body.append(staff)
    rows = [
        # a header row; a cell spanning two columns, whose covered cell is no cell of its own
        "<table:table-header-rows><table:table-row>"
        + _cells("", "<text:p>Q1</text:p>", "<text:p>Q2</text:p>")
        + "</table:table-row></table:table-header-rows>",
        '<table:table-row><table:table-cell table:number-columns-spanned="2"><text:p>Closed all quarter</text:p>'
        "</table:table-cell><table:covered-table-cell/>" + _cells("<text:p>12</text:p>") + "</table:table-row>",
        # two paragraphs and a line break in a cell, an empty cell between two, empty ones at the end
        "<table:table-row>"
        + _cells("<text:p>North</text:p><text:p>region</text:p>", "", "<text:p>4<text:line-break/>units</text:p>")
        + _cells("", "")
        + "</table:table-row>",
        "<table:table-row>" + _cells("", "") + "</table:table-row>",
        # a table nested in a cell reads as part of its cell
        "<table:table-row>"
        + _cells(
            "<text:p>Notes</text:p>",
            '<table:table table:name="Inner"><table:table-row>'
            + _cells("<text:p>a</text:p>", "<text:p>b</text:p>")
            + "</table:table-row><table:table-row>"
            + _cells("<text:p>c</text:p>")
            + "</table:table-row></table:table>",
        )
        + "</table:table-row>",
    ]
    body = [f'<table:table table:name="Sales">{"".join(rows)}</table:table>', "<text:p>End.</text:p>"]
    assert odt_text(document, body, tmp_path / "report") == (
        "Staff:\n\nName | Age | City\nAlice | 30 | Paris\n\n"
        "Q1 | Q2\nClosed all quarter | 12\nNorth region |  | 4 units\nNotes | a | b c\n\nEnd."
    )


def test_odt_a_repeated_table_cell_reads_as_many_cells_as_it_stands_for(tmp_path: Path) -> None:
    # a cell with table:number-columns-repeated counted once: "Mon | open" where LibreOffice shows "Mon | open | open"
    repeated = '<table:table-cell table:number-columns-repeated="{times}">{text}</table:table-cell>'
    rows = [
        _cells("<text:p>Mon</text:p>") + repeated.format(times=3, text="<text:p>open</text:p>"),
        # a cell of formatted text (not plain text) repeated; blank filler between cells still counts once
        repeated.format(times=2, text='<text:p>closed <text:span text:style-name="T1">late</text:span></text:p>')
        + repeated.format(times=4, text="")
        + _cells("<text:p>Sun</text:p>"),
        # a crafted count repeats the text MAX_REPEAT times (as an .ods row), not a million
        repeated.format(times=1_000_000, text="<text:p>x</text:p>"),
    ]
    table = "".join(f"<table:table-row>{row}</table:table-row>" for row in rows)
    assert odt_text(
        odt_with_styles(), [f'<table:table table:name="Hours">{table}</table:table>'], tmp_path / "hours"
    ) == ("Mon | open | open | open\nclosed late | closed late |  | Sun\n" + " | ".join(["x"] * MAX_REPEAT))


def test_odt_a_repeated_table_row_reads_as_many_lines_as_it_stands_for(tmp_path: Path) -> None:
    # a row with table:number-rows-repeated counted once: one "Shift | 9 to 5" where LibreOffice shows three
    repeated = '<table:table-row table:number-rows-repeated="{times}">{cells}</table:table-row>'
    rows = [
        repeated.format(times=1, cells=_cells("<text:p>Day</text:p>", "<text:p>Hours</text:p>")),
        repeated.format(times=3, cells=_cells("<text:p>Shift</text:p>", "<text:p>9 to 5</text:p>")),
        # blank filler rows (LibreOffice writes thousands) still add nothing
        repeated.format(times=1000, cells=_cells("", "")),
        # a row of formatted text (not plain text) repeated, its repeated cells too
        repeated.format(
            times=2,
            cells='<table:table-cell table:number-columns-repeated="2"><text:p>on <text:span text:style-name="T1">call'
            "</text:span></text:p></table:table-cell>",
        ),
        # a crafted count repeats the line MAX_REPEAT times (as an .ods row), not a million
        repeated.format(times=1_000_000, cells=_cells("<text:p>x</text:p>")),
    ]
    table = f'<table:table table:name="Rota">{"".join(rows)}</table:table>'
    assert odt_text(odt_with_styles(), [table, "<text:p>End.</text:p>"], tmp_path / "rota") == (
        "Day | Hours\n"
        + "Shift | 9 to 5\n" * 3
        + "on call | on call\n" * 2
        + "\n".join(["x"] * MAX_REPEAT)
        + "\n\nEnd."
    )


async def test_odt_repeated_rows_of_repeated_big_cells_are_refused_at_the_text_limit_before_being_copied(
    tmp_path: Path, chunker_spec: ChunkerSpec, parser_user: pwd.struct_passwd | None
) -> None:
    # 100 rows of 100 cells of 20,000 characters would be 200 million characters: far more than memory_mb=256 holds
    # (5,592,405 characters of text); the copies are counted before any is made, so the file is refused as too long
    # instead of exhausting the worker's memory
    limits = ParseLimits(memory_mb=256)
    big_cell = "<text:p>" + "word " * 4_000 + "</text:p>"
    row = f'<table:table-cell table:number-columns-repeated="100">{big_cell}</table:table-cell>'
    table = (
        f'<table:table table:name="Big"><table:table-row table:number-rows-repeated="100">{row}</table:table-row>'
        "</table:table>"
    )
    document = odt_with_styles()
    document.body.append(odfdo.Element.from_tag(table))
    path = tmp_path / "crafted"
    document.save(str(path))
    async with ParsePool(1, limits, chunker=chunker_spec) as pool:
        with pytest.raises(DocumentTooLargeError, match=rf"^crafted \({ODT}\): the text is longer than 5,592,405 "):
            await pool.parse_and_chunk(path, ODT)

"""Content the author hid (hidden text, sections, sheets, slides and shapes) is not indexed: an answer must not quote
text the user cannot see in the document it cites. Hidden rows and columns are indexed: filters hide them, not
authors."""

import io
import struct
from pathlib import Path
from typing import Any

import docx
import odfdo
import openpyxl
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from extract_msg.ole_writer import OleWriter
from loader_fixture_files import ppt_record
from office_kit import PIXEL, deck_text, docx_text, equation_text_box, odt_text, odt_with_styles, titled_slide
from pptx.oxml import parse_xml as parse_pptx_xml
from pptx.util import Inches

from quart_app.loaders import extract_text

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODT = "application/vnd.oasis.opendocument.text"


def test_hidden_pptx_slides_are_left_out(tmp_path: Path) -> None:
    presentation, _ = titled_slide("Quarterly results")
    hidden = presentation.slides.add_slide(presentation.slide_layouts[5])
    hidden.shapes.title.text = "Draft: layoffs under discussion"
    hidden.element.set("show", "0")
    shown = presentation.slides.add_slide(presentation.slide_layouts[5])
    shown.shapes.title.text = "Outlook"
    assert deck_text(presentation, tmp_path / "deck") == "Quarterly results\n\nOutlook"


def _hide(shape: Any, value: str = "1") -> Any:
    """The shape hidden as PowerPoint's Selection Pane hides it (hidden on its p:cNvPr)."""
    shape._element[0][0].set("hidden", value)
    return shape


def test_hidden_pptx_shapes_are_left_out(tmp_path: Path) -> None:
    # a shape hidden in the Selection Pane is not shown in the slide show, yet its text and alt text were indexed
    presentation, slide = titled_slide("Pricing")
    shapes = slide.shapes
    _hide(shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1))).text_frame.text = "Floor price: 60 EUR"
    shapes.add_textbox(Inches(1), Inches(2), Inches(4), Inches(1)).text_frame.text = "List price: 80 EUR"
    picture = _hide(shapes.add_picture(io.BytesIO(PIXEL), 0, 0), "true")
    picture._element[0][0].set("descr", "Margin chart of the draft")
    table = _hide(shapes.add_table(1, 2, 0, 0, Inches(4), Inches(1)))
    table.table.cell(0, 0).text, table.table.cell(0, 1).text = "Discount", "40%"
    # a hidden group hides its children, shown or not
    group = _hide(shapes.add_group_shape())
    group.shapes.add_textbox(0, 0, Inches(1), Inches(1)).text_frame.text = "Ask Bob before quoting"
    # an equation's text box is the first choice of an mc:AlternateContent
    equation = equation_text_box("Cost is ", " per unit").replace(
        'name="TextBox 6"/>', 'name="TextBox 6" hidden="1"/>', 1
    )
    shapes._spTree.append(parse_pptx_xml(equation))
    _hide(shapes.add_textbox(0, 0, Inches(1), Inches(1)), "0").text_frame.text = "Valid until May"
    assert deck_text(presentation, tmp_path / "pricing") == "Pricing\nList price: 80 EUR\nValid until May"


PPT = "application/vnd.ms-powerpoint"


def _ppt_slide(box_text: bytes, hidden: bool | None) -> bytes:
    """A SlideContainer with a text box; `hidden` None leaves out the optional slide show atom."""
    show = b"" if hidden is None else ppt_record(0x03F9, bytes(10) + struct.pack("<H", 4 if hidden else 0) + bytes(4))
    textbox = ppt_record(0xF00D, ppt_record(0x0FA8, box_text), container=True)
    slide: bytes = ppt_record(0x03EE, ppt_record(0x03EF, bytes(24)) + show + ppt_record(0xF002, textbox, True), True)
    return slide


def _ppt_notes(slide_id: int, text: bytes) -> bytes:
    textbox = ppt_record(0xF00D, ppt_record(0x0FA8, text), container=True)
    notes_atom = ppt_record(0x03F1, struct.pack("<II", slide_id, 0))
    notes: bytes = ppt_record(0x03F0, notes_atom + ppt_record(0xF002, textbox, container=True), container=True)
    return notes


def _ppt_slide_list(*slides: tuple[bytes, ...]) -> bytes:
    """A document whose slide list holds each slide's placeholder texts, slide n under persist id n + 2."""
    slide_list = b"".join(
        ppt_record(0x03F3, struct.pack("<IIIII", 2 + index, 0, len(texts), 256 + index, 0))
        + b"".join(ppt_record(0x0F9F, struct.pack("<I", 0)) + ppt_record(0x0FA8, text) for text in texts)
        for index, texts in enumerate(slides)
    )
    document: bytes = ppt_record(0x03E8, ppt_record(0x0FF0, slide_list, container=True), container=True)
    return document


def _ppt_file(path: Path, document: bytes, slides: list[bytes], tail: bytes = b"") -> Path:
    """A .ppt of the document, its slides and `tail`, the persist directory naming the document (id 1) and the slides
    (ids 2 on) by their offsets."""
    offsets = [0]
    for part in (document, *slides):
        offsets.append(offsets[-1] + len(part))
    stream = document + b"".join(slides) + tail
    directory_offset = len(stream)
    stream += ppt_record(0x1772, struct.pack(f"<{len(offsets)}I", 1 | len(offsets) - 1 << 20, *offsets[:-1]))
    user_edit_offset = len(stream)
    stream += ppt_record(0x0FF5, struct.pack("<IHBBIIIIHH", 0, 0, 0, 3, 0, directory_offset, 1, 5, 0, 0))
    current_user = ppt_record(0x0FF6, struct.pack("<IIIHHBBH", 0x14, 0xE391C05F, user_edit_offset, 0, 0x03F4, 3, 0, 0))
    writer = OleWriter()
    writer.addEntry("PowerPoint Document", stream)
    writer.addEntry("Current User", current_user)
    writer.write(str(path))
    return path


def test_hidden_ppt_slides_are_left_out(tmp_path: Path) -> None:
    # a legacy .ppt's hidden slide was read like any other: its title, its text boxes and its notes
    titles = (b"Quarterly results",), (b"Draft: layoffs under discussion",), (b"Outlook",)
    slides = [
        _ppt_slide(b"Revenue grew", False),
        _ppt_slide(b"Names of the people affected", True),
        _ppt_slide(b"Growth continues", None),
    ]
    notes = _ppt_notes(257, b"Do not read this out") + _ppt_notes(256, b"Thank the team")
    path = _ppt_file(tmp_path / "deck", _ppt_slide_list(*titles), slides, notes)
    assert (
        extract_text(path, PPT) == "Quarterly results\n\nOutlook\n\nRevenue grew\n\nGrowth continues\n\nThank the team"
    )


def _ppt_shape(content: bytes, booleans: int | None = None, table: int = 0xF00B) -> bytes:
    """An OfficeArtSpContainer whose property `table` sets its Group Shape Boolean Properties to `booleans`."""
    properties = b"" if booleans is None else ppt_record(table, struct.pack("<HI", 0x03BF, booleans), instance=1)
    shape: bytes = ppt_record(0xF004, ppt_record(0xF00A, bytes(8)) + properties + content, container=True)
    return shape


def _ppt_text_box(text: bytes) -> bytes:
    return ppt_record(0xF00D, ppt_record(0x0FA8, text), container=True)


def _ppt_placeholder(index: int) -> bytes:
    """A placeholder's text box, naming its text by its index among the slide's texts in the slide list."""
    return ppt_record(0xF00D, ppt_record(0x0F9E, struct.pack("<I", index)), container=True)


def test_hidden_ppt_shapes_are_left_out(tmp_path: Path) -> None:
    # a shape hidden in the Selection Pane (fHidden with fUsefHidden) was read as if the slide show showed it
    hidden, hidden_unset = 0x0002_0002, 0x0000_0002
    group = ppt_record(
        0xF003,
        _ppt_shape(b"", hidden) + _ppt_shape(_ppt_text_box(b"Ask Bob before quoting")),
        container=True,
    )
    shapes = (
        _ppt_shape(_ppt_placeholder(0))
        + _ppt_shape(_ppt_placeholder(1), hidden)
        + _ppt_shape(_ppt_text_box(b"Floor price: 60 EUR"), hidden)
        + _ppt_shape(_ppt_text_box(b"List price: 80 EUR"), 0x0002_0000)
        + group
        + _ppt_shape(_ppt_text_box(b"Margin: 25%"), hidden, table=0xF122)
        # fHidden without its fUsefHidden bit is ignored: the default, shown, stands
        + _ppt_shape(_ppt_text_box(b"Valid until May"), hidden_unset)
    )
    drawing = ppt_record(0xF002, ppt_record(0xF003, shapes, container=True), container=True)
    slide = ppt_record(0x03EE, ppt_record(0x03EF, bytes(24)) + drawing, container=True)
    document = _ppt_slide_list((b"Pricing", b"Internal: margin 30%", b"Prices in EUR"))
    path = _ppt_file(tmp_path / "pricing", document, [slide])
    assert extract_text(path, PPT) == "Pricing\n\nPrices in EUR\n\nList price: 80 EUR\n\nValid until May"


def test_hidden_docx_runs_are_left_out(tmp_path: Path) -> None:
    document = docx.Document()
    paragraph = document.add_paragraph("The price is ")
    paragraph.add_run("(old price: 90 EUR) ").font.hidden = True
    paragraph.add_run("80 EUR.")
    document.add_paragraph().add_run("Internal note: do not send.").font.hidden = True
    shown = document.add_paragraph()
    run = shown.add_run("Valid until May.")
    run._r.get_or_add_rPr().append(parse_xml(f'<w:vanish {nsdecls("w")} w:val="false"/>'))
    assert docx_text(document, tmp_path / "offer") == "The price is 80 EUR.\n\nValid until May."


def test_docx_text_hidden_by_its_character_or_paragraph_style_is_left_out(tmp_path: Path) -> None:
    # only w:vanish on the run itself was read: a "Secret" character style's text was indexed
    document = docx.Document()
    secret = document.styles.add_style("Secret", WD_STYLE_TYPE.CHARACTER)
    secret.font.hidden = True
    internal = document.styles.add_style("Internal", WD_STYLE_TYPE.CHARACTER)
    internal.base_style = secret  # hidden through basedOn
    shown = document.styles.add_style("Shown", WD_STYLE_TYPE.CHARACTER)
    shown.base_style = secret
    shown.font.hidden = False
    draft = document.styles.add_style("Draft note", WD_STYLE_TYPE.PARAGRAPH)
    draft.font.hidden = True
    draft_child = document.styles.add_style("Draft detail", WD_STYLE_TYPE.PARAGRAPH)
    draft_child.base_style = draft
    paragraph = document.add_paragraph("The price is ")
    paragraph.add_run("(old price: 90 EUR) ", style="Internal")
    paragraph.add_run("80 EUR", style="Shown")
    paragraph.add_run(" (margin 30%)", style="Secret")
    paragraph.add_run(".")
    document.add_paragraph("Internal note: do not send.", style="Draft detail")
    document.add_paragraph("Ask Bob first. ", style="Draft note").add_run("Valid until May.").font.hidden = False
    assert docx_text(document, tmp_path / "offer") == "The price is 80 EUR.\n\nValid until May."


HIDDEN_ODT_STYLES = (
    '<style:style style:name="T1" style:family="text"><style:text-properties text:display="none"/></style:style>'
    '<style:style style:name="P1" style:family="paragraph"><style:text-properties text:display="none"/>'
    "</style:style>"
)


def test_hidden_odt_text_paragraphs_and_sections_are_left_out(tmp_path: Path) -> None:
    document = odt_with_styles(HIDDEN_ODT_STYLES)
    body = (
        '<text:p>The price is <text:span text:style-name="T1">(old price: 90 EUR) </text:span>80 EUR.</text:p>',
        '<text:p text:style-name="P1">A paragraph formatted as hidden.</text:p>',
        '<text:p><text:hidden-paragraph text:condition="ooow:1" text:is-hidden="true"/>Hidden by a condition.</text:p>',
        '<text:section text:name="Draft" text:display="none"><text:p>A hidden section.</text:p></text:section>',
        '<text:section text:name="Final"><text:p>Valid until May.</text:p></text:section>',
        '<text:p>Ends <text:hidden-text text:condition="ooow:1" text:string-value="secret " text:is-hidden="true"/>'
        "here.</text:p>",
    )
    assert odt_text(document, body, tmp_path / "offer") == "The price is 80 EUR.\n\nValid until May.\n\nEnds here."


def test_hidden_xlsx_sheets_are_left_out_hidden_rows_are_not(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Prices"
    sheet.append(["Bolt", 2])
    sheet.append(["Nut", 1])
    sheet.row_dimensions[2].hidden = True  # filtered out: still the workbook's data
    lookup = workbook.create_sheet("Margins")
    lookup.append(["Bolt margin", 0.4])
    lookup.sheet_state = "hidden"
    secret = workbook.create_sheet("Codes")
    secret.append(["Supplier code", 1234])
    secret.sheet_state = "veryHidden"
    path = tmp_path / "prices"
    workbook.save(str(path))
    assert extract_text(path, XLSX) == "Prices\nBolt | 2\nNut | 1"


def test_hidden_ods_sheets_are_left_out(tmp_path: Path) -> None:
    document = odfdo.Document("spreadsheet")
    document.body.clear()
    automatic = document.content.get_element("//office:automatic-styles")
    assert automatic is not None
    automatic.append(
        odfdo.Element.from_tag(
            '<style:style style:name="ta2" style:family="table"><style:table-properties table:display="false"/>'
            "</style:style>"
        )
    )
    shown = odfdo.Table("Prices")
    shown.set_values([["Bolt", 2]])
    hidden = odfdo.Table("Margins")
    hidden.set_values([["Bolt margin", 0.4]])
    hidden.set_attribute("table:style-name", "ta2")
    document.body.append(shown)
    document.body.append(hidden)
    path = tmp_path / "prices"
    document.save(str(path))
    assert extract_text(path, ODS) == "Prices\nBolt | 2"


def test_odt_text_hidden_through_an_inherited_style_is_left_out(tmp_path: Path) -> None:
    # an automatic style inheriting text:display="none" from a common style of styles.xml was not seen as hidden
    document = odt_with_styles(
        automatic='<style:style style:name="T2" style:family="text" style:parent-style-name="Secret">'
        '<style:text-properties fo:font-weight="bold"/></style:style>'
        '<style:style style:name="T3" style:family="text" style:parent-style-name="Secret">'
        '<style:text-properties text:display="true"/></style:style>'
        '<style:style style:name="P2" style:family="paragraph" style:parent-style-name="Draft"/>',
        common='<style:style style:name="Secret" style:family="text"><style:text-properties text:display="none"/>'
        "</style:style>"
        '<style:style style:name="Draft" style:family="paragraph"><style:text-properties text:display="none"/>'
        "</style:style>",
    )
    body = (
        '<text:p>The price is <text:span text:style-name="T2">(old price: 90 EUR) </text:span>'
        '<text:span text:style-name="T3">80 EUR</text:span><text:span text:style-name="Secret"> (margin 30%)'
        "</text:span>.</text:p>",
        '<text:p text:style-name="P2">Internal note: do not send.</text:p>',
        "<text:p>Valid until May.</text:p>",
    )
    assert odt_text(document, body, tmp_path / "offer") == "The price is 80 EUR.\n\nValid until May."


def test_a_ppt_cut_off_inside_a_slide_list_keeps_the_text_before_the_cut(tmp_path: Path) -> None:
    # the slide list's last SlidePersistAtom claims 20 bytes the stream no longer has: the whole file failed to parse
    cut = ppt_record(0x0FA8, b"Kept text") + struct.pack("<HHI", 0, 0x03F3, 20) + b"abc"
    slide_list = struct.pack("<HHI", 0xF, 0x0FF0, len(cut) + 17) + cut
    writer = OleWriter()
    writer.addEntry("PowerPoint Document", struct.pack("<HHI", 0xF, 0x03E8, len(slide_list) + 17) + slide_list)
    writer.addEntry("Current User", b"\x00" * 20)
    path = tmp_path / "cut"
    writer.write(str(path))
    assert extract_text(path, PPT) == "Kept text"

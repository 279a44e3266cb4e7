"""Every supported mimetype parses to the expected text; decoding and normalization rules."""

import codecs
import re
import zipfile
from pathlib import Path

import docx
import odfdo
import pptx
import pytest
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from loader_fixture_files import FIXTURES, GERMAN, write_ods, write_pdf, write_txt_cp1252, write_xlsx
from office_kit import (
    SMARTART_DATA,
    add_inline_drawing,
    chart_data,
    deck_text,
    docx_text,
    equation_text_box,
    titled_slide,
)
from pptx.chart.data import CategoryChartData, XyChartData
from pptx.chart.xmlwriter import ChartXmlWriter
from pptx.enum.chart import XL_CHART_TYPE
from pptx.opc.constants import CONTENT_TYPE as CT
from pptx.opc.constants import RELATIONSHIP_TYPE as RT
from pptx.opc.package import Part
from pptx.opc.packuri import PackURI
from pptx.oxml import parse_xml as parse_pptx_xml
from pptx.util import Inches
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, TextStringObject

from quart_app.loaders import SUPPORTED_MIMETYPES, extract_text, normalize_text
from quart_app.loaders.chart_text import MAX_POINTS_PER_SERIES

UPSTREAM_MIMETYPES = {
    "text/plain", "text/markdown", "application/json", "application/pdf", "text/csv", "application/epub+zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.ms-excel.sheet.macroEnabled.12", "application/vnd.oasis.opendocument.text", "text/rtf",
    "text/x-rst", "application/xml", "message/rfc822", "application/vnd.ms-outlook", "text/org",
}  # fmt: skip


def test_supported_mimetypes_are_upstreams_19_plus_html() -> None:
    assert len(UPSTREAM_MIMETYPES) == 19
    assert frozenset({*UPSTREAM_MIMETYPES, "text/html"}) == SUPPORTED_MIMETYPES
    assert set(FIXTURES) == SUPPORTED_MIMETYPES


@pytest.mark.parametrize("mimetype", sorted(FIXTURES))
def test_fixture_parses_to_expected_text(mimetype: str, tmp_path: Path) -> None:
    writer, expected, forbidden = FIXTURES[mimetype]
    text = extract_text(writer(tmp_path), mimetype)
    for phrase in expected:
        assert phrase in text
    for phrase in forbidden:
        assert phrase not in text
    assert text == normalize_text(text)


def test_mimetype_parameters_and_case_are_ignored(tmp_path: Path) -> None:
    writer, expected, _ = FIXTURES["application/vnd.ms-excel.sheet.macroEnabled.12"]
    path = writer(tmp_path)
    assert expected[0] in extract_text(path, "Application/VND.ms-excel.sheet.macroenabled.12; charset=binary")


def test_cp1252_german_text_is_decoded_not_dropped(tmp_path: Path) -> None:
    text = extract_text(write_txt_cp1252(tmp_path), "text/plain")
    assert text.splitlines() == [GERMAN] * 3


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-32"])
def test_bom_encodings(encoding: str, tmp_path: Path) -> None:
    path = tmp_path / "bom"
    path.write_bytes(GERMAN.encode(encoding))
    assert extract_text(path, "text/markdown") == GERMAN


def test_utf16_without_bom_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "utf16le"
    path.write_bytes(codecs.encode(("Grüße aus Köln und München. " * 20), "utf-16-le"))
    assert extract_text(path, "text/plain").startswith("Grüße aus Köln und München.")


def test_csv_with_cp1252_and_tabs(tmp_path: Path) -> None:
    path = tmp_path / "tabs"
    path.write_bytes("Stadt\tEinwohner\nKöln\t1084795\nDüsseldorf\t629047\n".encode("cp1252"))
    assert extract_text(path, "text/csv") == "Stadt | Einwohner\nKöln | 1084795\nDüsseldorf | 629047"


def test_html_in_email_without_plain_part(tmp_path: Path) -> None:
    path = tmp_path / "htmlmail"
    path.write_bytes(
        b"Subject: News\r\nFrom: a@example.org\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><body><p>Big <i>news</i></p><p>today</p></body></html>"
    )
    assert extract_text(path, "message/rfc822") == "Subject: News\nFrom: a@example.org\n\nBig news\n\ntoday"


@pytest.mark.parametrize(
    "markup",
    [
        # </head> and <body> are optional in HTML: the body's first element or text ends the head
        b"<html><head><title>Team</title><meta charset=utf-8><body><p>Hello body</p></body></html>",
        b"<!doctype html><html><head><title>Team</title><style>p{color:red}</style><p>Hello body",
        b"<html><head><title>Team</title><script>var a = 1;</script>Hello body",
    ],
)
def test_html_body_after_an_unclosed_head_is_kept(tmp_path: Path, markup: bytes) -> None:
    # the whole page used to be skipped as part of <head>: only its title was indexed
    path = tmp_path / "page.html"
    path.write_bytes(markup)
    assert extract_text(path, "text/html") == "# Team\n\nHello body"


def test_docx_tables_nested_in_cells_are_kept(tmp_path: Path) -> None:
    # python-docx's cell.text has the cell's paragraphs only: the words of a table inside a cell were never indexed
    document = docx.Document()
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Name"
    inner = table.cell(0, 1).add_table(rows=2, cols=1)
    inner.cell(0, 0).text = "Alice"
    inner.cell(1, 0).text = "Bob"
    text = docx_text(document, tmp_path / "nested.docx")
    assert text == "Name | Alice Bob"


def test_html_svg_titles_stay_out_of_the_page_title(tmp_path: Path) -> None:
    # an inline icon's <title> was glued onto the page's: "Team Pageicon", the title's last word lost to search
    path = tmp_path / "page.html"
    path.write_bytes(
        b"<html><head><title>Team Page</title></head><body><svg><title>icon</title><path d='M0'/></svg>"
        b"<p>Hello body</p></body></html>"
    )
    assert extract_text(path, "text/html") == "# Team Page\n\nHello body"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\x00b", "ab"),
        ("a\r\nb\rc", "a\nb\nc"),
        ("a\n\n\n\nb", "a\n\nb"),
        ("a\n \n\t\n \nb", "a\n\nb"),
        ("a          b", "a b"),
        ("a    b", "a    b"),
        ("a  \nb", "a\nb"),
        ("  \n lead and trail \n\n ", "lead and trail"),
    ],
)
def test_normalize_text(raw: str, clean: str) -> None:
    assert normalize_text(raw) == clean
    assert normalize_text(clean) == clean


def test_ods_repeated_blank_rows_are_not_expanded(tmp_path: Path) -> None:
    # LibreOffice pads sheets with a million repeated blank rows; expanding them would take minutes and gigabytes
    source = write_ods(tmp_path)
    filler = (
        b'<table:table-row table:number-rows-repeated="1048000">'
        b'<table:table-cell table:number-columns-repeated="16384"/></table:table-row></table:table>'
    )
    padded = tmp_path / "padded"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(padded, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "content.xml":
                data = data.replace(b"</table:table>", filler, 1)
            dst.writestr(item, data)
    assert extract_text(padded, "application/vnd.oasis.opendocument.spreadsheet") == (
        "Inventory\nPart | Count\nBolt | 40\nNut | 75"
    )


def test_xlsx_rows_outside_a_wrong_declared_used_range_are_kept(tmp_path: Path) -> None:
    # exporters often write <dimension ref="A1"/>; openpyxl's read-only mode trusted it and returned one cell
    source = write_xlsx(tmp_path)
    lying = tmp_path / "lying"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(lying, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.startswith("xl/worksheets/sheet"):
                data = re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1"/>', data)
            dst.writestr(item, data)
    assert extract_text(lying, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet") == (
        "Sales\nRegion | Revenue\nNorth | 1500\nSouth | 2750.5\n\nStaff\nName | Role\nJürgen | Engineer"
    )


def test_odt_headings_are_not_glued_to_the_next_paragraph(tmp_path: Path) -> None:
    # odfdo writes a heading without a line break: "Travel ReportWe visited..." lost both words to search
    document = odfdo.Document("text")
    body = document.body
    body.clear()
    body.append(odfdo.Header(1, "Travel Report"))
    body.append(odfdo.Paragraph("We visited Hamburg."))
    section = odfdo.Section()
    section.append(odfdo.Header(2, "Costs"))
    section.append(odfdo.Paragraph("Trains were cheap."))
    body.append(section)
    path = tmp_path / "odt"
    document.save(str(path))
    # odfdo's template numbers its chapters ("1.", "1.1.")
    assert extract_text(path, "application/vnd.oasis.opendocument.text") == (
        "1. Travel Report\n\nWe visited Hamburg.\n\n1.1. Costs\n\nTrains were cheap."
    )


def _add_widget(writer: PdfWriter, page: int, field: DictionaryObject) -> IndirectObject:
    widget = writer._add_object(field)
    writer.pages[page][NameObject("/Annots")] = ArrayObject([widget])
    return widget


def test_pdf_form_field_values_are_kept(tmp_path: Path) -> None:
    # pypdf's page text skips annotations: what a user typed into a PDF form was never indexed
    writer = PdfWriter(clone_from=write_pdf(tmp_path))
    name = _add_widget(
        writer,
        0,
        DictionaryObject(
            {
                NameObject("/Subtype"): NameObject("/Widget"),
                NameObject("/FT"): NameObject("/Tx"),
                NameObject("/T"): TextStringObject("applicant"),
                NameObject("/V"): TextStringObject("Jane Applicant"),
            }
        ),
    )
    # a field whose type and value sit on the parent of its widget, and a checkbox whose value is a name
    city = writer._add_object(
        DictionaryObject(
            {
                NameObject("/FT"): NameObject("/Ch"),
                NameObject("/T"): TextStringObject("city"),
                NameObject("/V"): TextStringObject("Hamburg"),
            }
        )
    )
    kid = _add_widget(
        writer, 1, DictionaryObject({NameObject("/Subtype"): NameObject("/Widget"), NameObject("/Parent"): city})
    )
    checkbox = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Subtype"): NameObject("/Widget"),
                NameObject("/FT"): NameObject("/Btn"),
                NameObject("/V"): NameObject("/Yes"),
            }
        )
    )
    writer.pages[1][NameObject("/Annots")] = ArrayObject([kid, checkbox])
    writer._root_object[NameObject("/AcroForm")] = DictionaryObject(
        {NameObject("/Fields"): ArrayObject([name, city, checkbox])}
    )
    path = tmp_path / "form"
    with path.open("wb") as fh:
        writer.write(fh)
    assert extract_text(path, "application/pdf") == ("Invoice number 4711\nJane Applicant\n\nTotal amount due\nHamburg")


def test_docx_content_controls_and_tracked_insertions_are_kept(tmp_path: Path) -> None:
    # python-docx skips paragraphs inside content controls (cover pages, forms) and runs inside w:ins or an inline
    # control: the text Word shows was not indexed, while tracked deletions must stay out
    document = docx.Document()
    body = document.element.body
    body.insert(
        0,
        parse_xml(
            f"<w:sdt {nsdecls('w')}><w:sdtContent><w:p><w:r><w:t>Annual Report</w:t></w:r></w:p></w:sdtContent></w:sdt>"
        ),
    )
    paragraph = document.add_paragraph("The budget is ")
    paragraph._p.append(
        parse_xml(f'<w:ins {nsdecls("w")} w:id="1" w:author="Ann"><w:r><w:t>twelve</w:t></w:r></w:ins>')
    )
    paragraph._p.append(
        parse_xml(f'<w:del {nsdecls("w")} w:id="2" w:author="Ann"><w:r><w:delText>ten</w:delText></w:r></w:del>')
    )
    paragraph._p.append(
        parse_xml(f"<w:sdt {nsdecls('w')}><w:sdtContent><w:r><w:t> million</w:t></w:r></w:sdtContent></w:sdt>")
    )
    table = document.add_table(rows=1, cols=1)
    table.cell(0, 0)._tc.append(
        parse_xml(
            f"<w:sdt {nsdecls('w')}><w:sdtContent><w:p><w:r><w:t>Signed by Ann</w:t></w:r></w:p></w:sdtContent></w:sdt>"
        )
    )
    text = docx_text(document, tmp_path / "controls.docx")
    assert text == "Annual Report\n\nThe budget is twelve million\n\nSigned by Ann"


def test_docx_neighbouring_cells_with_equal_text_are_all_kept(tmp_path: Path) -> None:
    # merged cells were dropped by comparing texts, so "Widgets | 5 | 5 | 9" became "Widgets | 5 | 9" and the
    # third quarter's figure was read as the second's
    document = docx.Document()
    table = document.add_table(rows=3, cols=4)
    for row, texts in enumerate((("Product", "Q1", "Q2", "Q3"), ("Widgets", "5", "5", "9"))):
        for column, text in enumerate(texts):
            table.cell(row, column).text = text
    table.cell(2, 0).merge(table.cell(2, 1)).text = "Total"
    table.cell(2, 2).text = "14"
    table.cell(2, 3).text = "14"
    text = docx_text(document, tmp_path / "sales.docx")
    assert text == "Product | Q1 | Q2 | Q3\nWidgets | 5 | 5 | 9\nTotal | 14 | 14"


def test_docx_table_cell_in_a_content_control_is_kept(tmp_path: Path) -> None:
    # Word wraps a whole cell in a content control for a form's date picker or drop-down; python-docx's row.cells
    # reads only the row's own cells, so the filled-in value was missing from the index
    document = docx.Document()
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Contract"
    table.cell(0, 1).text = "Signed on"
    table.cell(1, 0).text = "Lease Berlin"
    table.rows[1]._tr.remove(table.rows[1]._tr.tc_lst[1])
    table.rows[1]._tr.append(
        parse_xml(
            f'<w:sdt {nsdecls("w")}><w:sdtPr><w:alias w:val="Signing date"/><w:date/></w:sdtPr><w:sdtContent>'
            "<w:tc><w:p><w:r><w:t>2024-05-01</w:t></w:r></w:p></w:tc></w:sdtContent></w:sdt>"
        )
    )
    text = docx_text(document, tmp_path / "contracts.docx")
    assert text == "Contract | Signed on\nLease Berlin | 2024-05-01"


def test_docx_chart_titles_and_numbers_are_indexed_where_the_chart_is(tmp_path: Path) -> None:
    # python-docx does not read drawings: a report's chart (title, series, figures) was missing from the index
    document = docx.Document()
    document.add_paragraph("Quarterly report")
    revenue = chart_data(["Q1", "Q2", "Q3"], {"Revenue (EUR)": (980000, 1100000, 1250000)})
    chart_xml = ChartXmlWriter(XL_CHART_TYPE.COLUMN_CLUSTERED, revenue).xml  # type: ignore[no-untyped-call]
    chart_xml = chart_xml.replace(
        "<c:chart>",
        "<c:chart><c:title><c:tx><c:rich><a:p><a:r><a:t>Revenue per quarter</a:t></a:r></a:p></c:rich></c:tx>"
        "</c:title>",
    )
    add_inline_drawing(
        document,
        "/word/charts/chart1.xml",
        CT.DML_CHART,
        chart_xml,
        RT.CHART,
        "Chart",
        '<a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/chart"><c:chart'
        ' xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" r:id="{rel_id}"/></a:graphicData>',
    )
    document.add_paragraph("Outlook: stable.")
    text = docx_text(document, tmp_path / "report.docx")
    assert text == (
        "Quarterly report\n\nRevenue per quarter\nRevenue (EUR) | Q1: 980000 | Q2: 1100000 | Q3: 1250000\n\n"
        "Outlook: stable."
    )


def test_pptx_shape_without_geometry_does_not_refuse_the_presentation(tmp_path: Path) -> None:
    # Google Slides, LibreOffice and Keynote write text shapes without geometry; python-pptx's shape_type raises
    # NotImplementedError for them, and the whole presentation was refused as damaged
    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[6])
    box = slide.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1))
    box.text_frame.text = "Quarterly goals"
    shape = box._element
    shape.spPr.remove(shape.spPr.prstGeom)
    del shape.nvSpPr.cNvSpPr.attrib["txBox"]
    group = slide.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(3), Inches(4), Inches(1)).text_frame.text = "Grouped note"
    text = deck_text(presentation, tmp_path / "bare")
    assert text == "Quarterly goals\nGrouped note"


@pytest.mark.parametrize("content_type", [b"text/plain", b"text/plain; charset=us-ascii", b"text/plain; charset=utf-8"])
def test_eml_8bit_body_with_a_missing_or_wrong_charset_keeps_its_letters(tmp_path: Path, content_type: bytes) -> None:
    # the stdlib decodes with errors='replace': every umlaut of a cp1252 body became U+FFFD and "Köln" unsearchable
    path = tmp_path / "mail"
    path.write_bytes(
        b"Subject: Hallo\r\nFrom: a@example.org\r\nContent-Type: " + content_type + b"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + GERMAN.encode("cp1252")
    )
    assert extract_text(path, "message/rfc822") == f"Subject: Hallo\nFrom: a@example.org\n\n{GERMAN}"


@pytest.mark.parametrize(
    ("sentence", "encoding"),
    [
        ("Café crème, naïve façade", "latin-1"),
        ("El niño comió piña en la montaña", "cp1252"),
        ("Blåbærsyltetøj på smørrebrød", "latin-1"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy", "cp1250"),
        ("Zażółć gęślą jaźń", "cp1250"),
        ("Pchnąć w tę łódź jeża lub ośm skrzyń fig", "iso-8859-2"),
        # a quarter of the bytes are accents: charset-normalizer guessed Johab, Big5 or UTF-16 and the old "mostly
        # ASCII" rule kept that guess, so "Đuro i Ćiro žele čašu." was indexed as "핫ro i 쿌ro 룐le 搏뚓."
        pytest.param("Đuro i Ćiro žele čašu.", "cp1250", id="croatian-cp1250"),
        pytest.param("Ćiro ima čašu.", "iso-8859-2", id="croatian-iso-8859-2"),
        pytest.param("Ostrożnie, żółw!", "cp1250", id="polish-cp1250"),
        pytest.param("Mogę już iść?", "iso-8859-2", id="polish-iso-8859-2"),
        pytest.param("Těším se.", "cp1250", id="czech-cp1250"),
        pytest.param("Příští týden.", "iso-8859-2", id="czech-iso-8859-2"),
        pytest.param("Môžeš mi pomôcť?", "iso-8859-2", id="slovak-iso-8859-2"),
        pytest.param("Hétfőn jövök.", "cp1250", id="hungarian-cp1250"),
        pytest.param("Hétfőn jövök.", "iso-8859-2", id="hungarian-iso-8859-2"),
    ],
)
def test_short_western_and_central_european_text_keeps_its_accents(
    tmp_path: Path, sentence: str, encoding: str
) -> None:
    # charset-normalizer finds no language in a short text and took cp1250 first: "crème" was indexed as "crčme"
    path = tmp_path / "note.txt"
    path.write_bytes(sentence.encode(encoding))
    assert extract_text(path, "text/plain") == sentence


@pytest.mark.parametrize(
    ("sentence", "encoding"),
    [("Türkçe metin ığş güzel", "cp1254"), ("Lietuvių kalba yra baltų kalba, ąčęėįšųūž", "cp1257")],
)
def test_other_latin_code_pages_charset_normalizer_recognises_are_kept(
    tmp_path: Path, sentence: str, encoding: str
) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes(f"{sentence}\n".encode(encoding) * 50)
    assert extract_text(path, "text/plain") == "\n".join([sentence] * 50)


@pytest.mark.parametrize("sentence", ["Hallo Jürgen", "Danke schön", "Dobrý den"])
def test_a_few_accented_letters_are_not_read_as_another_script(tmp_path: Path, sentence: str) -> None:
    # with one non-ASCII byte every code page has zero chaos: "Hallo Jürgen" came out in Urdu as "Hallo Jﮰrgen"
    path = tmp_path / "note.txt"
    path.write_bytes(sentence.encode("cp1250"))
    assert extract_text(path, "text/plain") == sentence


@pytest.mark.parametrize(
    ("sentence", "encoding"),
    [
        ("Встреча в понедельник в десять часов утра", "cp1251"),
        ("日本語のテキストです。", "shift_jis"),
        # one or two characters whose trail bytes are ASCII letters: no two ASCII letters in a row, so no Latin word
        ("好", "big5"),
        ("三時", "shift_jis"),
    ],
)
def test_text_in_other_scripts_keeps_charset_normalizers_reading(tmp_path: Path, sentence: str, encoding: str) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes(sentence.encode(encoding))
    assert extract_text(path, "text/plain") == sentence


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (b"Content-Type: text/plain; charset=windows-1252\r\n\r\n", "Hallo Jürgen".encode("cp1252")),
        (b"\r\n", "Hallo Jürgen".encode("cp1252")),
        (
            b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\n'
            b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n",
            "Hallo Jürgen".encode("latin-1") + b"\r\n--b--\r\n",
        ),
    ],
)
def test_eml_raw_8bit_headers_keep_their_letters(tmp_path: Path, content_type: bytes, body: bytes) -> None:
    # many mailers write non-ASCII headers as raw bytes in the body's charset, without RFC 2047 words: the stdlib
    # turned every such byte into U+FFFD and the subject and sender were indexed as "Gr��e" and "J�rgen M�ller"
    path = tmp_path / "mail"
    path.write_bytes(
        "Subject: Grüße aus Köln =?utf-8?q?f=C3=BCr?= Zoë\r\nFrom: Jürgen Müller <j@example.org>\r\n".encode("cp1252")
        + b"To: team@example.org\r\n"
        + content_type
        + body
    )
    assert extract_text(path, "message/rfc822") == (
        "Subject: Grüße aus Köln für Zoë\nFrom: Jürgen Müller <j@example.org>\nTo: team@example.org\n\nHallo Jürgen"
    )


def test_eml_header_bytes_in_no_charset_do_not_refuse_the_mail(tmp_path: Path) -> None:
    path = tmp_path / "mail"
    path.write_bytes(
        b"Subject: Report " + bytes(range(0x80, 0x100)) + b"\r\nFrom: a@example.org\r\n\r\nQuarterly figures\r\n"
    )
    text = extract_text(path, "message/rfc822")
    assert text.startswith("Subject: Report \ufffd")
    assert text.endswith("\nFrom: a@example.org\n\nQuarterly figures")


def _repeating_section_item(first: str, second: str, vertically_merged: bool = False) -> str:
    merge = "<w:tcPr><w:vMerge/></w:tcPr>" if vertically_merged else ""
    return (
        "<w:sdt><w:sdtPr><w15:repeatingSectionItem/></w:sdtPr><w:sdtContent><w:tr>"
        f"<w:tc>{merge}<w:p><w:r><w:t>{first}</w:t></w:r></w:p></w:tc>"
        f"<w:tc><w:p><w:r><w:t>{second}</w:t></w:r></w:p></w:tc>"
        "</w:tr></w:sdtContent></w:sdt>"
    )


def test_docx_table_rows_in_a_repeating_section_are_kept(tmp_path: Path) -> None:
    # Word's repeating-section content control wraps each table row; python-docx's table.rows skips them, so every
    # line a user added to an expense or attendee form was missing from the index
    document = docx.Document()
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Item"
    table.cell(0, 1).text = "Cost"
    items = "".join(
        (
            _repeating_section_item("Train", "120"),
            _repeating_section_item("Hotel", "340"),
            _repeating_section_item("", "55", True),
        )
    )
    table._tbl.append(
        parse_xml(
            f'<w:sdt {nsdecls("w")} xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml">'
            f"<w:sdtPr><w15:repeatingSection/></w:sdtPr><w:sdtContent>{items}</w:sdtContent></w:sdt>"
        )
    )
    text = docx_text(document, tmp_path / "expenses.docx")
    assert text == "Item | Cost\nTrain | 120\nHotel | 340\n55"


_NOTES_PARTS = {
    "footnotes": (
        '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
        '<w:footnote w:type="continuationNotice" w:id="0"><w:p><w:r><w:t>(continued)</w:t></w:r></w:p></w:footnote>'
        '<w:footnote w:id="1"><w:p><w:r><w:footnoteRef/></w:r>'
        '<w:r><w:t xml:space="preserve"> Source: Federal Statistical Office, 2023.</w:t></w:r></w:p></w:footnote>'
    ),
    "endnotes": (
        '<w:endnote w:id="1"><w:p><w:r><w:endnoteRef/></w:r><w:r><w:t xml:space="preserve"> Figures are net of VAT.'
        "</w:t></w:r></w:p><w:p><w:r><w:t>Rounded to whole euros.</w:t></w:r></w:p></w:endnote>"
    ),
}


def _add_notes_parts(path: Path, parts: dict[str, str] = _NOTES_PARTS) -> None:
    """Rewrite a python-docx file with a footnotes and an endnotes part (python-docx cannot write them)."""
    with zipfile.ZipFile(path) as source:
        members = {name: source.read(name) for name in source.namelist()}
    rels = members["word/_rels/document.xml.rels"].decode()
    types = members["[Content_Types].xml"].decode()
    for kind, notes in parts.items():
        members[f"word/{kind}.xml"] = f"<w:{kind} {nsdecls('w')}>{notes}</w:{kind}>".encode()
        rels = rels.replace(
            "</Relationships>",
            f'<Relationship Id="rId{kind}" Target="{kind}.xml" '
            f'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/{kind}"/></Relationships>',
        )
        types = types.replace(
            "</Types>",
            f'<Override PartName="/word/{kind}.xml" '
            f'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.{kind}+xml"/></Types>',
        )
    members["word/_rels/document.xml.rels"] = rels.encode()
    members["[Content_Types].xml"] = types.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in members.items():
            target.writestr(name, data)


def test_docx_footnotes_and_endnotes_are_indexed_after_the_body(tmp_path: Path) -> None:
    # the sources and caveats of a report live in its notes; none of their text was indexed
    document = docx.Document()
    paragraph = document.add_paragraph("Revenue grew by 12 percent.")
    paragraph._p.append(parse_xml(f'<w:r {nsdecls("w")}><w:footnoteReference w:id="1"/></w:r>'))
    document.add_paragraph("Costs stayed flat.")
    document.add_comment(paragraph.runs, text="Check this number with Ann", author="Bob")
    path = tmp_path / "report.docx"
    document.save(str(path))
    _add_notes_parts(path)
    text = extract_text(path, "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    assert text == (
        "Revenue grew by 12 percent.\n\nComment by Bob: Check this number with Ann\n\nCosts stayed flat.\n\n"
        "Source: Federal Statistical Office, 2023.\n\n"
        "Figures are net of VAT.\nRounded to whole euros."
    )


def _add_smartart(presentation: pptx.presentation.Presentation, slide: pptx.slide.Slide) -> None:
    """A SmartArt frame and its data part, as PowerPoint writes them (python-pptx cannot create diagrams)."""
    data_part = Part(
        PackURI("/ppt/diagrams/data1.xml"), CT.DML_DIAGRAM_DATA, presentation.part.package, SMARTART_DATA.encode()
    )
    rel_id = slide.part.relate_to(data_part, RT.DIAGRAM_DATA)
    slide.shapes._spTree.append(
        parse_pptx_xml(
            '<p:graphicFrame xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" '
            'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<p:nvGraphicFramePr><p:cNvPr id="9" name="Diagram 1"/><p:cNvGraphicFramePr/><p:nvPr/></p:nvGraphicFramePr>'
            '<p:xfrm><a:off x="0" y="0"/><a:ext cx="100" cy="100"/></p:xfrm>'
            '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/diagram">'
            '<dgm:relIds xmlns:dgm="http://schemas.openxmlformats.org/drawingml/2006/diagram" '
            f'r:dm="{rel_id}" r:lo="" r:qs="" r:cs=""/></a:graphicData></a:graphic></p:graphicFrame>'
        )
    )


def test_pptx_text_box_holding_an_equation_is_indexed(tmp_path: Path) -> None:
    # PowerPoint wraps a shape that holds an equation in mc:AlternateContent and python-pptx's slide.shapes skips
    # it: the whole text box (or table, or title) around the formula was missing from the index
    presentation, slide = titled_slide("Relativity")
    slide.shapes._spTree.append(parse_pptx_xml(equation_text_box("Rest energy is ", " for a body at rest")))
    group = slide.shapes.add_group_shape()
    group.shapes._spTree.append(parse_pptx_xml(equation_text_box("Grouped: ", " again")))
    slide.shapes.add_textbox(Inches(1), Inches(5), Inches(4), Inches(1)).text_frame.text = "Questions?"
    text = deck_text(presentation, tmp_path / "physics")
    assert text == "Relativity\nRest energy is E=mc for a body at rest\nGrouped: E=mc again\nQuestions?"


def test_pptx_chart_labels_and_smartart_text_are_indexed(tmp_path: Path) -> None:
    # python-pptx's shapes give charts and SmartArt no text frame: a slide whose content is a chart or a process
    # diagram was indexed as its title alone
    presentation, slide = titled_slide("Results")
    visitors = chart_data(["Spring", "Autumn"], {"Hamburg office": (10, 20), "Munich office": (5, 7)})
    chart = slide.shapes.add_chart(
        XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(1), Inches(6), Inches(4), visitors
    ).chart
    chart.has_title = True
    chart.chart_title.text_frame.text = "Visitors per season"
    chart.value_axis.has_title = True
    chart.value_axis.axis_title.text_frame.text = "Visitors (thousands)"
    commute = chart_data(["Trains", "Cars"], {"Commute": (60, 40)})
    slide.shapes.add_chart(XL_CHART_TYPE.PIE, Inches(1), Inches(5), Inches(3), Inches(2), commute)
    _add_smartart(presentation, slide)
    text = deck_text(presentation, tmp_path / "results")
    assert text == (
        "Results\nVisitors per season\nVisitors (thousands)\nHamburg office | Spring: 10 | Autumn: 20\n"
        "Munich office | Spring: 5 | Autumn: 7\nCommute | Trains: 60 | Cars: 40\n"
        "Plan the rollout\nTrain the support team"
    )


def test_pptx_chart_numbers_are_indexed_with_their_categories(tmp_path: Path) -> None:
    # only titles and labels were indexed: "what was the revenue in Q3 2024?" over a deck whose chart holds the
    # figure found the slide but not the number
    presentation, slide = titled_slide("Results")
    revenue = CategoryChartData(number_format="#,##0")  # type: ignore[no-untyped-call]
    for year in ("2023", "2024"):
        quarters = revenue.add_category(year)  # type: ignore[no-untyped-call]
        for quarter in ("Q3", "Q4"):
            quarters.add_sub_category(quarter)
    revenue.add_series("Revenue (EUR)", (980000, 1100000, 1250000, 1312500.5))  # type: ignore[no-untyped-call]
    margin = CategoryChartData(number_format="0.0%")  # type: ignore[no-untyped-call]
    margin.categories = ["Q3", "Q4"]
    margin.add_series("Margin", (0.1 + 0.025, 0.3333))  # type: ignore[no-untyped-call]
    scatter = XyChartData()  # type: ignore[no-untyped-call]
    points = scatter.add_series("Load test")  # type: ignore[no-untyped-call]
    points.add_data_point(100, 0.25)
    points.add_data_point(200, 0.75)
    for chart_type, data in (
        (XL_CHART_TYPE.COLUMN_CLUSTERED, revenue),
        (XL_CHART_TYPE.LINE, margin),
        (XL_CHART_TYPE.XY_SCATTER, scatter),
    ):
        slide.shapes.add_chart(chart_type, Inches(1), Inches(1), Inches(6), Inches(4), data)
    text = deck_text(presentation, tmp_path / "results")
    assert text == (
        "Results\n"
        "Revenue (EUR) | 2023 Q3: 980,000 | 2023 Q4: 1,100,000 | 2024 Q3: 1,250,000 | 2024 Q4: 1,312,501\n"
        "Margin | Q3: 12.5% | Q4: 33.3%\n"
        "Load test | 100: 0.25 | 200: 0.75"
    )


def test_a_long_chart_series_is_indexed_up_to_its_first_points(tmp_path: Path) -> None:
    # a sensor log of 2,000 readings charted on one slide became pages of numbers for the embedder
    presentation, slide = titled_slide("Temperature log")
    readings = chart_data([f"t{i}" for i in range(2000)], {"Sensor A": tuple(float(i % 40) for i in range(2000))})
    slide.shapes.add_chart(XL_CHART_TYPE.LINE, Inches(1), Inches(1), Inches(6), Inches(4), readings)
    text = deck_text(presentation, tmp_path / "log")
    series_line = text.splitlines()[-1]
    kept = [f"t{i}: {i % 40}" for i in range(MAX_POINTS_PER_SERIES)]
    assert series_line == " | ".join(["Sensor A", *kept, f"… {2000 - MAX_POINTS_PER_SERIES} more points"])


def test_a_damaged_docx_notes_part_loses_its_notes_not_the_document(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    document = docx.Document()
    document.add_paragraph("Revenue grew by 12 percent.")
    path = tmp_path / "report.docx"
    document.save(str(path))
    _add_notes_parts(path, {**_NOTES_PARTS, "footnotes": '<w:footnote w:id="1"><w:p>unclosed'})
    text = extract_text(path, "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    assert text == "Revenue grew by 12 percent.\n\nFigures are net of VAT.\nRounded to whole euros."
    assert "skipped the damaged notes part footnotes.xml" in caplog.text

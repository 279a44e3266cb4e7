"""Every supported mimetype parses to the expected text; HTML, spreadsheet, ODT and PDF form rules; normalization."""

import re
import zipfile
from pathlib import Path

import odfdo
import pytest
from loader_fixture_files import FIXTURES, write_ods, write_pdf, write_xlsx
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, TextStringObject

from quart_app.loaders import SUPPORTED_MIMETYPES, extract_text, normalize_text

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

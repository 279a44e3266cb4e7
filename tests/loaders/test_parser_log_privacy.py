"""Parser libraries quote what they read, in their warnings (pypdf: `invalid pdf header: b'...'`) and in the
tracebacks they log (extract-msg: RTFDE's parser error shows a line of the mail); the parse workers' log keeps the
library, the exception classes and the messages' shape and withholds the file's content."""

import json
import logging
import pwd
import re
import zipfile
from pathlib import Path

import docx
import openpyxl
import pytest
from docx.opc.constants import CONTENT_TYPE as CT
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from faulty_loaders import FAULTY_LOADERS
from loader_fixture_files import write_pdf
from office_kit import add_inline_drawing, docx_text
from openpyxl.chart import LineChart, Reference
from pool_kit import text_of
from pypdf import PdfWriter
from pypdf.generic import NameObject, TextStringObject
from secret_documents import SECRET, msg_with_broken_rtf_body, quoted_secret, xlsx_with_text_in_a_number_cell

from quart_app.chunking import ChunkerSpec
from quart_app.loaders import ParseLimits, ParsePool, extract_text
from quart_app.loaders.errors import CorruptDocumentError
from quart_app.loaders.library_log_redaction import (
    TEXT_WITHHELD,
    WITHHELD,
    LibraryTextFilter,
    library_message,
    withhold_bytes,
    withhold_document_text,
)

# a chart part whose text slipped into a tag: lxml's error names the words it took for attribute names
DAMAGED_CHART = (
    f'<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart"><c:title {SECRET}</c:title>'
    "</c:chartSpace>"
)
LXML_ERROR = "ERR_ATTRIBUTE_WITHOUT_VALUE, line 1, column 94"
# a sound chart part, titled {title}
CHART = (
    '<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart"'
    ' xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><c:chart><c:title><c:tx><c:rich><a:p><a:r>'
    "<a:t>{title}</a:t></a:r></a:p></c:rich></c:tx></c:title></c:chart></c:chartSpace>"
)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# a letter pasted in front of a PDF: pypdf reads the file anyway and warns, quoting its first five bytes
USER_TEXT = b"Dear Bob, the merger is off."


async def test_a_pdf_with_a_bad_header_is_logged_by_the_parser_without_the_files_bytes(
    chunker_spec: ChunkerSpec, parser_user: pwd.struct_passwd | None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "letter.pdf"
    path.write_bytes(USER_TEXT + write_pdf(tmp_path).read_bytes())
    # a pool of the test's own: its workers write to the stderr that capfd captures
    async with ParsePool(1, ParseLimits(timeout_s=30.0, memory_mb=256), chunker=chunker_spec) as pool:
        chunks = await pool.parse_and_chunk(path, "application/pdf", "letter.pdf")
    assert "Invoice number 4711" in text_of(chunks)
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    parser_lines = [line for line in lines if line["program"] == "parser"]
    assert {"level": "warning", "logger": "pypdf._reader", "msg": f"invalid pdf header: {WITHHELD}"} in [
        {key: line[key] for key in ("level", "logger", "msg")} for line in parser_lines
    ], parser_lines
    assert "Dear" not in json.dumps(parser_lines)


def _parser_lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    return [line for line in lines if line["program"] == "parser"]


def _pdf_with_strings_for_dictionaries(tmp_path: Path) -> Path:
    """The two-page invoice, its first page's /Annots and a third page's /Resources a text string (the sentence)
    where pypdf expects an array and a dictionary: pypdf warns with the string formatted by %s, without quotes."""
    writer = PdfWriter(clone_from=write_pdf(tmp_path))
    writer.pages[0][NameObject("/Annots")] = TextStringObject(SECRET)
    writer.add_blank_page(612, 792)[NameObject("/Resources")] = TextStringObject(SECRET)
    path = tmp_path / "damaged.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    return path


async def test_a_pdf_string_where_pypdf_expects_a_dictionary_is_logged_by_its_type_not_its_text(
    chunker_spec: ChunkerSpec, parser_user: pwd.struct_passwd | None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = _pdf_with_strings_for_dictionaries(tmp_path)
    async with ParsePool(1, ParseLimits(timeout_s=30.0, memory_mb=256), chunker=chunker_spec) as pool:
        chunks = await pool.parse_and_chunk(path, "application/pdf", "damaged.pdf")
    assert "Invoice number 4711" in text_of(chunks)
    parser_lines = _parser_lines(capfd)
    warnings = {(line["logger"], line["msg"]) for line in parser_lines if line["level"] == "warning"}
    assert warnings == {
        ("pypdf._page", "Annotations are not an array: <TextStringObject withheld>"),
        ("pypdf._page", "Page resources are not a dictionary: <TextStringObject withheld>"),
    }, parser_lines
    assert quoted_secret(json.dumps(parser_lines)) == [], parser_lines


async def test_a_loaders_failure_is_logged_by_class_loader_and_place_never_by_its_message(
    chunker_spec: ChunkerSpec, parser_user: pwd.struct_passwd | None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # openpyxl's ValueError quotes the cell; the admin still learns which library, where, and through which loader
    path = xlsx_with_text_in_a_number_cell(tmp_path / "numbers.xlsx", SECRET)
    document = "'numbers.xlsx' (source 'files__default: 4711')"
    async with ParsePool(1, ParseLimits(timeout_s=30.0, memory_mb=256), chunker=chunker_spec) as pool:
        with pytest.raises(CorruptDocumentError):
            await pool.parse_and_chunk(path, XLSX, document)
    parser_lines = _parser_lines(capfd)
    [logged] = [line for line in parser_lines if line["logger"] == "quart_app.loaders.registry"]
    assert logged["level"] == "warning"
    assert re.fullmatch(
        rf"parse of {re.escape(document)} \({re.escape(XLSX)}\) failed in its loader"
        r" quart_app\.loaders\.tabular_loader:load_xlsx: ValueError raised at openpyxl/worksheet/_reader\.py:\d+ in"
        r" \w+, called from quart_app/loaders/tabular_loader\.py:\d+ in \w+; its message is withheld \(it may quote"
        r" the file\)",
        logged["msg"],
    ), logged
    assert quoted_secret(json.dumps(parser_lines)) == [], parser_lines


async def test_a_failure_outside_the_loader_is_logged_by_class_and_place_never_by_its_message(
    chunker_spec: ChunkerSpec, parser_user: pwd.struct_passwd | None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # the worker's text step raises a ValueError quoting the text; the app is told its class only
    path = tmp_path / "memo.txt"
    path.write_text(SECRET, encoding="utf-8")
    limits = ParseLimits(timeout_s=30.0, memory_mb=256)
    async with ParsePool(1, limits, chunker=chunker_spec, extra_loaders=FAULTY_LOADERS) as pool:
        with pytest.raises(CorruptDocumentError):
            await pool.parse_and_chunk(path, "test/quoting-failure", "memo.txt")
    parser_lines = _parser_lines(capfd)
    [logged] = [line for line in parser_lines if line["logger"] == "quart_app.loaders.parse_worker"]
    assert re.fullmatch(
        r"parse of memo\.txt \(test/quoting-failure\) failed outside its loader: ValueError raised at"
        r" faulty_loaders\.py:\d+ in quoting_normalize_text, called from quart_app/loaders/registry\.py:\d+ in"
        r" extract_text; its message is withheld \(it may quote the file\)",
        logged["msg"],
    ), logged
    assert quoted_secret(json.dumps(parser_lines)) == [], parser_lines


def test_a_library_records_arguments_are_named_by_type_and_numbers_kept() -> None:
    def message(msg: str, *args: object) -> str:
        # as logger.warning(msg, *args) makes it: a lone mapping becomes the record's args
        record = logging.LogRecord("pypdf._reader", logging.WARNING, __file__, 1, msg, args, None)
        assert LibraryTextFilter().filter(record)
        return str(record.msg)

    assert message("object %(idnum)d at %(offset)s: %(value)r", {"idnum": 5, "offset": 0.5, "value": SECRET}) == (
        f"object 5 at 0.5: {TEXT_WITHHELD}"
    )
    assert message("%s and %r, %s", b"Dear", ValueError(SECRET), None) == (
        f"{WITHHELD} and <ValueError withheld>, None"
    )
    # a withheld argument where a number is formatted: the format string itself
    assert message("page %d of %s", SECRET, 3) == "page %d of %s"


async def test_a_traceback_a_library_logs_keeps_its_exceptions_and_withholds_the_mails_text(
    chunker_spec: ChunkerSpec, parser_user: pwd.struct_passwd | None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = msg_with_broken_rtf_body(tmp_path / "plans.msg")
    async with ParsePool(1, ParseLimits(timeout_s=30.0, memory_mb=256), chunker=chunker_spec) as pool:
        with pytest.raises(CorruptDocumentError):
            await pool.parse_and_chunk(path, "application/vnd.ms-outlook", "plans.msg")
    parser_lines = _parser_lines(capfd)
    [logged] = [line for line in parser_lines if line["logger"] == "extract_msg.msg_classes.message_base"]
    assert (logged["level"], logged["msg"]) == (
        "error",
        "Critical error accessing the body. File opened but accessing the body will throw an exception.",
    )
    # the chain of exceptions an admin reports upstream, each with its frames, its class and its message's shape
    exc_lines = [line for line in logged["exc"].splitlines() if not line.startswith(" ")]
    assert exc_lines == [
        "Traceback (most recent call last):",
        "lark.exceptions.UnexpectedCharacters: No terminal matches <text withheld> in the current parser context, at"
        " line 1 col 75 [7 more lines withheld]",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        f"lark.exceptions.UnexpectedToken: Unexpected token Token({TEXT_WITHHELD}, {WITHHELD}) at line 1, column 75."
        " [3 more lines withheld]",
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        "Traceback (most recent call last):",
        "RTFDE.exceptions.MalformedEncapsulatedRtf: Malformed encapsulated RTF discovered:",
    ]
    assert 'File "' in logged["exc"] and "in deencapsulate" in logged["exc"]
    assert quoted_secret(json.dumps(parser_lines)) == [], parser_lines


def test_every_bytes_literal_in_a_message_is_withheld_and_the_rest_kept() -> None:
    message = r"""bad stream b'%PDF-' at 12, then b"it's \"x\"\n" and b'\xff\'' (verb'no' stays)"""
    assert withhold_bytes(message) == f"bad stream {WITHHELD} at 12, then {WITHHELD} and {WITHHELD} (verb'no' stays)"


def test_a_library_message_keeps_its_first_line_and_withholds_quotes_and_byte_runs() -> None:
    message = "can't convert 'Dear Bob' (\"it's\") near b'x' or Bytes: 0x44 0x65 0x61, the user's byte 0xff\nDear Bob"
    assert withhold_document_text(message) == (
        f"can't convert {TEXT_WITHHELD} ({TEXT_WITHHELD}) near {WITHHELD} or Bytes: {WITHHELD}, the user's byte 0xff"
        " [1 more line withheld]"
    )


def test_a_codec_error_keeps_codec_position_and_reason_but_not_the_character() -> None:
    decode = UnicodeDecodeError("utf-8", b"Dear \xff Bob", 5, 6, "invalid start byte")
    assert library_message(decode) == "'utf-8' codec can't decode byte 0xff in position 5: invalid start byte"
    encode = UnicodeEncodeError("ascii", "Dear Böb", 6, 7, "ordinal not in range(128)")
    assert library_message(encode) == "'ascii' codec can't handle position 6-6: ordinal not in range(128)"


def _loader_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("quart_app.loaders") and r.levelno >= 30]


def test_a_damaged_docx_chart_is_named_by_its_place_and_lxmls_error_not_its_name_or_the_words_it_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    document = docx.Document()
    document.add_paragraph("Revenue grew by 12 percent.")
    graphic = (
        '<a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/chart"><c:chart'
        ' xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" r:id="{rel_id}"/></a:graphicData>'
    )
    chart = CHART.replace("{title}", "Units")
    add_inline_drawing(document, "/word/charts/chart1.xml", CT.DML_CHART, chart, RT.CHART, "Chart", graphic)
    # whoever made the file chose its parts' names, text included
    add_inline_drawing(document, f"/word/charts/{SECRET}.xml", CT.DML_CHART, DAMAGED_CHART, RT.CHART, "Chart", graphic)
    assert docx_text(document, tmp_path / "report") == "Revenue grew by 12 percent.\n\nUnits"
    assert _loader_warnings(caplog) == [f"skipped the damaged chart 2 of 2: {LXML_ERROR}"]
    assert quoted_secret(caplog.text) == []


def test_a_damaged_xlsx_chart_is_skipped_with_lxmls_error_name_not_the_words_it_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in (("Month", "Units"), ("Jan", 10)):
        sheet.append(row)
    chart = LineChart()
    chart.add_data(Reference(sheet, min_col=2, min_row=1, max_row=2), titles_from_data=True)
    sheet.add_chart(chart, "D2")
    workbook.save(str(tmp_path / "sales"))
    with zipfile.ZipFile(tmp_path / "sales") as source, zipfile.ZipFile(tmp_path / "damaged", "w") as target:
        for item in source.infolist():
            damaged = item.filename == "xl/charts/chart1.xml"
            target.writestr(item, DAMAGED_CHART.encode() if damaged else source.read(item))
    assert extract_text(tmp_path / "damaged", XLSX) == "Sheet\nMonth | Units\nJan | 10"
    assert _loader_warnings(caplog) == [f"skipped the damaged chart 1 of 1: {LXML_ERROR}"]

"""Tables as text, one row per line, cells joined by ' | ', sheets separated by a blank line.

csv via the stdlib reader (dialect sniffed), xlsx/xlsm via openpyxl in read-only streaming mode, ods by
streaming content.xml with defusedxml (odfdo would expand LibreOffice's million-row repeated blank rows).
"""

import csv
import datetime
import io
import logging
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import openpyxl
from defusedxml.ElementTree import iterparse
from lxml import etree

from .chart_text import chart_lines, paragraphs_text
from .library_log_redaction import library_message
from .limits import ParseLimits
from .number_format import format_moment, format_number
from .sheet_comments import RowComments, ods_annotation, xlsx_comments
from .text_decoding import read_text
from .zip_guard import check_zip

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSM = "application/vnd.ms-excel.sheet.macroEnabled.12"
ODS = "application/vnd.oasis.opendocument.spreadsheet"

CELL_SEPARATOR = " | "
_TABLE_NS = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_TEXT_NS = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_ANNOTATION = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}annotation"
_STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}style"
_STYLE_NAME = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}name"
_TABLE_PROPERTIES = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}table-properties"
# repeated non-empty cells/rows are expanded at most this often (repeats exist mostly for blank filler; a crafted
# count must not multiply a cell's text without bound); the .odt loader's tables share it
MAX_REPEAT = 100
logger = logging.getLogger(__name__)

_CHART_PART = re.compile(r"xl/charts/chart(\d+)\.xml")
_DRAWING_PART = re.compile(r"xl/drawings/drawing(\d+)\.xml")
# a shape's text body (a text box on a dashboard); pictures and charts are anchored in the drawing too, without one
_SHAPE_TEXTS = etree.XPath(
    ".//xdr:sp/xdr:txBody",
    namespaces={"xdr": "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing"},
)
# drawing and chart parts are read with lxml for chart_text's XPaths: no entities, no network
_PART_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
# built-in formats 14 and 22 show in the reader's locale (1/15/2024 or 15.01.2024): the index gets ISO dates
_LOCALE_DATE_FORMATS = {14: "yyyy-mm-dd", 22: "yyyy-mm-dd h:mm"}


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    return " ".join(str(value).split())


def _displayed_value(cell: Any) -> Any:
    """An xlsx cell's value as Excel shows it (12.5%, 1,234.50 €, 15.01.2024); its value where the format is unknown."""
    value = cell.value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    # the default style (0) is General: most cells of most sheets, and reading their style costs time
    if isinstance(value, str) or value is None or not cell.has_style:
        return value
    try:
        code = _LOCALE_DATE_FORMATS.get(cell.style_array.numFmtId) or cell.number_format
    except IndexError:  # a style naming a format the workbook does not define (generators do): Excel shows General
        return value
    shown = format_number(value, code) if isinstance(value, int | float) else format_moment(value, code)
    return value if shown is None else shown


def _xlsx_rows(sheet: Any, comments: RowComments) -> Iterator[str]:
    """The sheet's lines, each row's comments after it; iter_rows yields every row from the first, empty or not."""
    for number, row in enumerate(sheet.iter_rows(), 1):
        yield _row_line(map(_displayed_value, row))
        yield from comments.pop(number, ())
    yield from (line for lines in comments.values() for line in lines)  # on empty cells below the last row


def _row_line(cells: Iterable[Any]) -> str:
    texts = [_cell_text(cell) for cell in cells]
    while texts and not texts[-1]:
        texts.pop()
    return CELL_SEPARATOR.join(texts)


class _OverBudget(Exception):
    """The workbook's text is longer than max_text_chars; the loader turns this into the limit's error."""


def _sheet_block(name: str, lines: Iterator[str], budget: list[int]) -> str:
    kept = [name]
    for line in lines:
        if not line:
            continue
        kept.append(line)
        budget[0] -= len(line) + 1
        if budget[0] < 0:
            raise _OverBudget
    return "\n".join(kept) if len(kept) > 1 else ""


def load_csv(path: Path, limits: ParseLimits) -> str:
    """Rows of a delimited text file; the delimiter is sniffed from the first 64 KiB."""
    text = read_text(path, CSV)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    csv.field_size_limit(limits.max_text_chars)
    rows = csv.reader(io.StringIO(text, newline=""), dialect)
    lines = [line for line in map(_row_line, rows) if line]
    return "\n".join(lines)


def load_xlsx(path: Path, limits: ParseLimits, mimetype: str = XLSX) -> str:
    """Cell values (cached results for formulas) as their number formats show them, streamed row by row, each row's
    cell comments after it, then the text boxes and the charts' titles and series."""
    check_zip(path, mimetype, limits)
    budget = [limits.max_text_chars]
    # a file object, because openpyxl refuses paths without an .xlsx-like suffix (spool files have none)
    with path.open("rb") as fh:
        workbook = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        try:
            blocks = []
            with zipfile.ZipFile(path) as archive:
                sheets = workbook.worksheets
                for number, sheet in enumerate(sheets, 1):
                    # a hidden sheet (lookup tables, drafts) is not shown; a hidden row is: filters hide rows
                    if sheet.sheet_state != "visible":
                        continue
                    # read-only mode returns only the used range the file declares, and exporters often declare 'A1'
                    sheet.reset_dimensions()
                    comments = xlsx_comments(archive, sheet._worksheet_path, f"sheet {number} of {len(sheets)}")
                    blocks.append(_sheet_block(sheet.title, _xlsx_rows(sheet, comments), budget))
        except _OverBudget:
            raise limits.text_too_long(path.name, mimetype) from None
        finally:
            workbook.close()
    blocks.extend(_xlsx_drawings(path))
    return "\n\n".join(block for block in blocks if block)


def _numbered_parts(archive: zipfile.ZipFile, pattern: re.Pattern[str], kind: str) -> list[tuple[str, str]]:
    """The parts whose names match `pattern`, in the order of the number in their name (chart2 before chart10), each
    with its place among them ("chart 2 of 3"): a warning names that, not the name, which the file's maker chose."""
    numbered = sorted((int(match[1]), name) for name in archive.namelist() if (match := pattern.fullmatch(name)))
    return [(name, f"{kind} {place} of {len(numbered)}") for place, (_, name) in enumerate(numbered, 1)]


def _part_xml(archive: zipfile.ZipFile, name: str, which: str) -> Any | None:
    """A drawing or chart part's XML; None, with a warning naming the part as `which`, when it is damaged: the cells
    are still the workbook."""
    try:
        return etree.fromstring(archive.read(name), _PART_PARSER)
    except etree.XMLSyntaxError as exc:
        # lxml's message names the words a damaged part has where tags should be
        logger.warning("skipped the damaged %s: %s", which, library_message(exc))
        return None


def _xlsx_drawings(path: Path) -> Iterator[str]:
    """Text boxes and shapes, then each chart's titles and series (openpyxl's read-only mode loads neither), in the
    order they were added."""
    with zipfile.ZipFile(path) as archive:
        for name, which in _numbered_parts(archive, _DRAWING_PART, "drawing"):
            if (drawing := _part_xml(archive, name, which)) is not None:
                yield from (text for body in _SHAPE_TEXTS(drawing) if (text := paragraphs_text(body, "\n")))
        for name, which in _numbered_parts(archive, _CHART_PART, "chart"):
            chart_space = _part_xml(archive, name, which)
            if chart_space is not None and (text := "\n".join(chart_lines(chart_space))):
                yield text


def load_xlsm(path: Path, limits: ParseLimits) -> str:
    """Macro-enabled workbooks are read like .xlsx; macros are never run."""
    return load_xlsx(path, limits, XLSM)


def _ods_paragraph(elem: Any) -> Iterator[str]:
    # <text:s text:c="3"/> encodes repeated spaces, <text:tab/> and <text:line-break/> separate words too
    if elem.text:
        yield elem.text
    for child in elem:
        if child.tag == f"{_TEXT_NS}s":
            yield " " * int(child.get(f"{_TEXT_NS}c", "1"))
        elif child.tag in (f"{_TEXT_NS}tab", f"{_TEXT_NS}line-break"):
            yield " "
        else:
            yield from _ods_paragraph(child)
        if child.tail:
            yield child.tail


def _ods_cell_text(cell: Any) -> str:
    # an annotation is the cell's comment, not part of its value
    paragraphs = [
        "".join(_ods_paragraph(para))
        for child in cell
        if child.tag != _ANNOTATION
        for para in child.iter(f"{_TEXT_NS}p")
    ]
    return " ".join(" ".join(paragraphs).split())


def _ods_row(row: Any, row_number: int) -> list[str]:
    """A table row's lines: the row (once per repeat, up to MAX_REPEAT), then its cells' annotations."""
    cells: list[str] = []
    comments: list[str] = []
    column = 1
    for cell in row:
        if cell.tag not in (f"{_TABLE_NS}table-cell", f"{_TABLE_NS}covered-table-cell"):
            continue
        text = _ods_cell_text(cell)
        repeat = int(cell.get(f"{_TABLE_NS}number-columns-repeated", "1"))
        cells.extend([text] * (min(repeat, MAX_REPEAT) if text else min(repeat, 1)))
        if (annotation := cell.find(_ANNOTATION)) is not None and (
            note := ods_annotation(annotation, row_number, column)
        ):
            comments.append(note)
        column += repeat
    line = _row_line(cells)
    repeat = int(row.get(f"{_TABLE_NS}number-rows-repeated", "1"))
    return ([line] * min(repeat, MAX_REPEAT) if line else []) + comments


def _ods_sheets(content: Any) -> Iterator[tuple[str, Iterator[str]]]:
    events = iterparse(content, events=("start", "end"), forbid_dtd=True)
    rows: list[str] = []
    name = ""
    row_number = 1
    # table styles with table:display="false" (automatic styles come before the body)
    hidden: set[str] = set()
    style_name = ""
    shown = True
    for event, elem in events:
        if event == "end" and elem.tag == _TABLE_PROPERTIES and elem.get(f"{_TABLE_NS}display") == "false":
            hidden.add(style_name)
        elif event == "start" and elem.tag == _STYLE:
            style_name = elem.get(_STYLE_NAME, "")
        elif event == "start" and elem.tag == f"{_TABLE_NS}table":
            name, rows, row_number = elem.get(f"{_TABLE_NS}name", ""), [], 1
            shown = elem.get(f"{_TABLE_NS}style-name") not in hidden
        elif event == "end" and elem.tag == f"{_TABLE_NS}table-row":
            if shown:
                rows.extend(_ods_row(elem, row_number))
                row_number += int(elem.get(f"{_TABLE_NS}number-rows-repeated", "1"))
            elem.clear()
        elif event == "end" and elem.tag == f"{_TABLE_NS}table":
            if shown:
                yield name, iter(rows)
            elem.clear()


def load_ods(path: Path, limits: ParseLimits) -> str:
    """Cell texts of every table in an OpenDocument spreadsheet, each row's annotations after it; hidden tables are
    left out."""
    check_zip(path, ODS, limits)
    budget = [limits.max_text_chars]
    with zipfile.ZipFile(path) as archive, archive.open("content.xml") as content:
        try:
            blocks = [_sheet_block(name, rows, budget) for name, rows in _ods_sheets(content)]
        except _OverBudget:
            raise limits.text_too_long(path.name, ODS) from None
    return "\n\n".join(block for block in blocks if block)

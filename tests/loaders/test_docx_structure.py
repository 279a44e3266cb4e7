"""Word documents keep the text python-docx does not reach: nested tables, content controls, repeating sections,
charts, footnotes and endnotes."""

import logging
import zipfile
from pathlib import Path

import docx
import pytest
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from office_kit import (
    add_inline_drawing,
    chart_data,
    docx_text,
)
from pptx.chart.xmlwriter import ChartXmlWriter
from pptx.enum.chart import XL_CHART_TYPE
from pptx.opc.constants import CONTENT_TYPE as CT
from pptx.opc.constants import RELATIONSHIP_TYPE as RT
from secret_documents import SECRET, quoted_secret

from quart_app.loaders import extract_text


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


def _add_notes_parts(path: Path, parts: dict[str, str] = _NOTES_PARTS, names: dict[str, str] | None = None) -> None:
    """Rewrite a python-docx file with a footnotes and an endnotes part (python-docx cannot write them), each named
    as `names` says ("footnotes" by default: word/footnotes.xml)."""
    with zipfile.ZipFile(path) as source:
        members = {name: source.read(name) for name in source.namelist()}
    rels = members["word/_rels/document.xml.rels"].decode()
    types = members["[Content_Types].xml"].decode()
    for kind, notes in parts.items():
        name = (names or {}).get(kind, kind)
        members[f"word/{name}.xml"] = f"<w:{kind} {nsdecls('w')}>{notes}</w:{kind}>".encode()
        rels = rels.replace(
            "</Relationships>",
            f'<Relationship Id="rId{kind}" Target="{name}.xml" '
            f'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/{kind}"/></Relationships>',
        )
        types = types.replace(
            "</Types>",
            f'<Override PartName="/word/{name}.xml" '
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
    assert "skipped the damaged footnotes part: ERR_" in caplog.text


def test_a_damaged_docx_notes_part_is_named_by_its_kind_never_by_its_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # whoever made the file chose its parts' names, text included; the warning reaches the parser's log
    document = docx.Document()
    document.add_paragraph("Revenue grew by 12 percent.")
    path = tmp_path / "report.docx"
    document.save(str(path))
    damaged = {**_NOTES_PARTS, "endnotes": '<w:endnote w:id="1"><w:p>unclosed'}
    _add_notes_parts(path, damaged, names={"footnotes": f"notes/{SECRET}", "endnotes": SECRET})
    text = extract_text(path, "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    assert text == "Revenue grew by 12 percent.\n\nSource: Federal Statistical Office, 2023."
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == ["skipped the damaged endnotes part: ERR_TAG_NAME_MISMATCH, line 1, column 130"]
    assert quoted_secret(caplog.text) == []

"""Drawings Word keeps outside the paragraphs' runs: their text is indexed where the drawing stands."""

from pathlib import Path

import docx
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from office_kit import SMARTART_DATA, add_inline_drawing, docx_text
from pptx.opc.constants import CONTENT_TYPE as CT


def test_docx_smartart_text_is_indexed_where_the_diagram_is(tmp_path: Path) -> None:
    # python-docx does not read drawings: a process diagram's steps (the point of the page) were missing
    document = docx.Document()
    document.add_paragraph("Project plan")
    add_inline_drawing(
        document,
        "/word/diagrams/data1.xml",
        CT.DML_DIAGRAM_DATA,
        SMARTART_DATA,
        RT.DIAGRAM_DATA,
        "Diagram",
        '<a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/diagram"><dgm:relIds'
        ' xmlns:dgm="http://schemas.openxmlformats.org/drawingml/2006/diagram" r:dm="{rel_id}" r:lo="" r:qs=""'
        ' r:cs=""/></a:graphicData>',
    )
    document.add_paragraph("Budget: 40,000 EUR.")
    assert docx_text(document, tmp_path / "plan.docx") == (
        "Project plan\n\nPlan the rollout\nTrain the support team\n\nBudget: 40,000 EUR."
    )


def test_docx_text_boxes_keep_tabs_line_breaks_and_equations(tmp_path: Path) -> None:
    # a text box's text was its w:t elements joined: "Name:<tab>Ada" became "Name:Ada", lines ran together and an
    # equation in the box was lost
    document = docx.Document()
    document.add_paragraph("Body text.")
    document.add_paragraph()._p.append(
        parse_xml(
            f'<w:r {nsdecls("w")} xmlns:v="urn:schemas-microsoft-com:vml" '
            'xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math"><w:pict><v:shape><v:textbox>'
            "<w:txbxContent><w:p><w:r><w:t>Name:</w:t><w:tab/><w:t>Ada</w:t><w:br/><w:t>Role: engineer</w:t></w:r>"
            "</w:p>"
            "<w:p><w:r><w:t>Rule: </w:t></w:r><m:oMath><m:r><m:t>E=m</m:t></m:r><m:sSup><m:e><m:r><m:t>c</m:t></m:r>"
            "</m:e><m:sup><m:r><m:t>2</m:t></m:r></m:sup></m:sSup></m:oMath></w:p>"
            "</w:txbxContent></v:textbox></v:shape></w:pict></w:r>"
        )
    )
    assert docx_text(document, tmp_path / "card.docx") == "Body text.\n\nName:\tAda\nRole: engineer\nRule: E=mc^2"

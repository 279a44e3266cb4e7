"""Drawings Word keeps outside the paragraphs' runs: their text is indexed where the drawing stands."""

import io
from pathlib import Path
from typing import Any

import docx
import pytest
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from office_kit import PIXEL, SMARTART_DATA, add_inline_drawing, docx_text
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


def _picture(
    paragraph: Any, title: str = "", description: str = "", decorative: bool = False, hidden: bool = False
) -> None:
    """A picture in a run of its own at the paragraph's end, with the alt text Word's Alt Text pane saves."""
    run = paragraph.add_run()
    run.font.hidden = hidden
    doc_pr = run.add_picture(io.BytesIO(PIXEL))._inline.docPr
    for name, value in (("title", title), ("descr", description)):
        if value:
            doc_pr.set(name, value)
    if decorative:
        doc_pr.append(
            parse_xml(
                f'<a:extLst {nsdecls("a")}><a:ext uri="{{C183D7F6-B498-43B3-948B-1728B52AA6E4}}">'
                '<adec:decorative xmlns:adec="http://schemas.microsoft.com/office/drawing/2017/decorative" val="1"/>'
                "</a:ext></a:extLst>"
            )
        )


def test_docx_a_picture_s_alt_text_is_indexed_where_it_stands(tmp_path: Path) -> None:
    # python-docx reads no drawing: a picture's alt text (what a screen reader says for it) was not indexed
    document = docx.Document()
    sentence = document.add_paragraph("See the map ")
    _picture(sentence, title="Site map", description="The harbour")
    sentence.add_run(" of the site.")
    glued = document.add_paragraph("Total")
    _picture(glued, description="Sales\n  by region")
    glued.add_run(", then ACME GmbH.")
    # Word's own descriptions, as it saves them (a guessed caption, a blank line, its notice), are no one's words;
    # a title written beside one is kept
    _picture(
        document.add_paragraph(),
        description="A picture containing text, outdoor\n\nDescription automatically generated",
    )
    _picture(
        document.add_paragraph(), description="A close up of a logo\n\nDescription generated with very high confidence"
    )
    _picture(
        document.add_paragraph(),
        title="Support hotline",
        description="A screenshot of a phone\n\nAI-generated content may be incorrect.",
    )
    # a picture marked decorative has no alt text to read, whatever its description still says
    _picture(document.add_paragraph("Agenda"), description="Blue swirl", decorative=True)
    # nor the file name older Word versions saved as the description
    _picture(document.add_paragraph("Scan"), description="C:\\Users\\ada\\Pictures\\IMG_0042.JPG")
    # nor one in hidden text (a run with w:vanish): Word does not show it
    _picture(document.add_paragraph("Draft"), description="Stamp saying not approved", hidden=True)
    # in a header too
    header = document.sections[0].header.paragraphs[0]
    header.add_run("ACME")
    _picture(header, title="ACME logo", description="ACME logo")
    assert docx_text(document, tmp_path / "site.docx") == (
        "See the map Site map: The harbour of the site.\n\nTotal Sales by region, then ACME GmbH.\n\n"
        "Support hotline\n\nAgenda\n\nScan\n\nDraft\n\nACME ACME logo"
    )


def _vml_picture(document: Any, title: str, description: str) -> str:
    """A w:pict as Word writes a converted .doc's picture: a VML shape, its description in alt, its title in o:title."""
    rel_id, _ = document.part.get_or_add_image(io.BytesIO(PIXEL))
    return (
        '<w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
        f'id="Picture 1" o:spid="_x0000_i1025" type="#_x0000_t75" alt="{description}" style="width:40pt;height:30pt">'
        f'<v:imagedata r:id="{rel_id}" o:title="{title}"/></v:shape></w:pict>'
    )


def _runs(paragraph: Any, xml: str) -> None:
    """A run of this content (XML) at the paragraph's end."""
    mc = "http://schemas.openxmlformats.org/markup-compatibility/2006"
    paragraph._p.append(parse_xml(f'<w:r {nsdecls("w", "wp", "a", "r")} xmlns:mc="{mc}">{xml}</w:r>'))


def test_docx_a_converted_doc_s_vml_picture_s_alt_text_is_indexed_where_it_stands(tmp_path: Path) -> None:
    # a .doc converted to .docx keeps its pictures as VML (w:pict/v:shape), which carry their alt text in other
    # attributes than a wp:docPr: it was lost
    document = docx.Document()
    sentence = document.add_paragraph("See the plan ")
    _runs(sentence, _vml_picture(document, "Floor plan", "The ground\n floor"))
    sentence.add_run(" of the office.")
    _runs(document.add_paragraph("Signed "), _vml_picture(document, "", "Stamp of the registry"))
    # Word's own description, a picture in hidden text: nothing to read
    _runs(document.add_paragraph("Photo"), _vml_picture(document, "", "A dog\n\nDescription automatically generated"))
    hidden = document.add_paragraph("Draft")
    _runs(hidden, f"<w:rPr><w:vanish/></w:rPr>{_vml_picture(document, 'Watermark', 'Not approved')}")
    # Word 2010 and later save a drawing with a VML copy for older readers: it reads once
    _runs(
        document.add_paragraph("Logo"),
        '<mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:inline><wp:extent cx="100" cy="100"/>'
        '<wp:docPr id="9" name="Picture 9" descr="ACME logo"/><a:graphic><a:graphicData uri="urn:none"/></a:graphic>'
        f"</wp:inline></w:drawing></mc:Choice><mc:Fallback>{_vml_picture(document, '', 'ACME logo')}</mc:Fallback>"
        "</mc:AlternateContent>",
    )
    assert docx_text(document, tmp_path / "converted.docx") == (
        "See the plan Floor plan: The ground floor of the office.\n\nSigned Stamp of the registry\n\nPhoto\n\nDraft\n\n"
        "Logo ACME logo"
    )


def _text_box(alt_title: str, alt_description: str, paragraphs: str) -> str:
    """A text box as Word 2010 and later save it: a DrawingML shape (wps:txbx) with its alt text in wp:docPr, and a
    VML copy (v:textbox) for older readers, the same paragraphs in both."""
    wps = "http://schemas.microsoft.com/office/word/2010/wordprocessingShape"
    box = f"<w:txbxContent>{paragraphs}</w:txbxContent>"
    return (
        f'<mc:AlternateContent><mc:Choice Requires="wps" xmlns:wps="{wps}"><w:drawing><wp:anchor><wp:extent cx="100"'
        f' cy="100"/><wp:docPr id="5" name="Text Box 5" title="{alt_title}" descr="{alt_description}"/><a:graphic>'
        f'<a:graphicData uri="{wps}"><wps:wsp><wps:txbx>{box}</wps:txbx></wps:wsp></a:graphicData></a:graphic>'
        '</wp:anchor></w:drawing></mc:Choice><mc:Fallback><w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml"'
        f' alt="{alt_description}"><v:textbox>{box}</v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent>'
    )


def test_docx_a_text_box_s_alt_text_equal_to_its_text_is_read_once(tmp_path: Path) -> None:
    # Word's Alt Text pane may hold the box's own text (whitespace aside): it was indexed where the box stands and
    # again as the box's text
    document = docx.Document()
    _runs(
        document.add_paragraph("Contact"),
        _text_box("", "Call us:\n0800 123", "<w:p><w:r><w:t>Call us: 0800 123</w:t></w:r></w:p>"),
    )
    # a title that adds something is kept, the description equal to the box's two paragraphs left out
    two = "<w:p><w:r><w:t>Opening hours</w:t></w:r></w:p><w:p><w:r><w:t>Mon to Fri</w:t></w:r></w:p>"
    _runs(document.add_paragraph("Visit"), _text_box("Hours", "Opening hours Mon to Fri", two))
    # an alt text saying something else than the box is read
    _runs(
        document.add_paragraph("Note"), _text_box("", "Yellow sticky note", "<w:p><w:r><w:t>Bring ID</w:t></w:r></w:p>")
    )
    # a converted .doc's VML text box, its description in the shape's alt
    _runs(
        document.add_paragraph("Address"),
        '<w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml" alt="1 Quay Street"><v:textbox><w:txbxContent>'
        '<w:p><w:r><w:t>1 Quay</w:t></w:r><w:r><w:t xml:space="preserve"> Street</w:t></w:r></w:p>'
        "</w:txbxContent></v:textbox></v:shape></w:pict>",
    )
    assert docx_text(document, tmp_path / "boxes.docx") == (
        "Contact\n\nVisit Hours\n\nNote Yellow sticky note\n\nAddress\n\n"
        "Call us: 0800 123\n\nOpening hours\nMon to Fri\n\nBring ID\n\n1 Quay Street"
    )


def _embedded_object(document: Any, title: str, description: str) -> str:
    """A w:object as Word writes a converted .doc's embedded (OLE) object: its shape type, the VML shape showing the
    object's picture (its description in alt, its title in o:title) and the o:OLEObject it stands for."""
    rel_id, _ = document.part.get_or_add_image(io.BytesIO(PIXEL))
    return (
        '<w:object xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
        'w:dxaOrig="1440" w:dyaOrig="1080"><v:shapetype id="_x0000_t75" o:spt="75" path="m@4@5l@4@11@9@11@9@5xe"/>'
        f'<v:shape id="_x0000_i1025" type="#_x0000_t75" alt="{description}" style="width:72pt;height:54pt" o:ole="">'
        f'<v:imagedata r:id="{rel_id}" o:title="{title}"/></v:shape><o:OLEObject Type="Embed" ProgID="Excel.Sheet.8" '
        'ShapeID="_x0000_i1025" DrawAspect="Content" ObjectID="_1700000001"/></w:object>'
    )


def test_docx_an_embedded_object_s_alt_text_is_indexed_where_it_stands(tmp_path: Path) -> None:
    # a converted .doc's embedded object (a spreadsheet, an equation) shows a VML picture in a w:object, not a
    # w:pict: its alt text was lost
    document = docx.Document()
    sentence = document.add_paragraph("Sales ")
    _runs(sentence, _embedded_object(document, "Sales table", "Sales by\n quarter"))
    sentence.add_run("in 2024.")
    # the rules of every picture: Word's own description, a file name and an object in hidden text are not read
    _runs(
        document.add_paragraph("Chart"),
        _embedded_object(document, "", "A chart\n\nDescription automatically generated"),
    )
    _runs(document.add_paragraph("Sheet"), _embedded_object(document, "", "C:\\Data\\budget.wmf"))
    hidden = document.add_paragraph("Draft")
    _runs(hidden, f"<w:rPr><w:vanish/></w:rPr>{_embedded_object(document, 'Old figures', 'Not approved')}")
    assert docx_text(document, tmp_path / "objects.docx") == (
        "Sales Sales table: Sales by quarter in 2024.\n\nChart\n\nSheet\n\nDraft"
    )


@pytest.mark.parametrize(
    ("caption", "notice"),
    [
        ("Ein Bild, das Text, Screenshot enthält.", "Automatisch generierte Beschreibung"),
        ("Une image contenant texte, capture d'écran", "Description générée automatiquement"),
        ("Imagen que contiene texto, captura de pantalla", "Descripción generada automáticamente"),
        ("Immagine che contiene testo, schermata", "Descrizione generata automaticamente"),
        ("Afbeelding met tekst, schermopname", "Automatisch gegenereerde beschrijving"),
        ("Uma imagem com texto, captura de ecrã", "Descrição gerada automaticamente"),
    ],
    ids=["de", "fr", "es", "it", "nl", "pt"],
)
def test_docx_word_s_own_description_is_left_out_in_other_languages(tmp_path: Path, caption: str, notice: str) -> None:
    # Word ends the description it generates with its notice in the document's UI language: only the English one
    # was recognised, a German document's guessed captions were indexed as the author's words
    document = docx.Document()
    _picture(document.add_paragraph("Logo"), description=f"{caption}\n\n{notice}")
    # as a converter joins the lines, in capitals, and beside a title the author wrote
    _picture(document.add_paragraph("Plan"), title="Floor plan", description=f"{caption} {notice.upper()}.")
    # only the notice ending the description counts: the same words leading the author's own are kept
    _picture(document.add_paragraph("Note"), description=f"{notice}: plan 2")
    assert docx_text(document, tmp_path / "generated.docx") == f"Logo\n\nPlan Floor plan\n\nNote {notice}: plan 2"

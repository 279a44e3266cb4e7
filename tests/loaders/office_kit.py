"""Word, PowerPoint and OpenDocument text documents built in a test and read back through the loaders."""

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import docx
import odfdo
import pptx
from docx.opc.packuri import PackURI
from docx.opc.part import Part
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from PIL import Image
from pptx.chart.data import CategoryChartData

from quart_app.loaders import extract_text

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _pixel() -> bytes:
    """A 1x1 transparent PNG (whole: python-docx reads its chunks to size the picture)."""
    png = io.BytesIO()
    Image.new("RGBA", (1, 1)).save(png, "PNG")
    return png.getvalue()


PIXEL = _pixel()

# a LibreOffice Math formula's frame, as LibreOffice writes it anchored as a character in a sentence
FORMULA_FRAME = (
    '<draw:frame draw:name="Object1" text:anchor-type="as-char" svg:width="2cm" svg:height="0.5cm">'
    '<draw:object xlink:href="./Object 1" xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/>'
    '<draw:image xlink:href="./ObjectReplacements/Object 1" xlink:type="simple" xlink:show="embed" '
    'xlink:actuate="onLoad"/></draw:frame>'
)
# LibreOffice Math's object part: the formula as MathML, with its StarMath source as an annotation
FORMULA_CONTENT = (
    '<?xml version="1.0" encoding="UTF-8"?><math xmlns="http://www.w3.org/1998/Math/MathML" display="block">'
    "<semantics><mrow><mi>E</mi><mo>=</mo><mi>m</mi><msup><mi>c</mi><mn>2</mn></msup></mrow>"
    '<annotation encoding="StarMath 5.0">E = m c^2</annotation></semantics></math>'
)

# a SmartArt data part with two steps, a connector and a layout point, as Office writes it
SMARTART_DATA = (
    '<dgm:dataModel xmlns:dgm="http://schemas.openxmlformats.org/drawingml/2006/diagram" '
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><dgm:ptLst>'
    '<dgm:pt modelId="0" type="doc"><dgm:t><a:bodyPr/><a:p><a:endParaRPr/></a:p></dgm:t></dgm:pt>'
    '<dgm:pt modelId="1"><dgm:t><a:bodyPr/><a:p><a:r><a:t>Plan the rollout</a:t></a:r></a:p></dgm:t></dgm:pt>'
    '<dgm:pt modelId="2" type="parTrans"><dgm:t><a:bodyPr/><a:p><a:r><a:t>arrow</a:t></a:r></a:p></dgm:t></dgm:pt>'
    '<dgm:pt modelId="3"><dgm:t><a:bodyPr/><a:p><a:r><a:t>Train the </a:t></a:r><a:r><a:t>support team</a:t></a:r>'
    "</a:p></dgm:t></dgm:pt>"
    '<dgm:pt modelId="4" type="pres"><dgm:prSet presName="node"/></dgm:pt>'
    "</dgm:ptLst></dgm:dataModel>"
)


def odt_with_styles(automatic: str = "", common: str = "", outline: str = "") -> Any:
    """An empty OpenDocument text whose content.xml holds these automatic styles (style:style, text:list-style …) and
    whose styles.xml these common styles; `outline`, a text:outline-style, replaces the template's outline numbering."""
    document = odfdo.Document("text")
    document.body.clear()
    styles = document.styles.get_element("//office:styles")
    assert styles is not None
    if outline:
        for template_outline in styles.get_elements("text:outline-style"):
            styles.delete(template_outline)
    for xml, parent in (
        (automatic, document.content.get_element("//office:automatic-styles")),
        (common + outline, styles),
    ):
        assert parent is not None
        for style in odfdo.Element.from_tag(f"<office:styles>{xml}</office:styles>").children:
            parent.append(style)
    return document


def odt_text(document: Any, body: Iterable[str], path: Path) -> str:
    """The loader's text of the document with these elements (XML) appended to its body, saved at `path`."""
    for xml in body:
        document.body.append(odfdo.Element.from_tag(xml))
    document.save(str(path))
    return extract_text(path, "application/vnd.oasis.opendocument.text")


def docx_text(document: Any, path: Path) -> str:
    document.save(str(path))
    return extract_text(path, DOCX)


def numbering_level(index: int, style: str, text: str, start: int = 1, legal: bool = False) -> str:
    """A w:lvl of word/numbering.xml."""
    return (
        f'<w:lvl w:ilvl="{index}"><w:start w:val="{start}"/><w:numFmt w:val="{style}"/>'
        f'{"<w:isLgl/>" if legal else ""}<w:lvlText w:val="{text}"/></w:lvl>'
    )


def docx_text_with_numbering(document: docx.document.Document, numbering: str, path: Path) -> str:
    """The loader's text of the document saved at `path` with this word/numbering.xml, as Word would have written it."""
    document.save(str(path))
    with zipfile.ZipFile(path) as source:
        parts = {item.filename: source.read(item) for item in source.infolist()}
    parts["word/numbering.xml"] = numbering.encode()
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return extract_text(path, DOCX)


def numbered_paragraph(document: docx.document.Document, text: str, num_id: int, level: int = 0) -> None:
    """A paragraph of list `num_id` at `level`."""
    paragraph = document.add_paragraph(text)
    paragraph._p.get_or_add_pPr().append(
        parse_xml(f'<w:numPr {nsdecls("w")}><w:ilvl w:val="{level}"/><w:numId w:val="{num_id}"/></w:numPr>')
    )


def add_inline_drawing(
    document: Any, part_name: str, content_type: str, xml: str, rel_type: str, kind: str, graphic: str
) -> None:
    """`xml` as a part of `document` and a paragraph holding an inline drawing of it, as Word saves a chart or a
    diagram: `kind` names the drawing (Chart, Diagram), `graphic` its graphicData with {rel_id} for the part's."""
    rel_id = document.part.relate_to(
        Part(PackURI(part_name), content_type, xml.encode(), document.part.package), rel_type
    )
    document.add_paragraph()._p.append(
        parse_xml(
            f'<w:r {nsdecls("w", "wp", "a", "r")}><w:drawing><wp:inline><wp:extent cx="100" cy="100"/>'
            f'<wp:docPr id="1" name="{kind} 1"/><a:graphic>{graphic.format(rel_id=rel_id)}</a:graphic></wp:inline>'
            "</w:drawing></w:r>"
        )
    )


def titled_slide(title: str) -> tuple[Any, Any]:
    """A new presentation and its one slide, of the title-only layout, titled `title`."""
    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    slide.shapes.title.text = title
    return presentation, slide


def deck_text(presentation: Any, path: Path) -> str:
    presentation.save(str(path))
    return extract_text(path, "application/vnd.openxmlformats-officedocument.presentationml.presentation")


def chart_data(categories: list[str], series: dict[str, tuple[float, ...]]) -> CategoryChartData:
    data = CategoryChartData()  # type: ignore[no-untyped-call]  # python-pptx's chart data has no type hints
    data.categories = categories
    for name, values in series.items():
        data.add_series(name, values)  # type: ignore[no-untyped-call]
    return data


def equation_text_box(before: str, after: str, equation: str = "<m:r><m:t>E=mc</m:t></m:r>") -> str:
    """A text box holding an equation as PowerPoint saves it: the shape in mc:Choice, a picture of it as fallback."""
    return (
        '<mc:AlternateContent xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" '
        'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
        'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
        'xmlns:a14="http://schemas.microsoft.com/office/drawing/2010/main" '
        'xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><mc:Choice Requires="a14">'
        '<p:sp><p:nvSpPr><p:cNvPr id="7" name="TextBox 6"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr><p:spPr/>'
        f"<p:txBody><a:bodyPr/><a:p><a:r><a:t>{before}</a:t></a:r><a14:m><m:oMath>{equation}"
        f"</m:oMath></a14:m><a:r><a:t>{after}</a:t></a:r></a:p></p:txBody></p:sp></mc:Choice><mc:Fallback><p:sp>"
        '<p:nvSpPr><p:cNvPr id="7" name="TextBox 6"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr><p:spPr><a:blipFill>'
        '<a:blip r:embed="rId99"/></a:blipFill></p:spPr><p:txBody><a:bodyPr/><a:p><a:r><a:t> </a:t></a:r></a:p>'
        "</p:txBody></p:sp></mc:Fallback></mc:AlternateContent>"
    )

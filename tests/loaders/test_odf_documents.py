"""OpenDocument text files: what LibreOffice shows is what gets indexed."""

import io
import zipfile
from pathlib import Path

import odfdo

from quart_app.loaders import extract_text

ODT = "application/vnd.oasis.opendocument.text"
# a 1x1 transparent PNG
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c636000000200"
    "0100ffff03000006000557bfabd40000000049454e44ae426082"
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


def test_odt_encoded_spaces_keep_words_apart(tmp_path: Path) -> None:
    # odfdo formats a text:s as nothing, and writes a run's last space as one itself: "Price:40 EUR, due in May."
    document = odfdo.Document("text")
    document.body.clear()
    priced = odfdo.Paragraph("Price: ")
    priced.append(odfdo.Span("40 EUR"))
    priced.append(", due  in May.")
    document.body.append(priced)
    document.body.append(odfdo.Element.from_tag('<text:p>Code:<text:s text:c="3"/>7<text:s text:c="x"/>B</text:p>'))
    path = tmp_path / "invoice"
    document.save(str(path))
    assert extract_text(path, ODT) == "Price: 40 EUR, due  in May.\n\nCode:   7 B"


def test_odt_text_boxes_are_paragraphs_of_their_own_after_the_one_they_stand_in(tmp_path: Path) -> None:
    # odfdo indented a box's paragraphs by two spaces inside the paragraph of its frame, a blank line after each:
    # "See the box   Opening hours:\n  \n  9 to 5.\n  \n for details."
    document = odfdo.Document("text")
    document.body.clear()
    for xml in (
        # as LibreOffice writes them: a box anchored as a character in a sentence, one anchored to the page
        '<text:p>See the box <draw:frame draw:name="Hours" text:anchor-type="as-char" svg:width="4cm">'
        "<draw:text-box><text:p>Opening hours:</text:p><text:p>9 to 5.</text:p></draw:text-box></draw:frame> for "
        "details.</text:p>",
        '<draw:frame draw:name="Stamp" text:anchor-type="page" text:anchor-page-number="1" svg:width="3cm">'
        "<draw:text-box><text:p>Draft</text:p></draw:text-box></draw:frame>",
        "<text:p>Closed on Sundays.</text:p>",
    ):
        document.body.append(odfdo.Element.from_tag(xml))
    path = tmp_path / "shop"
    document.save(str(path))
    assert extract_text(path, ODT) == (
        "See the box for details.\n\nOpening hours:\n\n9 to 5.\n\nDraft\n\nClosed on Sundays."
    )

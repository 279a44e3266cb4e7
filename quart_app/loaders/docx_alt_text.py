"""A Word drawing's alt text in the paragraph's text: where the drawing stands, set apart from the words around it
(which alt text a drawing has, and which is left out, is office_alt_text's). A DrawingML drawing keeps it in its
wp:docPr; a picture of a converted .doc is VML (w:pict/v:shape, or w:object/v:shape for an embedded object's picture),
its description in the shape's alt attribute and its title in the o:title of its v:imagedata. A text box's alt text is
read only where it adds to the box's own text."""

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .office_alt_text import alt_text, described, spaced

DOC_PR = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}docPr"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# a VML picture's run element: w:pict, or w:object for an embedded (OLE) object, shown as the picture its v:shape holds
VML_PICTURES = (f"{_W}pict", f"{_W}object")
_V = "{urn:schemas-microsoft-com:vml}"
_VML_KINDS = ("shape", "rect", "roundrect", "oval", "line", "polyline", "arc", "curve", "image", "group")
_VML_SHAPES = tuple(f"{_V}{kind}" for kind in _VML_KINDS)
_VML_IMAGE = f"{_V}imagedata"
_VML_TITLE = "{urn:schemas-microsoft-com:office:office}title"
TEXT_BOX = f"{_W}txbxContent"
# the text a text box (w:txbxContent) is indexed with
BoxText = Callable[[Any], str]


def _shown(drawing: Any, box_text: BoxText) -> str:
    """The text of the drawing's text boxes, as it is indexed."""
    return " ".join(box_text(box) for box in drawing.iter(TEXT_BOX))


def drawing_alt_text(doc_pr: Any, box_text: BoxText) -> str:
    """The alt text of a DrawingML drawing (its wp:docPr), less what repeats the text of its text boxes."""
    if not (doc_pr.get("title") or doc_pr.get("descr")):
        return ""  # most drawings have no alt text: their text boxes are not read for it
    return alt_text(doc_pr, _shown(doc_pr.getparent(), box_text))


def _vml_alt_texts(picture: Any, box_text: BoxText) -> Iterator[str]:
    # a shape in a text box of this picture belongs to that text box's paragraph
    for shape in picture.iter(_VML_SHAPES):
        if next(shape.iterancestors(*VML_PICTURES), None) is picture:
            image = shape.find(_VML_IMAGE)
            title, description = "" if image is None else image.get(_VML_TITLE, ""), shape.get("alt", "")
            if (title or description) and (text := described(title, description, _shown(shape, box_text))):
                yield text


def vml_alt_text(picture: Any, box_text: BoxText) -> str:
    """The alt text of a w:pict's or w:object's VML shapes (a group's shapes, each), one line, less what repeats the
    text of their text boxes."""
    return " ".join(_vml_alt_texts(picture, box_text))


def with_alt_texts(pieces: Sequence[str], alt_text_at: Sequence[int]) -> str:
    """The paragraph's pieces joined, each alt text (at the indexes `alt_text_at`) set apart by a space from the words
    around it ("See the map Site map of the site.", "Total Sales by region, then ..."), as the .odt loader does.
    `alt_text_at` ascending; one pass each way (looking around every alt text was quadratic in a paragraph's runs)."""
    after = [""] * len(pieces)  # the first piece that is not empty after each
    following = ""
    for index in range(len(pieces) - 1, -1, -1):
        after[index] = following
        following = pieces[index] or following
    joined = list(pieces)
    before = ""  # the last piece joined that is not empty
    alt_texts = iter(alt_text_at)
    next_alt_text = next(alt_texts, None)
    for index, piece in enumerate(pieces):
        if index == next_alt_text:
            joined[index] = spaced(before, piece, after[index])
            next_alt_text = next(alt_texts, None)
        before = joined[index] or before
    return "".join(joined)

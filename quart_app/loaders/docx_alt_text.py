"""A Word drawing's alt text in the paragraph's text: where the drawing stands, set apart from the words around it
(which alt text a drawing has, and which is left out, is office_alt_text's). A DrawingML drawing keeps it in its
wp:docPr; a picture of a converted .doc is VML (w:pict/v:shape), its description in the shape's alt attribute and its
title in the o:title of its v:imagedata."""

from collections.abc import Iterator, Sequence
from typing import Any

from .office_alt_text import described, spaced

DOC_PR = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}docPr"
VML_PICTURE = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}pict"
_V = "{urn:schemas-microsoft-com:vml}"
_VML_KINDS = ("shape", "rect", "roundrect", "oval", "line", "polyline", "arc", "curve", "image", "group")
_VML_SHAPES = tuple(f"{_V}{kind}" for kind in _VML_KINDS)
_VML_IMAGE = f"{_V}imagedata"
_VML_TITLE = "{urn:schemas-microsoft-com:office:office}title"


def _vml_alt_texts(picture: Any) -> Iterator[str]:
    # a shape in a text box of this picture belongs to that text box's paragraph
    for shape in picture.iter(_VML_SHAPES):
        if next(shape.iterancestors(VML_PICTURE), None) is picture:
            image = shape.find(_VML_IMAGE)
            if text := described("" if image is None else image.get(_VML_TITLE, ""), shape.get("alt", "")):
                yield text


def vml_alt_text(picture: Any) -> str:
    """The alt text of a w:pict's VML shapes (a group's shapes, each), one line."""
    return " ".join(_vml_alt_texts(picture))


def with_alt_texts(pieces: Sequence[str], alt_text_at: Sequence[int]) -> str:
    """The paragraph's pieces joined, each alt text (at the indexes `alt_text_at`) set apart by a space from the words
    around it ("See the map Site map of the site.", "Total Sales by region, then ..."), as the .odt loader does."""
    joined = list(pieces)
    for index in alt_text_at:
        before = next((piece for piece in reversed(joined[:index]) if piece), "")
        after = next((piece for piece in pieces[index + 1 :] if piece), "")
        joined[index] = spaced(before, pieces[index], after)
    return "".join(joined)

"""A Word drawing's alt text in the paragraph's text: where the drawing stands, set apart from the words around it
(which alt text a drawing has, and which is left out, is office_alt_text's)."""

from collections.abc import Sequence

DOC_PR = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}docPr"


def with_alt_texts(pieces: Sequence[str], alt_text_at: Sequence[int]) -> str:
    """The paragraph's pieces joined, each alt text (at the indexes `alt_text_at`) set apart by a space from the words
    around it ("See the map Site map of the site.", "Total Sales by region, then ..."), as the .odt loader does."""
    spaced = list(pieces)
    for index in alt_text_at:
        before = next((piece for piece in reversed(spaced[:index]) if piece), "")
        after = next((piece for piece in pieces[index + 1 :] if piece), "")
        space_before = " " if before and not before[-1].isspace() else ""
        space_after = " " if after[:1].isalnum() else ""
        spaced[index] = f"{space_before}{pieces[index]}{space_after}"
    return "".join(spaced)

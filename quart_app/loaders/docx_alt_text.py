"""A Word drawing's alt text (wp:docPr's title and description) as the text reads it, in the drawing's place: what a
screen reader says for a picture, a chart or a shape. Left out: a drawing marked decorative, and the descriptions Word
generates itself, recognised by the line Word ends them with (English only: "Description automatically generated",
"Description generated with high confidence", "AI-generated content may be incorrect.")."""

import re
from collections.abc import Sequence
from typing import Any

DOC_PR = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}docPr"
_DECORATIVE = "{http://schemas.microsoft.com/office/drawing/2017/decorative}decorative"
_CONFIDENCE = r"(?:very high|high|medium|low) confidence"
# Word writes the caption it guessed, a blank line and one of these ("A picture containing text\n\nDescription
# automatically generated"); a converter may have joined the lines with a space or ", " ("Diagram, description ...")
_GENERATED = re.compile(
    rf"(?:^|[\s,])(?:description (?:automatically generated(?: with {_CONFIDENCE})?|generated with {_CONFIDENCE})"
    r"|ai-generated content may be incorrect)\.?$",
    re.IGNORECASE,
)


def _is_decorative(doc_pr: Any) -> bool:
    """Marked decorative in Word's Alt Text pane (adec:decorative in the docPr's extension list)."""
    return any(mark.get("val") in ("1", "true") for mark in doc_pr.iter(_DECORATIVE))


def alt_text(doc_pr: Any) -> str:
    """The drawing's title and description, one line ("Site map: The harbour"; a description equal to the title
    once); "" for a decorative drawing, and without a description Word generated."""
    title = " ".join(doc_pr.get("title", "").split())
    description = " ".join(doc_pr.get("descr", "").split())
    if not (title or description) or _is_decorative(doc_pr):
        return ""
    if _GENERATED.search(description):
        description = ""
    return ": ".join(dict.fromkeys(part for part in (title, description) if part))


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

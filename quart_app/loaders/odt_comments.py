"""An OpenDocument text's comments (office:annotation) as paragraphs after the paragraph they comment, marked as in a
.docx ("Comment by <author>: <text>"): odfdo glued a "[*]" into the commented word and listed the comment's text after
a "----" line, without its author."""

from typing import Any

import odfdo

from .odt_hidden import remove_keeping_tail
from .odt_lists import ListStyles, OdtListLabels

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_ANNOTATION = f"{_OFFICE}annotation"
# a commented range ends at a marker of its own
_ANNOTATION_END = f"{_OFFICE}annotation-end"
_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
_BLOCKS = (f"{_TEXT}p", f"{_TEXT}h")


def _comment_text(annotation: Any, styles: ListStyles) -> str:
    """The comment's paragraphs on one line, its list items with their labels (counted apart from the body's)."""
    OdtListLabels(styles).label_lists(annotation)
    paragraphs = (odfdo.Element.from_tag(child) for child in annotation.iterchildren(*_BLOCKS))
    return " ".join(" ".join(paragraph.get_formatted_text().split()) for paragraph in paragraphs).strip()


def comments_as_paragraphs(root: Any, styles: ListStyles) -> None:
    """Move each comment under `root` (an lxml element) out of its paragraph into a paragraph of its own after it."""
    placed_after: dict[Any, Any] = {}
    for annotation in list(root.iter(_ANNOTATION)):
        block = next(annotation.iterancestors(*_BLOCKS), None)
        text = _comment_text(annotation, styles)
        author = " ".join((annotation.findtext(_CREATOR) or "").split())
        remove_keeping_tail(annotation)
        if block is None or not text:
            continue
        comment = odfdo.Paragraph(f"Comment by {author}: {text}" if author else f"Comment: {text}")._xml_element
        # several comments on one paragraph follow it in the order they stand in it
        placed_after.get(block, block).addnext(comment)
        placed_after[block] = comment
    for end in list(root.iter(_ANNOTATION_END)):
        remove_keeping_tail(end)

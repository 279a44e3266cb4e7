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


def _thread(annotation: Any, styles: ListStyles) -> list[str]:
    """The comment and the replies nested in it (as some writers store a thread), each as "Comment by <author>: <text>",
    in document order; all of them are taken out of the document."""
    comments: list[str] = []
    # a nested reply comes after its comment in document order: taken innermost first, it is out of its parent's text
    for member in reversed(list(annotation.iter(_ANNOTATION))):
        text = _comment_text(member, styles)
        author = " ".join((member.findtext(_CREATOR) or "").split())
        remove_keeping_tail(member)
        if text:
            comments.append(f"Comment by {author}: {text}" if author else f"Comment: {text}")
    return comments[::-1]


def comments_as_paragraphs(root: Any, styles: ListStyles) -> None:
    """Move each comment under `root` (an lxml element) out of its paragraph into a paragraph of its own after it;
    replies (LibreOffice's loext:parent-name siblings, or annotations nested in their comment) each get their own."""
    placed_after: dict[Any, Any] = {}
    for annotation in [item for item in root.iter(_ANNOTATION) if next(item.iterancestors(_ANNOTATION), None) is None]:
        # the outermost paragraph: a comment in a footnote's text follows the paragraph the note stands in
        block = next(reversed(list(annotation.iterancestors(*_BLOCKS))), None)
        thread = _thread(annotation, styles)
        if block is None:
            continue
        for text in thread:
            comment = odfdo.Paragraph(text)._xml_element
            # several comments on one paragraph follow it in the order they stand in it
            placed_after.get(block, block).addnext(comment)
            placed_after[block] = comment
    for end in list(root.iter(_ANNOTATION_END)):
        remove_keeping_tail(end)

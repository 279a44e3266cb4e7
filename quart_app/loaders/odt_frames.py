"""An OpenDocument text's frames (draw:frame) as a reader sees them. A text box's paragraphs become paragraphs of their
own after the paragraph its frame stands in: odfdo indented them by two spaces inside that paragraph, with a blank line
after each ("See  Boxed line.\n  \n for details"). A frame left empty (its box moved out, its picture dropped) is
removed, and one left with only its alt text (svg:title, svg:desc) reads as that text where it stands: odfdo ended every
frame with a line break, cutting the sentence around an inline picture in two."""

from typing import Any

from .odt_hidden import remove_keeping_tail
from .office_alt_text import spaced

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_SVG = "{urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0}"
_TEXT_BOX = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}text-box"
_LINK = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}a"
_BLOCKS = (f"{_TEXT}p", f"{_TEXT}h")
_ALT_TEXT = (f"{_SVG}title", f"{_SVG}desc")


def _text_before(element: Any) -> str:
    """The text just before `element` in its parent ("" at the parent's start)."""
    previous = element.getprevious()
    before = element.getparent().text if previous is None else previous.tail or "".join(previous.itertext())
    return before or ""


def _alt_text(frame: Any) -> str | None:
    """The frame's title and description ("Site map: the harbour and its two warehouses"), one line; None when the
    frame holds anything else."""
    if any(child.tag not in _ALT_TEXT for child in frame):
        return None
    parts = [" ".join("".join(child.itertext()).split()) for child in frame]
    return ": ".join(dict.fromkeys(part for part in parts if part))


def replace_emptied_frame(frame: Any) -> None:
    """Replace a frame whose picture or text box was taken out with its alt text, if it has some: a span inside a
    paragraph, set apart from the words around it by a space, or a paragraph of its own for a frame anchored to the
    page; else remove it, with one space where it stood between two words ("a <frame/> b" reads "a b")."""
    alt_text = _alt_text(frame) if len(frame) else ""  # most emptied frames hold nothing else
    if alt_text is None:
        return
    if not alt_text:
        if frame.tail and frame.tail[:1].isspace() and _text_before(frame)[-1:].isspace():
            frame.tail = frame.tail.lstrip()
        remove_keeping_tail(frame)
        return
    parent = frame.getparent()
    # a linked picture's frame sits in a draw:a, which odfdo formats as nothing: the alt text takes the link's place
    place = parent if parent.tag == _LINK and len(parent) == 1 else frame
    inline = next(place.iterancestors(*_BLOCKS), None) is not None
    replacement = place.makeelement(f"{_TEXT}span" if inline else f"{_TEXT}p")
    text = spaced(_text_before(place), alt_text, place.tail or "") if inline else alt_text
    replacement.text, replacement.tail = text, place.tail
    place.getparent().replace(place, replacement)


def text_boxes_as_paragraphs(body: Any) -> None:
    """Move the content of each text box under `body` (an lxml element) after the outermost paragraph its frame stands
    in, in order (or in the frame's place, for a frame anchored to the page); the frame is then replaced as emptied."""
    for box in list(body.iter(_TEXT_BOX)):
        frame = box.getparent()
        block = next(reversed(list(frame.iterancestors(*_BLOCKS))), None)
        for child in list(box):
            if block is None:
                frame.addprevious(child)
            else:
                block.addnext(child)
                block = child
        frame.remove(box)
        replace_emptied_frame(frame)

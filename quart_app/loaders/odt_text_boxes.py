"""An OpenDocument text's text boxes (draw:frame/draw:text-box) as paragraphs of their own after the paragraph their
frame stands in: odfdo indented a box's paragraphs by two spaces inside that paragraph, with a blank line after each
("See  Boxed line.\n  \n for details")."""

from typing import Any

from .odt_hidden import remove_keeping_tail

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_TEXT_BOX = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}text-box"
_BLOCKS = (f"{_TEXT}p", f"{_TEXT}h")


def _blank_before(element: Any) -> bool:
    """Whether the text just before `element` ends with a space."""
    previous = element.getprevious()
    before = element.getparent().text if previous is None else previous.tail or "".join(previous.itertext())
    return bool((before or "")[-1:].isspace())


def text_boxes_as_paragraphs(body: Any) -> None:
    """Move the content of each text box under `body` (an lxml element) after the outermost paragraph its frame stands
    in, in order (or in the frame's place, for a frame anchored to the page); a frame left empty is removed, with one
    space where it stood between two words."""
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
        if len(frame) == 0:  # a frame's title and description stay where they were
            if frame.tail and frame.tail[:1].isspace() and _blank_before(frame):
                frame.tail = frame.tail.lstrip()
            remove_keeping_tail(frame)

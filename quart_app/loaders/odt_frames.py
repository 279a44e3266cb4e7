"""An OpenDocument text's frames (draw:frame) as a reader sees them. A text box's paragraphs become paragraphs of their
own after the paragraph its frame stands in: odfdo indented them by two spaces inside that paragraph, with a blank line
after each ("See  Boxed line.\n  \n for details"). A frame left empty (its box moved out, its picture dropped) is
removed: odfdo ended every frame with a line break, cutting the sentence around an inline picture in two."""

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


def remove_if_empty(frame: Any) -> None:
    """Remove the frame if nothing is left in it (a title or a description is), with one space where it stood between
    two words ("a <frame/> b" reads "a b")."""
    if len(frame) == 0:
        if frame.tail and frame.tail[:1].isspace() and _blank_before(frame):
            frame.tail = frame.tail.lstrip()
        remove_keeping_tail(frame)


def text_boxes_as_paragraphs(body: Any) -> None:
    """Move the content of each text box under `body` (an lxml element) after the outermost paragraph its frame stands
    in, in order (or in the frame's place, for a frame anchored to the page); the frame is then removed if empty."""
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
        remove_if_empty(frame)

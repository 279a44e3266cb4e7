"""An OpenDocument text's encoded spaces (text:s, text:c of them) written out as the spaces they are: odfdo formats a
text:s as nothing, so a text written with one between two words ("Total:<text:s/>40 EUR", as odfdo and other
generators write a space at the end of a run) read "Total:40 EUR"."""

from typing import Any

from .odt_hidden import remove_keeping_tail

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
# a damaged or hostile count is capped: normalize_text shrinks longer blank runs to one space anyway
_MAX_SPACES = 100


def _count(text: str) -> int:
    try:
        return min(max(int(text), 1), _MAX_SPACES)
    except ValueError:
        return 1


def spaces_as_text(root: Any) -> None:
    """Replace each text:s under `root` (an lxml element) with its spaces."""
    for space in list(root.iter(f"{_TEXT}s")):
        space.tail = " " * _count(space.get(f"{_TEXT}c", "1")) + (space.tail or "")
        remove_keeping_tail(space)

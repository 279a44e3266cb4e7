"""The numbers of an OpenDocument text's headings ("1.", "1.1", "2.3.1") written into them, as the outline numbering
(text:outline-style) shows them: odfdo reads a heading's text only, so "see 2.3" named no heading."""

from collections.abc import Iterable
from typing import Any

from .odt_hidden import remove_keeping_tail
from .odt_lists import (
    LEVELS,
    LIST,
    NUMBERED_PARAGRAPH,
    Levels,
    ListStyles,
    count_item,
    int_attribute,
    level_style,
    unwrap,
)

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
_HEADING = f"{_TEXT}h"
# the number a heading showed when it was saved (LibreOffice writes it; odfdo leaves it out)
_SAVED_NUMBER = f"{_TEXT}number"


def outline_levels(roots: Iterable[Any]) -> tuple[str, Levels]:
    """The name and the levels (0-based) of the document's outline numbering (styles.xml's text:outline-style)."""
    for root in roots:
        for style in root.iter(f"{_TEXT}outline-style"):
            levels = {int_attribute(level.get(f"{_TEXT}level", "0"), 0) - 1: level_style(level) for level in style}
            return style.get(f"{_STYLE}name", ""), levels
    return "", {}


def unwrap_outline_lists(body: Any, outline_name: str, lists: ListStyles) -> None:
    """Put the headings of lists naming the outline numbering as their style (LibreOffice's "Outline", which is no
    list style) in their place, with those of the unstyled lists nested in them: they are outline headings, numbered
    and counted as such, not items of a list of unknown style shown with bullets."""
    if not outline_name or outline_name in lists.levels:
        return
    for outer in [element for element in body.iter(LIST) if element.get(f"{_TEXT}style-name") == outline_name]:
        nested = [element for element in outer.iter(LIST) if element.get(f"{_TEXT}style-name") in (None, outline_name)]
        for element in reversed(nested):  # innermost first; `nested` starts with `outer` itself
            if element.getparent() is not None:
                unwrap(element)


def number_headings(body: Any, levels: Levels) -> None:
    """Write each heading's outline number into its text; headings in a list are numbered by the list instead."""
    counters: list[int | None] = [None] * LEVELS
    for heading in body.iter(_HEADING):
        # a list header is a heading without a number; a heading in a list or a numbered paragraph takes the list's
        # number and is not counted in the outline
        if (
            heading.get(f"{_TEXT}is-list-header") == "true"
            or next(heading.iterancestors(LIST, NUMBERED_PARAGRAPH), None) is not None
        ):
            continue
        depth = min(max(int_attribute(heading.get(f"{_TEXT}outline-level", "1"), 1), 1), LEVELS) - 1
        restart = heading.get(f"{_TEXT}start-value", "") if heading.get(f"{_TEXT}restart-numbering") == "true" else None
        label = count_item(levels, depth, counters, restart) if depth in levels else ""
        saved = heading.find(_SAVED_NUMBER)
        if saved is not None:
            label = " ".join("".join(saved.itertext()).split()) or label
            remove_keeping_tail(saved)
        if label:
            heading.text = f"{label} {heading.text or ''}"

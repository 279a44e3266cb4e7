"""Hidden content of an OpenDocument text removed before it is read: text formatted as hidden, hidden sections, and
paragraphs and text hidden by a condition. LibreOffice does not show it; the index does not hold it."""

from collections.abc import Iterable
from typing import Any

from .style_inheritance import inherited

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
_BLOCKS = (f"{_TEXT}p", f"{_TEXT}h")
_CANDIDATES = (*_BLOCKS, f"{_TEXT}span", f"{_TEXT}section", f"{_TEXT}hidden-text")


def hidden_styles(roots: Iterable[Any]) -> frozenset[str]:
    """The names of the text and paragraph styles whose text properties hide their text (text:display="none"), set on
    the style or on the style it inherits from (an automatic style's parent is often a common style of styles.xml)."""
    own: dict[tuple[str, str], str | None] = {}
    parents: dict[tuple[str, str], tuple[str, str]] = {}
    for root in roots:
        for style in root.iter(f"{_STYLE}style"):
            family = style.get(f"{_STYLE}family", "")
            name = (family, style.get(f"{_STYLE}name", ""))
            displays = [props.get(f"{_TEXT}display") for props in style.iterchildren(f"{_STYLE}text-properties")]
            own[name] = next((display for display in displays if display is not None), None)
            if parent := style.get(f"{_STYLE}parent-style-name"):
                parents[name] = (family, parent)
    return frozenset(name for (_, name), display in inherited(own, parents).items() if display == "none")


def _is_hidden(element: Any, styles: frozenset[str]) -> bool:
    tag: str = element.tag
    cached_hidden = element.get(f"{_TEXT}is-hidden") == "true"
    if tag in _BLOCKS or tag == f"{_TEXT}span":
        if element.get(f"{_TEXT}style-name") in styles:
            return True
        # a hidden-paragraph field hides its paragraph while its condition holds (is-hidden caches the result)
        return tag in _BLOCKS and any(
            field.get(f"{_TEXT}is-hidden") == "true" for field in element.iterchildren(f"{_TEXT}hidden-paragraph")
        )
    if tag == f"{_TEXT}section":
        display: str | None = element.get(f"{_TEXT}display")
        return display == "none" or (display == "condition" and cached_hidden)
    return tag == f"{_TEXT}hidden-text" and cached_hidden


def remove_keeping_tail(element: Any) -> None:
    """Remove the element, keeping the text that follows it ("Ends <hidden/>here." reads "Ends here.")."""
    parent = element.getparent()
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def remove_hidden(body: Any, styles: frozenset[str]) -> None:
    """Remove the hidden elements under `body` (an lxml element)."""
    hidden = [element for element in body.iter(*_CANDIDATES) if _is_hidden(element, styles)]
    removed = set(hidden)
    for element in hidden:
        # an element inside one already removed is gone with it
        if not any(ancestor in removed for ancestor in element.iterancestors()):
            remove_keeping_tail(element)

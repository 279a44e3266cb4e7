"""The labels of an OpenDocument text's lists ("3.", "b)", "IV.", "1.2.3", "-" for bullets) written into its items'
first paragraphs, the lists then unwrapped into those paragraphs: odfdo formats every item as "- item", so a numbered
step lost its number."""

from collections.abc import Iterable
from typing import Any, NamedTuple

from .list_labels import BULLET, counter_text
from .style_inheritance import inherited

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
_XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
LIST = f"{_TEXT}list"
# one numbered paragraph standing for a list item (ODF 1.2); those of one text:list-id count on as one list
NUMBERED_PARAGRAPH = f"{_TEXT}numbered-paragraph"
_ITEM_TEXT = (f"{_TEXT}p", f"{_TEXT}h")
_START = f"{_TEXT}start-value"
# the label a numbered paragraph showed when it was saved: it is written anew from the list style
_SAVED_NUMBER = f"{_TEXT}number"
LEVELS = 10
# ODF's style:num-format values; "" shows no number, and other scripts' digits read as decimal
_COUNTER_STYLES = {"1": "decimal", "a": "lowerLetter", "A": "upperLetter", "i": "lowerRoman", "I": "upperRoman"}


class _Level(NamedTuple):
    bullet: bool
    style: str  # a counter style of list_labels, or "" for none
    prefix: str
    suffix: str
    shown_levels: int  # text:display-levels: "1.2.3" shows three
    start: int


# a list style's or the outline style's levels, 0-based
Levels = dict[int, _Level]


class ListStyles(NamedTuple):
    """A document's list styles."""

    levels: dict[str, Levels]  # each list style's levels by the style's name
    # the list style each paragraph style names (style:list-style-name), set on it or inherited from its parent
    by_paragraph_style: dict[str, str]


# a list whose style is unknown shows bullets, as odfdo wrote every item
_PLAIN = _Level(True, "", "", "", 1, 1)


# a numbered list level, and a heading level of the outline numbering (which has the same attributes)
_NUMBERED_LEVELS = (f"{_TEXT}list-level-style-number", f"{_TEXT}outline-level-style")


def level_style(element: Any) -> _Level:
    """One level of a list style or of the outline style."""
    if element.tag not in _NUMBERED_LEVELS:  # bullets and pictures
        return _Level(True, "", "", "", 1, 1)
    num_format = element.get(f"{_STYLE}num-format", "")
    return _Level(
        False,
        _COUNTER_STYLES.get(num_format, "decimal" if num_format else ""),
        element.get(f"{_STYLE}num-prefix", ""),
        element.get(f"{_STYLE}num-suffix", ""),
        max(int_attribute(element.get(f"{_TEXT}display-levels", "1"), 1), 1),
        int_attribute(element.get(f"{_TEXT}start-value", "1"), 1),
    )


def int_attribute(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def list_styles(roots: Iterable[Any]) -> ListStyles:
    """Every text:list-style of these XML roots (content.xml's automatic styles, styles.xml) by name, and the one each
    paragraph style names."""
    levels: dict[str, Levels] = {}
    own: dict[str, str | None] = {}
    parents: dict[str, str] = {}
    for root in roots:
        for style in root.iter(f"{_TEXT}list-style"):
            levels[style.get(f"{_STYLE}name", "")] = {
                int_attribute(level.get(f"{_TEXT}level", "0"), 0) - 1: level_style(level) for level in style
            }
        for style in root.iter(f"{_STYLE}style"):
            if style.get(f"{_STYLE}family") == "paragraph":
                name = style.get(f"{_STYLE}name", "")
                own[name] = style.get(f"{_STYLE}list-style-name")
                if parent := style.get(f"{_STYLE}parent-style-name"):
                    parents[name] = parent
    return ListStyles(levels, inherited(own, parents))


class _Counting:
    """The counters of one list and of the lists that continue it."""

    def __init__(self) -> None:
        self.counters: list[int | None] = [None] * LEVELS
        self.style = ""  # the list style, which a numbered paragraph may leave to the first one of its list


def unwrap(element: Any) -> None:
    """Put the paragraphs (and nested lists) of a list's items, or of a numbered paragraph, in its place."""
    items = [element] if element.tag == NUMBERED_PARAGRAPH else list(element)
    for child in [child for item in items for child in item if child.tag != _SAVED_NUMBER]:
        element.addprevious(child)
    element.getparent().remove(element)


class OdtListLabels:
    """Writes each numbered or bulleted item's label into its first paragraph, in document order."""

    def __init__(self, styles: ListStyles) -> None:
        self._styles = styles
        self._by_id: dict[str, _Counting] = {}
        self._previous: _Counting | None = None

    def label_lists(self, body: Any) -> None:
        """Label every list and numbered paragraph under `body` (an lxml element), then put their paragraphs in their
        place (odfdo read no numbered paragraph at all)."""
        lists = list(body.iter(LIST, NUMBERED_PARAGRAPH))
        for element in lists:
            if next(element.iterancestors(LIST), None) is not None:
                continue
            if element.tag == NUMBERED_PARAGRAPH:
                self._label_numbered_paragraph(element)
            else:
                counting = self._counting(element, element.get(f"{_TEXT}continue-list"), element.get(_XML_ID))
                self._label_list(element, element.get(f"{_TEXT}style-name", ""), 0, counting)
        # innermost first: a nested list is unwrapped into its outer item before that item is unwrapped
        for element in reversed(lists):
            unwrap(element)

    def _label_numbered_paragraph(self, element: Any) -> None:
        list_id = element.get(f"{_TEXT}list-id")
        counting = self._counting(element, list_id, list_id)
        counting.style = element.get(f"{_TEXT}style-name", counting.style)
        depth = min(max(int_attribute(element.get(f"{_TEXT}level", "1"), 1), 1), LEVELS) - 1
        label = count_item(self._styles.levels.get(counting.style, {}), depth, counting.counters, element.get(_START))
        first = next(element.iterchildren(*_ITEM_TEXT), None)
        if label and first is not None:
            first.text = f"{label} {first.text or ''}"

    def _counting(self, element: Any, continued: str | None, list_id: str | None) -> _Counting:
        """The counters a list (or numbered paragraph) counts on: those of the list it continues, by id or as the
        previous one, else new ones; it is then known by its own id."""
        if continued in self._by_id:
            counting = self._by_id[continued]
        elif element.get(f"{_TEXT}continue-numbering") == "true" and self._previous is not None:
            counting = self._previous
        else:
            counting = _Counting()
        if list_id:
            self._by_id[list_id] = counting
        self._previous = counting
        return counting

    def _label_list(self, element: Any, style_name: str, depth: int, counting: _Counting) -> None:
        style_name = element.get(f"{_TEXT}style-name", style_name)
        depth = min(depth, LEVELS - 1)
        for item in element.iterchildren(f"{_TEXT}list-item"):
            first = next(item.iterchildren(), None)
            # an item that only holds a nested list has no label of its own
            if first is not None and first.tag in _ITEM_TEXT:
                # in a list without a list style (nor an outer list's), an item's paragraph style names it (ODF 19.880)
                item_style = style_name or self._styles.by_paragraph_style.get(first.get(f"{_TEXT}style-name", ""), "")
                label = count_item(self._styles.levels.get(item_style, {}), depth, counting.counters, item.get(_START))
                if label:
                    first.text = f"{label} {first.text or ''}"
            for nested in item.iterchildren(LIST):
                self._label_list(nested, style_name, depth + 1, counting)


def count_item(levels: Levels, depth: int, counters: list[int | None], restart: str | None) -> str:
    """Count an item at `depth` (0-based; `restart`: the value it restarts at) and return its label: "3.", "1.2.1",
    "-", or "" for none."""
    own = levels.get(depth, _PLAIN)
    current = counters[depth]
    if restart is not None:
        counters[depth] = int_attribute(restart, own.start)
    else:
        counters[depth] = own.start if current is None else current + 1
    counters[depth + 1 :] = [None] * (LEVELS - depth - 1)
    if own.bullet:
        return BULLET
    if not own.style:
        return f"{own.prefix}{own.suffix}".strip()
    numbers = []
    for index in range(max(depth - own.shown_levels + 1, 0), depth + 1):
        shown = levels.get(index, _PLAIN)
        value = counters[index]
        numbers.append(counter_text(shown.start if value is None else value, shown.style or "decimal"))
    return f"{own.prefix}{'.'.join(numbers)}{own.suffix}".strip()

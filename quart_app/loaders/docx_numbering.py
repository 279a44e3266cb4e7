"""The automatic numbers of a .docx's numbered and bulleted paragraphs (word/numbering.xml, ECMA-376 §17.9), counted
in document order as Word counts them: python-docx reads none of them, so "step 3" was not in the text."""

import copy
import re
from typing import Any, NamedTuple

from docx.document import Document as DocxDocument
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.part import XmlPart
from docx.oxml import parse_xml

from .docx_hidden import DocxHiddenText
from .list_labels import BULLET, counter_text

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_LEVELS = 9
_PLACEHOLDER = re.compile(r"%([1-9])")


class _Level(NamedTuple):
    start: int
    style: str  # w:numFmt: decimal, lowerLetter, upperRoman, bullet, none, ...
    text: str  # w:lvlText: "%1.", "%1.%2.", "(%3)"
    legal: bool  # w:isLgl: every level's number in decimal ("1.1" under a "I.")
    # w:rPr: the number's run properties, over the paragraph mark's (a hidden number still counts its item)
    properties: Any | None


def _val(element: Any, path: str, default: str) -> str:
    found = element.find(path)
    value = found.get(f"{_W}val") if found is not None else None
    return default if value is None else str(value)


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _on(lvl: Any, path: str) -> bool:
    """An on/off property of the level: on when present unless its value says off."""
    return lvl.find(path) is not None and _val(lvl, path, "1") not in ("0", "false", "off")


def _level(lvl: Any) -> _Level:
    return _Level(
        _int(_val(lvl, f"{_W}start", "0"), 0),
        _val(lvl, f"{_W}numFmt", "decimal"),
        _val(lvl, f"{_W}lvlText", ""),
        _on(lvl, f"{_W}isLgl"),
        lvl.find(f"{_W}rPr"),
    )


def _levels(container: Any) -> dict[int, _Level]:
    return {_int(lvl.get(f"{_W}ilvl", ""), -1): _level(lvl) for lvl in container.iterchildren(f"{_W}lvl")}


class _List(NamedTuple):
    """A w:num: the abstract list it counts in, with the levels and restarts it overrides."""

    abstract: str
    levels: dict[int, _Level]
    restarts: dict[int, int]  # level -> w:startOverride


class DocxNumbering:
    """Labels numbered paragraphs in the order they are asked for (the body's order)."""

    def __init__(self, document: DocxDocument, hidden: DocxHiddenText) -> None:
        self._hidden = hidden
        self._abstracts: dict[str, dict[int, _Level]] = {}
        self._lists: dict[str, _List] = {}
        self._style_numbering: dict[str, tuple[str, str]] = {}
        # Word counts on in every w:num of one abstract list: a second list of the same kind continues the first
        # unless it overrides its start
        self._counters: dict[str, list[int | None]] = {}
        self._restarted: set[str] = set()
        try:
            part = document.part.part_related_by(RT.NUMBERING)
        except KeyError:
            return
        numbering = part.element if isinstance(part, XmlPart) else parse_xml(part.blob)
        for abstract in numbering.iterchildren(f"{_W}abstractNum"):
            self._abstracts[abstract.get(f"{_W}abstractNumId", "")] = _levels(abstract)
        links = {
            abstract.get(f"{_W}abstractNumId", ""): _val(abstract, f"{_W}numStyleLink", "")
            for abstract in numbering.iterchildren(f"{_W}abstractNum")
        }
        self._read_styles(document)
        for num in numbering.iterchildren(f"{_W}num"):
            abstract = _val(num, f"{_W}abstractNumId", "")
            levels: dict[int, _Level] = {}
            restarts: dict[int, int] = {}
            for override in num.iterchildren(f"{_W}lvlOverride"):
                index = _int(override.get(f"{_W}ilvl", ""), -1)
                if (start := override.find(f"{_W}startOverride")) is not None:
                    restarts[index] = _int(start.get(f"{_W}val", ""), 0)
                levels.update(_levels(override))
            self._lists[num.get(f"{_W}numId", "")] = _List(abstract, levels, restarts)
        # a list style's abstract list only points at the style ('numStyleLink'); the style names the real list
        for num_id, listed in list(self._lists.items()):
            if link := links.get(listed.abstract):
                target = self._lists.get(self._style_numbering.get(link, ("", ""))[0])
                if target is not None:
                    self._lists[num_id] = listed._replace(abstract=target.abstract)

    def counted_apart(self) -> "DocxNumbering":
        """The same lists with counters of their own, from each list's start (a comment's lists count apart from the
        body's): numbering.xml and the styles are read once per document."""
        apart = copy.copy(self)
        apart._counters, apart._restarted = {}, set()
        return apart

    def _read_styles(self, document: DocxDocument) -> None:
        """Each paragraph style's (numId, ilvl), its own or inherited through w:basedOn ("List Number" numbers)."""
        styles = {style.get(f"{_W}styleId", ""): style for style in document.styles.element.iterchildren(f"{_W}style")}

        def numbering_of(style_id: str, depth: int = 0) -> tuple[str, str]:
            style = styles.get(style_id)
            if style is None or depth > 10:
                return ("", "0")
            num_pr = style.find(f"{_W}pPr/{_W}numPr")
            inherited = numbering_of(_val(style, f"{_W}basedOn", ""), depth + 1)
            if num_pr is None:
                return inherited
            return (_val(num_pr, f"{_W}numId", inherited[0]), _val(num_pr, f"{_W}ilvl", inherited[1]))

        self._style_numbering = {style_id: numbering_of(style_id) for style_id in styles}

    def label(self, paragraph: Any) -> str:
        """The paragraph's list label and a space ("3. ", "1.2. ", "- "), "" when it is not a list item; counts it."""
        properties = paragraph.find(f"{_W}pPr")
        if properties is None or not self._lists:  # most paragraphs of most documents: one lookup
            return ""
        style_num, style_level = self._style_numbering.get(_val(properties, f"{_W}pStyle", ""), ("", "0"))
        num_pr = properties.find(f"{_W}numPr")
        num_id = _val(num_pr, f"{_W}numId", style_num) if num_pr is not None else style_num
        listed = self._lists.get(num_id)
        if listed is None or (levels := self._abstracts.get(listed.abstract)) is None:
            return ""  # numId 0 takes a style's numbering away
        level_text = _val(num_pr, f"{_W}ilvl", style_level) if num_pr is not None else style_level
        level = min(max(_int(level_text, 0), 0), _LEVELS - 1)
        levels = levels | listed.levels
        counters = self._counters.setdefault(listed.abstract, [None] * _LEVELS)
        if num_id not in self._restarted:
            self._restarted.add(num_id)
            for index, start in listed.restarts.items():
                if 0 <= index < _LEVELS:
                    counters[index] = start - 1
        default = _Level(0, "decimal", "", False, None)
        current = counters[level]
        counters[level] = levels.get(level, default).start if current is None else current + 1
        counters[level + 1 :] = [None] * (_LEVELS - level - 1)
        own = levels.get(level, default)
        if self._hidden.number_hidden(paragraph, properties, own.properties):
            return ""
        if own.style == "bullet":
            return f"{BULLET} "

        def number(match: re.Match[str]) -> str:
            index = int(match[1]) - 1
            shown = levels.get(index, default)
            if shown.style == "none":
                return ""
            value = counters[index] if index < _LEVELS and counters[index] is not None else shown.start
            return counter_text(int(value or 0), "decimal" if own.legal else shown.style)

        text = _PLACEHOLDER.sub(number, own.text).strip()
        return f"{text} " if text else ""

"""Which runs of a .docx Word hides (w:vanish). Hidden text is a toggle property (ECMA-376 17.7.3): set on the run it is
absolute; otherwise each style level (the table's style, the paragraph's, the run's character style: each its own value
or else the one of the style it is based on) that hides toggles it, and the document defaults hide everything. A table
style's level is its own value overridden by the conditional formats the cell takes (header row, banding, ...). A list
number is read as a run of its paragraph holding the paragraph mark's run properties, its level's over them; so is the
paragraph mark itself, which Word hides by running its paragraph into the next."""

from collections.abc import Callable
from typing import Any, NamedTuple

from .docx_table_regions import ORDER, BandSizes, TableRegions
from .style_inheritance import inherited

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
VANISH = f"{_W}vanish"
_VAL = f"{_W}val"
_RUN_STYLE = f"{_W}rStyle"
_RUN_PROPERTIES = f"{_W}rPr"
_PARAGRAPH_PROPERTIES = f"{_W}pPr"
_OFF = ("0", "false", "off")
_BAND_SIZES = ("tblStyleRowBandSize", "tblStyleColBandSize")


def _on(element: Any, attribute: str = _VAL) -> bool:
    """An on/off property's value: on unless the attribute says off."""
    return element.get(attribute, "true") not in _OFF


def _hiding_styles(styles: Any, kind: str) -> frozenset[str]:
    """The ids of the styles of this kind (character, paragraph, table) that hide their text: their own w:vanish on,
    else the one of the nearest style they are based on that sets it."""
    own: dict[str, bool | None] = {}
    based_on: dict[str, str] = {}
    for style in styles.iterchildren(f"{_W}style"):
        if style.get(f"{_W}type") != kind:
            continue
        style_id = style.get(f"{_W}styleId", "")
        vanish = style.find(f"{_W}rPr/{VANISH}")
        own[style_id] = None if vanish is None else _on(vanish)
        if (parent := style.find(f"{_W}basedOn")) is not None:
            based_on[style_id] = parent.get(_VAL, "")
    return frozenset(style_id for style_id, hides in inherited(own, based_on).items() if hides)


class _ConditionalHiding(NamedTuple):
    """A table style's conditional formats that set w:vanish, by w:tblStylePr type, and the style's band sizes."""

    vanish: dict[str, bool]
    bands: BandSizes


def _band_size(style: Any, name: str) -> int | None:
    size = style.find(f"{_W}tblPr/{_W}{name}")
    value = size.get(_VAL, "") if size is not None else ""
    return max(int(value), 1) if value.isdigit() else None


def _conditional_hiding(styles: Any) -> dict[str, _ConditionalHiding]:
    """The table styles whose conditional formats (w:tblStylePr) set w:vanish, each type's value and each band size its
    own or else the one of the nearest style it is based on that sets it; styles without any are left out."""
    # most documents have none: Word's template holds a hundred table styles whose conditional formats set no w:vanish
    if next(styles.iterfind(f"{_W}style/{_W}tblStylePr/{_W}rPr/{VANISH}"), None) is None:
        return {}
    own: dict[tuple[str, str], bool | int | None] = {}
    parents: dict[tuple[str, str], tuple[str, str]] = {}
    for style in styles.iterchildren(f"{_W}style"):
        if style.get(f"{_W}type") != "table":
            continue
        style_id = style.get(f"{_W}styleId", "")
        own |= {(style_id, kind): None for kind in ORDER}
        for conditional in style.iterchildren(f"{_W}tblStylePr"):
            kind = conditional.get(f"{_W}type", "")
            if (vanish := conditional.find(f"{_W}rPr/{VANISH}")) is not None and kind in ORDER:
                own[(style_id, kind)] = _on(vanish)
        own |= {(style_id, band): _band_size(style, band) for band in _BAND_SIZES}
        if (parent := style.find(f"{_W}basedOn")) is not None:
            parents |= {(style_id, key): (parent.get(_VAL, ""), key) for key in (*ORDER, *_BAND_SIZES)}
    resolved = inherited(own, parents)
    hiding: dict[str, _ConditionalHiding] = {}
    for (style_id, kind), value in resolved.items():
        if kind in ORDER:
            rows, columns = (int(resolved.get((style_id, band), 1)) for band in _BAND_SIZES)
            hiding.setdefault(style_id, _ConditionalHiding({}, BandSizes(rows, columns))).vanish[kind] = bool(value)
    return hiding


def _default_style(styles: Any, kind: str) -> str | None:
    """The id of the style of this kind an element without one takes (w:default)."""
    for style in styles.iterchildren(f"{_W}style"):
        if style.get(f"{_W}type") == kind and style.get(f"{_W}default") is not None and _on(style, f"{_W}default"):
            return str(style.get(f"{_W}styleId", ""))
    return None


class DocxHiddenText:
    """Tells the runs of a paragraph (and the list numbers) Word hides from those it shows."""

    def __init__(self, styles: Any) -> None:
        """`styles`: the styles part's w:styles element."""
        self._character = _hiding_styles(styles, "character")
        self._paragraph = _hiding_styles(styles, "paragraph")
        self._table = _hiding_styles(styles, "table")
        self._conditional = _conditional_hiding(styles)
        # by w:tbl: each table's style and rows are read once
        self._tables: dict[Any, tuple[bool, _ConditionalHiding | None, TableRegions | None]] = {}
        self._default_paragraph = _default_style(styles, "paragraph")
        self._default_table = _default_style(styles, "table")
        default = styles.find(f"{_W}docDefaults/{_W}rPrDefault/{_W}rPr/{VANISH}")
        self._hidden_by_default = default is not None and _on(default)
        # the paragraph last asked about: its number, its runs and its mark ask in turn, its styles are read once
        self._asked: Any = None
        self._asked_by_styles = False
        self._asked_plain = False  # no w:vanish in it, no hiding character style, none of its styles hide: all shows

    def run_filter(self, paragraph: Any) -> Callable[[Any], bool] | None:
        """A test for the paragraph's hidden runs; None when it shows every run (most paragraphs: no run is tested)."""
        if self._hidden_by_default:
            # hidden by the document defaults: only a run's own formatting shows it again
            return lambda run: self._direct(run) is not False
        by_styles = self._by_styles(paragraph)
        if (
            not by_styles
            and next(paragraph.iter(VANISH), None) is None
            and not (self._character and any(ref.get(_VAL) in self._character for ref in paragraph.iter(_RUN_STYLE)))
        ):
            self._asked_plain = True
            return None
        return lambda run: self._hidden(run, by_styles)

    def mark_hidden(self, paragraph: Any) -> bool:
        """Whether Word hides the paragraph's mark (formatted as a run holding w:pPr/w:rPr), which runs the paragraph
        into the next one."""
        if paragraph is self._asked and self._asked_plain:  # its runs were found all shown, the mark with them
            return False
        return self.number_hidden(paragraph, next(paragraph.iterchildren(_PARAGRAPH_PROPERTIES), None), None)

    def number_hidden(self, paragraph: Any, paragraph_properties: Any | None, level_properties: Any | None) -> bool:
        """Whether Word hides the list number of `paragraph` (`paragraph_properties`: its w:pPr, if any): the number is
        formatted as a run of the paragraph holding the paragraph mark's run properties (w:pPr/w:rPr), with its level's
        (`level_properties`, the w:lvl's w:rPr) over them, a character style (w:rStyle) included."""
        style = None
        # called for every paragraph: the mark's properties come from iterchildren (half the cost of find(), which
        # goes through lxml's path engine), and no style is looked up where no paragraph or table style hides anything
        mark = None if paragraph_properties is None else next(paragraph_properties.iterchildren(_RUN_PROPERTIES), None)
        for properties in (level_properties, mark):
            if properties is None:
                continue
            if (vanish := properties.find(VANISH)) is not None:
                return _on(vanish)
            if style is None and (found := properties.find(_RUN_STYLE)) is not None:
                style = found.get(_VAL, "")
        if self._hidden_by_default:
            return True
        if not (self._paragraph or self._table or self._conditional):
            return style in self._character
        return self._by_styles(paragraph) != (style in self._character)

    def _by_styles(self, paragraph: Any) -> bool:
        """Whether the paragraph's style and its table's style, taken together by the toggle rule, hide its text."""
        if paragraph is not self._asked:
            self._asked, self._asked_plain = paragraph, False
            self._asked_by_styles = self._paragraph_level(paragraph) != self._table_level(paragraph)
        return self._asked_by_styles

    def _paragraph_level(self, paragraph: Any) -> bool:
        # most documents have no hidden paragraph style: their paragraphs' styles are not looked up
        if not self._paragraph:
            return False
        style = paragraph.find(f"{_W}pPr/{_W}pStyle")
        return (self._default_paragraph if style is None else style.get(_VAL, "")) in self._paragraph

    def _table_level(self, paragraph: Any) -> bool:
        if not (self._table or self._conditional) or (cell := next(paragraph.iterancestors(f"{_W}tc"), None)) is None:
            return False
        table = next(cell.iterancestors(f"{_W}tbl"))
        if (style := self._tables.get(table)) is None:
            style = self._tables[table] = self._table_style(table)
        hidden, conditional, regions = style
        if conditional is not None and regions is not None:
            for kind in regions.formats(cell):
                hidden = conditional.vanish.get(kind, hidden)
        return hidden

    def _table_style(self, table: Any) -> tuple[bool, _ConditionalHiding | None, TableRegions | None]:
        """Whether the table's style hides its text, its conditional formats that hide or show it, and where they
        apply (only read for a table whose style has some)."""
        style = table.find(f"{_W}tblPr/{_W}tblStyle")
        style_id = self._default_table if style is None else style.get(_VAL, "")
        conditional = self._conditional.get(style_id or "")
        regions = None if conditional is None else TableRegions(table, conditional.bands)
        return style_id in self._table, conditional, regions

    @staticmethod
    def _direct(run: Any) -> bool | None:
        vanish = run.find(f"{_W}rPr/{VANISH}")
        return None if vanish is None else _on(vanish)

    def _hidden(self, run: Any, by_styles: bool) -> bool:
        # the run's own formatting is absolute; a character style that hides toggles what the other styles say
        if (direct := self._direct(run)) is not None:
            return direct
        style = run.find(f"{_W}rPr/{_RUN_STYLE}")
        return by_styles != (style is not None and style.get(_VAL, "") in self._character)

"""Which runs of a .docx Word hides (w:vanish). Hidden text is a toggle property (ECMA-376 17.7.3): set on the run it is
absolute; otherwise each style level (the paragraph's style, the run's character style: each its own value or else the
one of the style it is based on) that hides toggles it."""

from collections.abc import Callable
from typing import Any

from .style_inheritance import inherited

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
VANISH = f"{_W}vanish"
_VAL = f"{_W}val"
_RUN_STYLE = f"{_W}rStyle"
_OFF = ("0", "false", "off")


def _on(element: Any) -> bool:
    """A toggle property's value: on unless w:val says off."""
    return element.get(_VAL, "true") not in _OFF


def _hiding_styles(styles: Any, kind: str) -> frozenset[str]:
    """The ids of the styles of this kind (character, paragraph) that hide their text: their own w:vanish on,
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


class DocxHiddenText:
    """Tells the runs of a paragraph Word hides from those it shows."""

    def __init__(self, styles: Any) -> None:
        """`styles`: the styles part's w:styles element."""
        self._character = _hiding_styles(styles, "character")
        self._paragraph = _hiding_styles(styles, "paragraph")

    def run_filter(self, paragraph: Any) -> Callable[[Any], bool] | None:
        """A test for the paragraph's hidden runs; None when it shows every run (most paragraphs: no run is tested)."""
        by_styles = self._paragraph_level(paragraph)
        if (
            not by_styles
            and next(paragraph.iter(VANISH), None) is None
            and not (self._character and any(ref.get(_VAL) in self._character for ref in paragraph.iter(_RUN_STYLE)))
        ):
            return None
        return lambda run: self._hidden(run, by_styles)

    def _paragraph_level(self, paragraph: Any) -> bool:
        # most documents have no hidden paragraph style: their paragraphs' styles are not looked up
        if not self._paragraph:
            return False
        style = paragraph.find(f"{_W}pPr/{_W}pStyle")
        return style is not None and style.get(_VAL, "") in self._paragraph

    def _hidden(self, run: Any, by_styles: bool) -> bool:
        # the run's own formatting is absolute; a character style that hides toggles what the other styles say
        vanish = run.find(f"{_W}rPr/{VANISH}")
        if vanish is not None:
            return _on(vanish)
        style = run.find(f"{_W}rPr/{_RUN_STYLE}")
        return by_styles != (style is not None and style.get(_VAL, "") in self._character)

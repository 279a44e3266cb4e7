"""Which runs of a .docx Word hides (w:vanish): set on the run itself, or in its character style (w:rStyle) or its
paragraph's style (w:pStyle), each style inheriting from the one it is based on."""

from collections.abc import Callable
from typing import Any

from .style_inheritance import inherited

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
VANISH = f"{_W}vanish"
_VAL = f"{_W}val"
_RUN_STYLE = f"{_W}rStyle"


def _on(element: Any) -> bool:
    """A toggle property's value: on unless w:val says off."""
    return element.get(_VAL, "true") not in ("0", "false", "off")


def _vanish_by_style(styles: Any, kind: str) -> dict[str, bool]:
    """The styles of this kind (character, paragraph) that say whether their text is hidden, by id: their own w:vanish,
    else the one of the style they are based on."""
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
    return inherited(own, based_on)


class DocxHiddenText:
    """Tells the runs of a paragraph Word hides from those it shows."""

    def __init__(self, styles: Any) -> None:
        """`styles`: the styles part's w:styles element."""
        self._character = _vanish_by_style(styles, "character")
        self._paragraph = _vanish_by_style(styles, "paragraph")

    def run_filter(self, paragraph: Any) -> Callable[[Any], bool] | None:
        """A test for the paragraph's hidden runs; None when it shows every run (most paragraphs: no run is tested)."""
        by_paragraph = False
        # most documents have no hidden paragraph style: their paragraphs' styles are not looked up
        if self._paragraph and (style := paragraph.find(f"{_W}pPr/{_W}pStyle")) is not None:
            by_paragraph = self._paragraph.get(style.get(_VAL, ""), False)
        if (
            not by_paragraph
            and next(paragraph.iter(VANISH), None) is None
            and not (self._character and any(ref.get(_VAL) in self._character for ref in paragraph.iter(_RUN_STYLE)))
        ):
            return None
        return lambda run: self._hidden(run, by_paragraph)

    def _hidden(self, run: Any, by_paragraph: bool) -> bool:
        # the run's own formatting wins over its character style, which wins over the paragraph's style
        vanish = run.find(f"{_W}rPr/{VANISH}")
        if vanish is not None:
            return _on(vanish)
        style = run.find(f"{_W}rPr/{_RUN_STYLE}")
        if style is not None and (by_style := self._character.get(style.get(_VAL, ""))) is not None:
            return by_style
        return by_paragraph

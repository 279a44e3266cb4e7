"""Office equations (OMML, m:oMath in Word and PowerPoint) as linear text: "E=mc^2", "(a+b)/2", "∑_(i=1)^n x_i".

The text runs come in reading order; fractions, scripts, radicals, delimiters and n-ary operators get the few
characters that make them readable on one line. Other structures (accents, boxes, matrices) keep their text.
"""

from collections.abc import Callable
from typing import Any

MATH_NS = "http://schemas.openxmlformats.org/officeDocument/2006/math"
_M = f"{{{MATH_NS}}}"
OMATH = f"{_M}oMath"


def _text(element: Any) -> str:
    if element is None:
        return ""
    if element.tag == f"{_M}t":
        return str(element.text or "")
    # properties (m:fPr, m:rPr, w:rPr, m:ctrlPr) hold formatting, not text
    return "".join(
        _RENDERERS.get(child.tag, _text)(child)
        for child in element
        if isinstance(child.tag, str) and not child.tag.endswith("Pr")
    )


def _part(element: Any, name: str) -> str:
    return _text(element.find(f"{_M}{name}"))


def _setting(element: Any, name: str, default: str) -> str:
    """A character setting such as m:dPr/m:begChr/@m:val; an absent setting is the default, an empty one none."""
    setting = element.find(f"{_M}{element.tag.removeprefix(_M)}Pr/{_M}{name}")
    return default if setting is None else str(setting.get(f"{_M}val", default))


def _grouped(text: str) -> str:
    """Parenthesised unless it is one symbol, one number or already one bracketed group: x, 10, (a+b)."""
    if text.replace(".", "").isalnum() or len(text) <= 1:
        return text
    depth = 0
    for position, char in enumerate(text):
        depth += (char in "([{") - (char in ")]}")
        if depth == 0 and position < len(text) - 1:
            return f"({text})"
    return text if text[0] in "([{" else f"({text})"


def _scripts(element: Any) -> str:
    sub, sup = _part(element, "sub"), _part(element, "sup")
    return (f"_{_grouped(sub)}" if sub else "") + (f"^{_grouped(sup)}" if sup else "")


def _radical(element: Any) -> str:
    return f"{_part(element, 'deg')}√{_grouped(_part(element, 'e'))}"


def _delimited(element: Any) -> str:
    items = [_text(item) for item in element.iterchildren(f"{_M}e")]
    return (
        _setting(element, "begChr", "(")
        + _setting(element, "sepChr", "|").join(items)
        + _setting(element, "endChr", ")")
    )


def _nary(element: Any) -> str:
    return f"{_setting(element, 'chr', '∫')}{_scripts(element)} {_part(element, 'e')}"


def _function(element: Any) -> str:
    argument = _part(element, "e")
    separator = "" if argument.startswith("(") else " "
    return f"{_part(element, 'fName')}{separator}{argument}"


def _rows(element: Any, row_tag: str) -> str:
    return "; ".join(", ".join(_text(cell) for cell in row.iterchildren(f"{_M}e")) for row in element.iter(row_tag))


_RENDERERS: dict[str, Callable[[Any], str]] = {
    f"{_M}f": lambda f: f"{_grouped(_part(f, 'num'))}/{_grouped(_part(f, 'den'))}",
    f"{_M}sSup": lambda s: _grouped(_part(s, "e")) + _scripts(s),
    f"{_M}sSub": lambda s: _grouped(_part(s, "e")) + _scripts(s),
    f"{_M}sSubSup": lambda s: _grouped(_part(s, "e")) + _scripts(s),
    f"{_M}sPre": lambda s: _scripts(s) + _grouped(_part(s, "e")),
    f"{_M}rad": _radical,
    f"{_M}d": _delimited,
    f"{_M}nary": _nary,
    f"{_M}func": _function,
    f"{_M}limLow": lambda lim: f"{_part(lim, 'e')}_{_grouped(_part(lim, 'lim'))}",
    f"{_M}limUpp": lambda lim: f"{_part(lim, 'e')}^{_grouped(_part(lim, 'lim'))}",
    f"{_M}m": lambda matrix: f"[{_rows(matrix, f'{_M}mr')}]",
    f"{_M}eqArr": lambda array: "; ".join(_text(row) for row in array.iterchildren(f"{_M}e")),
}


def math_text(element: Any) -> str:
    """The linear text of an equation (m:oMath or m:oMathPara)."""
    return " ".join(_text(element).split())

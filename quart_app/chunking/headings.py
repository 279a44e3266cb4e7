"""Headings found in normalized text, and the heading path (title > section > subsection) around any span.

Markdown (and HTML and EPUB, whose loaders write their headings as Markdown `#` lines) uses ATX headings outside
code fences; reStructuredText uses a title line under-, and optionally over-, lined with one repeated punctuation
character, its level given by the order in which each style first appears (as docutils does).
"""

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

# the closing '#'s are stripped in Python: a lazy title before "[ #]*$" backtracks quadratically on long lines
_ATX: Final = re.compile(r"^(#{1,6})[ \t]+([^\n]+)$", re.MULTILINE)
_FENCE: Final = re.compile(r"^(```|~~~)", re.MULTILINE)
_RST: Final = re.compile(
    r"^(?:([=\-~^\"'`#*+:.])\1{2,}\n)?([^\s=\-~^\"'`#*+:.][^\n]*)\n([=\-~^\"'`#*+:.])\3{2,}[ \t]*$", re.MULTILINE
)
# Sphinx's permalink sign after every heading of its HTML
_PERMALINK: Final = "\u00b6"
PATH_SEPARATOR: Final = " > "


@dataclass(frozen=True, slots=True)
class Heading:
    """One heading: where its markup starts and ends in the text, its depth (1 = top) and its title."""

    start: int
    end: int
    level: int
    title: str


def _markdown(text: str) -> list[Heading]:
    fences = [m.start() for m in _FENCE.finditer(text)]
    headings = []
    for match in _ATX.finditer(text):
        # a '#' line inside a fenced block (a shell comment) is code: an odd number of fences before it
        if bisect.bisect_left(fences, match.start()) % 2 == 0:
            title = _without_closing_marks(match.group(2))
            if title:
                headings.append(Heading(match.start(), match.end(), len(match.group(1)), title))
    return headings


def _without_closing_marks(title: str) -> str:
    # "## Usage ##" -> "Usage", but "Learn C#" keeps its '#': a closing sequence follows a blank
    title = title.rstrip(" \t")
    bare = title.rstrip("#")
    return bare.rstrip(" \t") if bare != title and (not bare or bare[-1] in " \t") else title


def _rst(text: str) -> list[Heading]:
    styles: dict[tuple[bool, str], int] = {}
    headings = []
    for match in _RST.finditer(text):
        overline, title, underline = match.group(1), match.group(2).strip(), match.group(3)
        if (overline and overline != underline) or not title:
            continue
        level = styles.setdefault((overline is not None, underline), len(styles) + 1)
        headings.append(Heading(match.start(), match.end(), level, title))
    return headings


_BY_MIMETYPE: Final = {
    "text/markdown": _markdown,
    "text/html": _markdown,
    "application/epub+zip": _markdown,
    "text/x-rst": _rst,
}


def find_headings(text: str, mimetype: str) -> list[Heading]:
    """The headings of `text` in document order; none for a mimetype without heading syntax."""
    finder = _BY_MIMETYPE.get(mimetype.split(";", 1)[0].strip().lower())
    return finder(text) if finder is not None else []


class HeadingPaths:
    """`HeadingPaths(headings).around(a, b)`: the titles of the sections that enclose all of text[a:b]."""

    def __init__(self, headings: Sequence[Heading]) -> None:
        self._starts = [h.start for h in headings]
        self._headings = headings
        # the open sections (outermost first) at each heading, that heading included
        self._paths: list[tuple[Heading, ...]] = []
        stack: list[Heading] = []
        for heading in headings:
            while stack and stack[-1].level >= heading.level:
                stack.pop()
            stack.append(heading)
            self._paths.append(tuple(stack))

    def at_heading(self, n: int) -> list[str]:
        """Titles of the sections open at the `n`-th heading, its own last."""
        return [_clean(h.title) for h in self._paths[n]]

    def around(self, a: int, b: int) -> list[str]:
        """Titles of the sections open at `a` that also hold every heading inside [a, b) (those are in the text).

        A heading that ends the span opens a section the span holds nothing of: it does not count.
        """
        last = bisect.bisect_right(self._starts, a) - 1
        inside = self._headings[bisect.bisect_left(self._starts, a) : bisect.bisect_left(self._starts, b)]
        deepest_open = min((h.level for h in inside if h.end < b), default=7)
        path = self._paths[last] if last >= 0 else ()
        return [_clean(h.title) for h in path if h.level < deepest_open]


def _clean(title: str) -> str:
    return " ".join(title.replace(_PERMALINK, " ").split())

"""HTML/XHTML -> plain text with paragraph breaks, using the stdlib parser (no network, no entities expansion)."""

import re
from html.parser import HTMLParser

_BLANKS = re.compile(r"\s+")

# elements whose content is never text a reader sees
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "math"})
# what may stand in <head>; any other element or text ends it, since </head> (like <body>) is optional in HTML
_HEAD_CONTENT = frozenset(
    {"base", "basefont", "bgsound", "link", "meta", "noframes", "noscript", "script", "style", "template", "title"}
)
# elements that start a new paragraph
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figcaption", "figure",
        "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p",
        "pre", "section", "table", "tbody", "thead", "tfoot", "ul", "body", "html", "title", "caption",
    }
)  # fmt: skip
# elements that end a line but not a paragraph
_LINE = frozenset({"br", "tr"})
_CELL = frozenset({"td", "th"})
# h1..h6 are written as Markdown headings (the chunker reads the heading path), one level below the page's <title>
# when that comes first
_HEADINGS = {f"h{n}": n for n in range(1, 7)}


class _TextCollector(HTMLParser):
    """Collects visible text; block elements become blank lines, cells are separated by ' | '."""

    def __init__(self, heading_shift: int) -> None:
        super().__init__(convert_charrefs=True)
        self._heading_shift = heading_shift
        self.parts: list[str] = []
        self._skip_depth = 0
        self._pre_depth = 0
        self._title: list[str] = []
        self._in_title = False
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self._in_head = True
            return
        if self._in_head and tag not in _HEAD_CONTENT:
            self._in_head = False
        if tag == "title" and self._skip_depth == 0:  # an <svg>'s <title> is an icon's tooltip, not the page's
            self._in_title = True
        elif tag in _SKIP:
            self._skip_depth += 1
        elif tag in _BLOCK:
            self.parts.append("\n\n")
            if tag == "pre":
                self._pre_depth += 1
            elif tag in _HEADINGS and self._skip_depth == 0:
                self.parts.append("#" * min(_HEADINGS[tag] + self._heading_shift, 6) + " ")
        elif tag in _LINE:
            self.parts.append("\n")
        elif tag in _CELL:
            self.parts.append(" | ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _LINE or tag == "hr":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self._in_head = False
        elif tag == "title":
            self._in_title = False
        elif tag in _SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK:
            self.parts.append("\n\n")
            if tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)
            return
        if self._in_head and self._skip_depth == 0 and data.strip():
            self._in_head = False  # text ends an unclosed <head>: it is the body's
        if self._skip_depth == 0 and not self._in_head:
            # outside <pre>, source line breaks are just spaces
            self.parts.append(data if self._pre_depth else _BLANKS.sub(" ", data))

    @property
    def title(self) -> str:
        return " ".join("".join(self._title).split())


def html_to_text(markup: str, include_title: bool = True) -> str:
    """Visible text of an HTML document, headings marked as in Markdown; the <title> comes first when present and
    asked for, as a top-level heading."""
    collector = _TextCollector(heading_shift=1 if include_title else 0)
    collector.feed(markup)
    collector.close()
    # indentation inside <pre> is lost; for search that is harmless and keeps cell padding out
    lines = (" ".join(line.split()).removeprefix("| ") for line in "".join(collector.parts).split("\n"))
    body = "\n".join(lines)
    if include_title and collector.title:
        return "# " + collector.title + "\n\n" + body
    return body

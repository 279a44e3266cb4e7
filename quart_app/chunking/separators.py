"""Per-mimetype split rules: separator patterns from the coarsest structure to the finest.

A match's end is a cut position, so the separator stays with the piece before it and a heading (matched by
lookahead) starts the piece after it. Texts are expected to be normalized (no 3+ newlines, no NUL).
"""

import re
from collections.abc import Sequence
from typing import Final

Rules = Sequence[re.Pattern[str]]

_PARAGRAPH: Final = re.compile(r"\n\n+")
_LINE: Final = re.compile(r"\n")
# end of a sentence: terminal punctuation, optional closing quote/bracket, then whitespace (CJK full stops need none)
_SENTENCE: Final = re.compile(r"[.!?\u2026]+[\"'\u2019\u201d)\]]*\s+|[\u3002\uff01\uff1f]+")
# clause ends, spaced dashes/bars, CJK commas
_CLAUSE: Final = re.compile(r"[;:,]\s+|\s+[|\u2013\u2014-]+\s+|[\uff1b\uff0c\u3001]")
_WORD: Final = re.compile(r"\s+")

_PROSE: Final = (_PARAGRAPH, _LINE, _SENTENCE, _CLAUSE, _WORD)

MARKDOWN: Final[Rules] = (
    re.compile(r"\n(?=# )"),
    re.compile(r"\n(?=## )"),
    re.compile(r"\n(?=### )"),
    re.compile(r"\n(?=#{4,6} )"),
    re.compile(r"\n(?=```)"),
    *_PROSE,
)
ORG: Final[Rules] = (
    re.compile(r"\n(?=\* )"),
    re.compile(r"\n(?=\*\* )"),
    re.compile(r"\n(?=\*{3,} )"),
    *_PROSE,
)
# a title line directly followed by an underline of one repeated punctuation character
RST: Final[Rules] = (re.compile(r"\n+(?=[^\n]+\n([=\-~^\"'`#*+])\1{2,}\n)"), *_PROSE)
JSON: Final[Rules] = (
    _PARAGRAPH,
    _LINE,
    re.compile(r"[}\]],\s*"),
    re.compile(r",\s*"),
    re.compile(r"(?=[{\[])"),
    _WORD,
)
# rows are the unit: sheets (blank line), then rows, then cells, then words
TABLE: Final[Rules] = (_PARAGRAPH, _LINE, re.compile(r" \| "), _WORD)
XML: Final[Rules] = (_LINE, _SENTENCE, _CLAUSE, _WORD)
DEFAULT: Final[Rules] = _PROSE

_BY_MIMETYPE: Final[dict[str, Rules]] = {
    "text/markdown": MARKDOWN,
    # their loaders write headings as Markdown does
    "text/html": MARKDOWN,
    "application/epub+zip": MARKDOWN,
    "text/org": ORG,
    "text/x-rst": RST,
    "application/json": JSON,
    "text/csv": TABLE,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": TABLE,
    "application/vnd.ms-excel.sheet.macroenabled.12": TABLE,
    "application/vnd.oasis.opendocument.spreadsheet": TABLE,
    "application/xml": XML,
}


def rules_for(mimetype: str) -> Rules:
    """Split rules for a mimetype (case-insensitive, parameters ignored); prose rules for everything else."""
    return _BY_MIMETYPE.get(mimetype.split(";", 1)[0].strip().lower(), DEFAULT)

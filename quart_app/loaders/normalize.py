"""Whitespace and NUL cleanup applied to every extracted text before chunking."""

import re

_CR = re.compile(r"\r\n?")
# three or more line breaks (possibly with blanks between them) become one paragraph break
_MANY_NEWLINES = re.compile(r"\n[^\S\n]*(?:\n[^\S\n]*){2,}")
# runs of 5+ whitespace other than line breaks (table padding, justified PDFs, U+2003, U+3000, \x1c-\x1f) shrink to
# their first character; bounded runs also keep the chunker's separator patterns linear
_LONG_BLANKS = re.compile(r"([^\S\n])[^\S\n]{4,}")
_TRAILING_BLANKS = re.compile(r"[ \t\f\v]+\n")
# runs of 4+ sentence marks (dot leaders in tables of contents) become three: "[.!?…]+" is scanned from each mark
_LONG_MARKS = re.compile(r"([.!?\u2026])[.!?\u2026]{3,}")


def normalize_text(text: str) -> str:
    """Remove NULs, unify line ends, shorten long blank and sentence-mark runs, collapse 3+ newlines to 2, strip."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if "\r" in text:
        text = _CR.sub("\n", text)
    # long runs first: the later patterns then only ever see short ones
    text = _LONG_BLANKS.sub(r"\1", text)
    text = _LONG_MARKS.sub(r"\1\1\1", text)
    text = _TRAILING_BLANKS.sub("\n", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()

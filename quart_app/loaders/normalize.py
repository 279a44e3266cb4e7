"""Whitespace and NUL cleanup applied to every extracted text before chunking."""

import re

_CR = re.compile(r"\r\n?")
# three or more line breaks (possibly with blanks between them) become one paragraph break
_MANY_NEWLINES = re.compile(r"\n[ \t\f\v]*(?:\n[ \t\f\v]*){2,}")
# runs of 5+ horizontal whitespace (table padding, justified PDFs) shrink to their first character
_LONG_BLANKS = re.compile(r"([ \t\f\v\u00a0])[ \t\f\v\u00a0]{4,}")
_TRAILING_BLANKS = re.compile(r"[ \t\f\v]+\n")


def normalize_text(text: str) -> str:
    """Remove NULs, unify line ends, collapse 3+ newlines to 2 and long blank runs to one, strip the ends."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if "\r" in text:
        text = _CR.sub("\n", text)
    text = _TRAILING_BLANKS.sub("\n", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    text = _LONG_BLANKS.sub(r"\1", text)
    return text.strip()

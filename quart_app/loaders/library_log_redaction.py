"""Keeps a user's document out of what parser libraries say: their log lines, their exceptions' text and tracebacks.

Parser libraries quote what they read: pypdf logs `invalid pdf header: b'...'` with a file's first bytes, lxml's
`Input is not proper UTF-8 ... Bytes: 0x44 0x65 ...` names four bytes and its tag-mismatch errors the words it took
for tags, a lark parser (extract-msg's RTF) shows the line it stopped in, `int('Dear Bob')` quotes the cell. What an
admin needs stays: the library (the logger, the exception's module), the exception class, the message's shape and
where in the file it happened; quoted literals, byte runs and the lines after the first are withheld. A record's
arguments are what the library read (pypdf logs `Annotations are not an array: %(annotations)s` with the string it
found, unquoted): each is named by its type, numbers (object numbers, offsets, counts) kept.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from quart_app.traceback_text import traceback_text

from .failure_site import exception_name

# a Python bytes repr, b'...' or b"...", with its escapes; not the tail of a word ("verb'")
_BYTES_LITERAL = re.compile(r"""\bb(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")""")
# a quoted string ('...' or "..."), not an apostrophe inside a word ("can't", "user's")
_TEXT_LITERAL = re.compile(r"""(?<![\w'"])(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")""")
# two or more hex bytes in a row (lxml: "Bytes: 0x44 0x65 0x61 0x72"); one byte (a codec's 0xff) tells no text
_BYTE_RUN = re.compile(r"\b0x[0-9A-Fa-f]{2}(?:[ ,]+0x[0-9A-Fa-f]{2})+\b")
WITHHELD = "<bytes withheld>"
TEXT_WITHHELD = "<text withheld>"
# a library's message past this is its quotes, not its shape
_MAX_MESSAGE_CHARS = 300
# our own modules never log file content; every other logger in a parse worker is a parser library's
_OWN_PACKAGES = frozenset({"quart_app", "appliance"})


class _WithheldArgument:
    """Stands in for a library's log argument: `%s` and `%r` both show its type, never its value."""

    __slots__ = ("label",)

    def __init__(self, value: object) -> None:
        if isinstance(value, bytes | bytearray):
            self.label = WITHHELD
        elif type(value) is str:
            self.label = TEXT_WITHHELD
        else:
            self.label = f"<{type(value).__name__} withheld>"

    def __repr__(self) -> str:
        return self.label

    __str__ = __repr__


def _withheld_argument(value: object) -> object:
    # a number in a parser's message is a position, a count or an object number; anything else is what it read
    return value if value is None or isinstance(value, int | float) else _WithheldArgument(value)


def message_without_arguments(record: logging.LogRecord) -> str:
    """A record's message with each argument but numbers named by its type; the bare format string when it needs a
    number where a withheld argument stands (`%d`)."""
    if not record.args:
        return str(record.msg)
    args: Mapping[str, object] | tuple[object, ...]
    if isinstance(record.args, Mapping):
        args = {key: _withheld_argument(value) for key, value in record.args.items()}
    else:
        args = tuple(_withheld_argument(value) for value in record.args)
    try:
        return str(record.msg % args)
    except (TypeError, ValueError, KeyError):
        return str(record.msg)


def withhold_bytes(message: str) -> str:
    """`message` with every bytes literal replaced by WITHHELD; the rest of it stays (it tells an admin what
    happened)."""
    return _BYTES_LITERAL.sub(WITHHELD, message)


def withhold_document_text(message: str) -> str:
    """A library's message as its first line, every bytes literal, quoted string and run of hex bytes withheld,
    cut at 300 characters: the later lines of a parser's message show the file's text around the error."""
    lines = message.strip().splitlines() or [""]
    first = _BYTE_RUN.sub(WITHHELD, _TEXT_LITERAL.sub(TEXT_WITHHELD, withhold_bytes(lines[0])))
    if len(first) > _MAX_MESSAGE_CHARS:
        first = first[:_MAX_MESSAGE_CHARS] + "…"
    more = len(lines) - 1
    return first + (f" [{more} more line{'s' if more > 1 else ''} withheld]" if more else "")


def _lxml_syntax_message(exc: BaseException) -> str | None:
    """lxml's XMLSyntaxError as libxml2's error name and position ('ERR_TAG_NAME_MISMATCH, line 1, column 30'): its
    message names the words a damaged file has where tags should be."""
    code, position = getattr(exc, "code", None), getattr(exc, "position", None)
    if type(exc).__module__ != "lxml.etree" or not isinstance(code, int) or not isinstance(position, tuple):
        return None
    from lxml import etree

    name = etree.ErrorTypes._getName(code, f"libxml2 error {code}")
    return f"{name}, line {position[0]}, column {position[1]}"


def library_message(exc: BaseException) -> str:
    """What a parser library's exception says, without what it quotes from the file (see `withhold_document_text`)."""
    if isinstance(exc, UnicodeDecodeError):
        # codec, position and reason: at most the one byte it stopped at, never the object decoded
        return str(exc)
    if isinstance(exc, UnicodeError) and hasattr(exc, "start") and hasattr(exc, "end"):
        encoding = getattr(exc, "encoding", "unicode")
        return f"{encoding!r} codec can't handle position {exc.start}-{exc.end - 1}: {getattr(exc, 'reason', '')}"
    lxml = _lxml_syntax_message(exc)
    return lxml if lxml is not None else withhold_document_text(str(exc))


def _exception_line(exc: BaseException) -> str:
    name = exception_name(exc)
    message = library_message(exc)
    return f"{name}: {message}\n" if message else f"{name}\n"


def withheld_traceback(exc: BaseException) -> str:
    """The traceback of `exc` and of the exceptions it was raised from, each with its frames (the libraries' code)
    and its exception line without the file's content (`library_message`)."""
    return traceback_text(exc, _exception_line)


class LibraryTextFilter(logging.Filter):
    """A handler filter that rewrites a library's record without what it quotes from a file: its message
    (`message_without_arguments`, then `withhold_document_text` for what the library formatted itself) and its
    traceback (`withheld_traceback`, kept as the record's exc_text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.partition(".")[0] in _OWN_PACKAGES:
            return True
        record.msg = withhold_document_text(message_without_arguments(record))
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = withheld_traceback(record.exc_info[1])
            record.exc_info = None
        return True

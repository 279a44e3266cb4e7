"""Keeps file bytes out of the parse workers' log: parser libraries quote what they read (pypdf logs
`invalid pdf header: b'...'` with a file's first bytes), and a user's document must never reach our logs."""

from __future__ import annotations

import logging
import re

# a Python bytes repr, b'...' or b"...", with its escapes; not the tail of a word ("verb'")
_BYTES_LITERAL = re.compile(r"""\bb(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")""")
WITHHELD = "<bytes withheld>"
# our own modules never log file content; every other logger in a parse worker is a parser library's
_OWN_PACKAGES = frozenset({"quart_app", "appliance"})


def withhold_bytes(message: str) -> str:
    """`message` with every bytes literal replaced by WITHHELD; the rest of it stays (it tells an admin what
    happened)."""
    return _BYTES_LITERAL.sub(WITHHELD, message)


class LibraryBytesFilter(logging.Filter):
    """A handler filter that rewrites library records' messages without the bytes they quote."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.partition(".")[0] in _OWN_PACKAGES:
            return True
        try:
            message = record.getMessage()
        except Exception:
            # a malformed record: leave it to the handler, which reports formatting errors without the arguments
            return True
        record.msg = withhold_bytes(message)
        record.args = None
        return True

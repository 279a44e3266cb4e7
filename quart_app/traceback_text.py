"""A traceback as Python prints it, chained exceptions included, with each exception's own line written by the
caller: the log filters that keep a file's or PostgreSQL's text out of a traceback differ only in that line."""

from __future__ import annotations

import traceback
from collections.abc import Callable

# how a traceback joins an exception to the one it came from (traceback.format_exception's words)
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def traceback_text(exc: BaseException, exception_line: Callable[[BaseException], str]) -> str:
    """The traceback of `exc` and of the exceptions it was raised from or while handling, each with its frames and
    the line (ending in a newline) `exception_line` writes for it."""
    blocks: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        block = ("Traceback (most recent call last):\n" + frames if frames else "") + exception_line(current)
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current, link = None, ""
        blocks.append(link + block if current is not None else block)
    # built from the newest exception back; a traceback reads from the oldest
    return "".join(reversed(blocks)).rstrip("\n")

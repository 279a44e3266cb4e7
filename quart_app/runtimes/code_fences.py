"""Markdown code fences in an answer: an answer cut inside a ``` block (by the repetition guard, max_tokens or a stop
string) would have the Assistant render the rest of the page as code, so the block is closed at the end."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import closing

_FENCE_CHARS = ("`", "~")
_FENCE_RUN = 3  # CommonMark: a fence is at least three backticks or tildes


class FenceTracker:
    """Fed an answer's text in slices of any size; knows whether what it was fed leaves a fenced code block open and
    which line closes it (a fence indented in a list item is closed at its own indentation)."""

    def __init__(self) -> None:
        self._line = ""  # the line in progress (its end not fed yet)
        self._opener: str | None = None  # the open block's indentation and fence ("  ```"); None outside a block

    @property
    def in_fence(self) -> bool:
        """Whether the complete lines fed so far leave a block open (the line in progress not counted)."""
        return self._opener is not None

    @property
    def line_so_far(self) -> str:
        """The line in progress."""
        return self._line

    def feed(self, text: str) -> list[tuple[str, bool]]:
        """Take the next slice; the lines it completes, each with whether it lies inside a block (a fence line
        opening or closing one does not)."""
        if not text:
            return []
        *complete, self._line = (self._line + text).split("\n")
        lines = []
        for line in complete:
            opener = _after_line(self._opener, line)
            lines.append((line, self._opener is not None and opener is not None))
            self._opener = opener
        return lines

    def closing(self) -> str:
        """What to append to the text fed so that no block is left open: "" when none is, else the closing fence on
        a line of its own."""
        if not self._line:
            return self._opener or ""
        opener = _after_line(self._opener, self._line)
        return "" if opener is None else "\n" + opener


def _after_line(opener: str | None, line: str) -> str | None:
    """The open block after `line`: `opener` still, None once `line` closes it, or the fence `line` opens."""
    stripped = line.lstrip(" \t")
    indent = line[: len(line) - len(stripped)]
    char = stripped[:1]
    if char not in _FENCE_CHARS:
        return opener
    run = len(stripped) - len(stripped.lstrip(char))
    if run < _FENCE_RUN:
        return opener
    if opener is not None:
        fence = opener.lstrip(" \t")
        # a closing fence: the opening one's character, at least as long, nothing after it
        closes = char == fence[0] and run >= len(fence) and not stripped[run:].strip()
        return None if closes else opener
    info = stripped[run:]
    if char == "`" and "`" in info:
        return None  # ```inline``` code, not a fence (a backtick fence's info string has none)
    return indent + char * run


def closing_fence(text: str) -> str:
    """What to append to a whole answer so that it leaves no code block open ("" when it leaves none)."""
    tracker = FenceTracker()
    tracker.feed(text)
    return tracker.closing()


def has_text_outside_fence_lines(text: str) -> bool:
    """Whether `text` says anything besides fence lines: "```python\\n```" (a model that only opened a block, closed
    here) is as empty an answer as ""."""
    return any(line.strip() and _after_line(None, line) is None for line in text.splitlines())


def close_fences(pieces: Generator[str, None, None]) -> Generator[str, None, None]:
    """`pieces` as they come, then the closing fence when they leave a code block open (text already streamed
    cannot be taken back: the fix is an addition at the end); "" pieces pass through."""
    tracker = FenceTracker()
    with closing(pieces):
        for piece in pieces:
            tracker.feed(piece)
            yield piece
    yield tracker.closing()

"""A numbered list whose items say the same thing ("- 1. Restart the server:", "- 2. Restart the server:", ... to
max_tokens): a small model's loop in units too short for the near-copy rule, where a host list (host-01..host-40) or
a changelog legitimately differs in one token a line. A list's items differ from each other: the same item counted up
is a loop, unless the prompt holds that item as often (a document's own list quoted)."""

from __future__ import annotations

import re

# an optional bullet, then the item's number and "." or ")"; the item's text is the rest of the line
_NUMBERED_ITEM = re.compile(r"(?:[-*+]\s*)?\d+[.)]\s+(?P<text>\S.*)")


class NumberedItemRun:
    """Follows the answer's lines; says when a run of numbered items of the same text has become a loop."""

    def __init__(self, context: str, min_copies: int) -> None:
        self._context = context
        self._min_copies = min_copies  # copies after the first that make a loop (the near-copy rule's)
        self._text: str | None = None  # the run's item text; None: the last line was no numbered item
        self._ends: list[int] = []  # where each of the run's items ends (a piece position)
        self._quoted = 0  # times the prompt holds the run's item text

    @property
    def item_pieces(self) -> int:
        """The length of the run's last item in pieces (0 before its second)."""
        return self._ends[-1] - self._ends[-2] if len(self._ends) >= 2 else 0

    def held_from(self, end: int) -> int:
        """Where the text the run may still cut starts (`end` for none): after the items the prompt accounts for."""
        kept = max(1, self._quoted)
        return self._ends[kept - 1] if len(self._ends) >= kept else end

    def end_line(self, line: str, end: int, structure: bool) -> int | None:
        """Take a complete line ending before piece `end`; once the run is a loop, where to cut it (else None)."""
        stripped = line.strip()
        if not stripped:
            return None  # a blank line between items (a loose list) neither ends the run nor extends it
        match = None if structure else _NUMBERED_ITEM.fullmatch(stripped)
        text = match["text"] if match else None
        if text is None or text != self._text:
            self._text, self._ends, self._quoted = text, [end] if text is not None else [], 0
            return None
        self._ends.append(end)
        if len(self._ends) == 2:  # counted once per run, not per line: the prompt is a few thousand characters
            self._quoted = self._context.count(text)
        if len(self._ends) > max(self._min_copies, self._quoted):
            return self._ends[max(1, self._quoted) - 1]
        return None

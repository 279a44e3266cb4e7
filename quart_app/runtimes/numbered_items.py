"""List items that say the same thing ("- 1. Restart the server:", "- 2. Restart the server:", ... to max_tokens), or
nearly ("1. Restart server 1", "2. Restart server 2", ...; "- Check the log files again again"): a small model's loop
in units too short for the near-copy rule, where a host list (host-01..host-40) or a changelog legitimately differs in
one token a line. A list's items differ from each other: the same item counted up is a loop, unless the prompt holds
that item as often (a document's own list quoted); so are items alike, unless what sets each apart from the one before
is in the prompt (the hosts of a document's table gone through one by one)."""

from __future__ import annotations

import re
from itertools import pairwise

# a bullet, a number ("." or ")") or both, then the item's text (maybe none: "1." counted up alone is a loop too)
_LIST_ITEM = re.compile(r"(?:[-*+•]\s+(?:\d+[.)](?:\s+|$))?|\d+[.)](?:\s+|$))(?P<text>.*)")
# the words of an item, whatever its language: runs of letters or digits, and each other sign on its own
_WORD = re.compile(r"\w+|[^\w\s]")
_DIGITS = re.compile(r"\d+")
# items whose word pairs (bigrams, with the item's start and end) overlap this much are alike: "Restart the web
# server." and "Restart the SSH server." share half theirs (a real list of parallel steps), a counter or a word
# repeated at the end shares all (after digits are folded)
ALIKE_OVERLAP = 0.6


class ListItemRun:
    """Follows the answer's lines; says when a run of list items of the same text, or alike, has become a loop."""

    def __init__(self, context: str, min_copies: int) -> None:
        self._context = context
        self._context_words: frozenset[str] | None = None  # the prompt's words, split once a run needs them
        self._min_copies = min_copies  # copies after the first that make a loop (the near-copy rule's)
        self._text: str | None = None  # the last item's text; None: the last line was no list item
        self._pairs: frozenset[tuple[str, str]] = frozenset()  # the last item's word pairs, digits folded
        self._words: frozenset[str] = frozenset()  # the last item's words as written
        self._run_words: set[str] = set()  # the words of the run's items
        self._ends: list[int] = []  # where each of the run's items ends (a piece position)
        self._same = True  # every item of the run has the first's text
        self._quoted = 0  # times the prompt holds the run's item text (a run of the same text)

    @property
    def item_pieces(self) -> int:
        """The length of the run's last item in pieces (0 before its second)."""
        return self._ends[-1] - self._ends[-2] if len(self._ends) >= 2 else 0

    @property
    def same_text(self) -> bool:
        """Whether the run's items all have the same text (else they are alike)."""
        return self._same

    def held_from(self, end: int) -> int:
        """Where the text the run may still cut starts (`end` for none): after the items the prompt accounts for."""
        kept = max(1, self._quoted)
        return self._ends[kept - 1] if len(self._ends) >= kept else end

    def end_line(self, line: str, end: int, structure: bool) -> int | None:
        """Take a complete line ending before piece `end`; once the run is a loop, where to cut it (else None)."""
        stripped = line.strip()
        if not stripped:
            return None  # a blank line between items (a loose list) neither ends the run nor extends it
        match = None if structure else _LIST_ITEM.fullmatch(stripped)
        if match is None:
            self._text, self._ends, self._same, self._quoted = None, [], True, 0
            return None
        text = match["text"]
        words = _WORD.findall(text.lower())
        pairs, word_set = _pairs(words), frozenset(words)
        previous = self._text
        alike = previous is not None and (text == previous or self._alike(pairs, word_set))
        self._text, self._pairs, self._words = text, pairs, word_set
        if not alike:
            self._ends, self._same, self._quoted, self._run_words = [end], True, 0, set(word_set)
            return None
        self._run_words |= word_set
        if text != previous:
            self._same, self._quoted = False, 0
        self._ends.append(end)
        if len(self._ends) == 2 and self._same and text:  # once per run: the prompt is a few thousand characters
            self._quoted = self._context.count(text)
        if len(self._ends) > max(self._min_copies, self._quoted):
            return self._ends[max(1, self._quoted) - 1]
        return None

    def _alike(self, pairs: frozenset[tuple[str, str]], words: frozenset[str]) -> bool:
        """Whether an item (its word pairs and words) is a copy of the one before in a loop: alike, and what sets it
        apart is nothing new (a number, or words the run already wrote) nor the prompt's (a document's hosts)."""
        union = len(pairs | self._pairs)
        if len(pairs & self._pairs) < ALIKE_OVERLAP * union:
            return False
        added = words - self._words
        if not added:
            return True  # the same words, one repeated or dropped
        if any(not word.isdigit() and word not in self._run_words for word in added):
            return False  # a word new to the run: the next of a list of parallel steps (nginx, redis, cron, ...)
        return not added <= self._prompt_words()

    def _prompt_words(self) -> frozenset[str]:
        if self._context_words is None:
            self._context_words = frozenset(_WORD.findall(self._context.lower()))
        return self._context_words


def _pairs(words: list[str]) -> frozenset[tuple[str, str]]:
    """An item's word pairs, its start and end included, digits folded: "server 1" and "server 2" are alike."""
    folded = ["", *(_DIGITS.sub("0", word) for word in words), ""]
    return frozenset(pairwise(folded))

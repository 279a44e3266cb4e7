"""List items that say the same thing ("- 1. Restart the server:", "- 2. Restart the server:", ... to max_tokens), or
nearly ("1. Restart server 1", "2. Restart server 2", ...; "- Check the log files again again"): a small model's loop in
units too short for the near-copy rule, where a host list (host-01..host-40) or a changelog legitimately differs in one
token a line. A list's items differ from each other: the same item counted up is a loop, unless the prompt holds that
item as often (a document's own list quoted); so are items alike, unless what sets each apart from the one before is in
the prompt (the hosts of a document's table gone through one by one; a counter's next numbers, whatever its step, only
where the prompt has one of them beside the same word, or after it in a form the document and the answer may differ in:
"Port: 8002", "ports 8000, 8002", "servers 1-40", "host-12" or "host12" for "host 12"; see number_labels). Inside a code
block only numbered lines and comment lines are items ("# 1. Check: port 1", "# 2. Check: port 2", ...): other code
lines alike (loops, assignments, table rows) are code. Outside code blocks a plain line that holds a number is an item
too: a counter written without list markers or a fence ("ssh -p 8001 admin@server-1", "ssh -p 8002 admin@server-2", ...)
changes in several places a line, no near copy (units of several lines: see line_units). A markdown table's row is an
item of its cells' text, alike the row before only when a cell counts on from it ("| server-1 | 8001 | web |", "|
server-2 | 8002 | web |", ...): a real table's rows may differ in one cell alone (its ports 22, 80, 443)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from quart_app.runtimes.number_labels import NumberLabels, is_number, label_before

# a bullet, a number ("." or ")") or both, then the item's text (maybe none: "1." counted up alone is a loop too)
_LIST_ITEM = re.compile(r"(?:[-*+•]\s+(?:\d+[.)](?:\s+|$))?|\d+[.)](?:\s+|$))(?P<text>.*)")
# inside a code block: a comment line (its text maybe a list item itself), a numbered line, or a comment with no text
# C preprocessor lines ("#define PIN_12 12", "#include") are code, not comments
_DIRECTIVE = r"(?:define|undef|include|if|ifdef|ifndef|elif|else|endif|pragma|error|warning|line)\b"
_COMMENT = re.compile(rf"(?:#+(?!#|{_DIRECTIVE})|//+|--|;+|/\*+|\*)\s*(?P<text>.*?)(?:\s*\*/)?")
_NUMBERED = re.compile(r"\d+[.)](?:\s+|$)(?P<text>.*)")
_BLANK_COMMENT = re.compile(r"#+|//+|--|;+|/?\*+/?")
# the words of an item, whatever its language: runs of letters or digits, a number glued to the end of its word (or
# after "_") apart ("host12" and "host_12" are read as "host 12", "host _ 12"; "x86_64", "ab12cd" stay whole), and each
# other sign on its own
_WORD = re.compile(r"[^\W\d_]+(?=_?\d+(?!\w))|_(?=\d+(?!\w))|\w+|[^\w\s]")
_DIGITS = re.compile(r"\d+")
_SEPARATOR_SIGNS = "|-: \t"  # all a table's separator row holds ("|---|:--:|"): no item
# items whose word pairs (bigrams, with the item's start and end) overlap this much are alike: "Restart the web
# server." and "Restart the SSH server." share half theirs (a real list of parallel steps), a counter or a word
# repeated at the end shares all (after digits are folded)
ALIKE_OVERLAP = 0.6


class Prompt:
    """The prompt an answer is written for; split into words, word pairs and the numbers its words label once, when a
    run first needs them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._words: frozenset[str] = frozenset()
        self._pairs: frozenset[tuple[str, str]] = frozenset()
        self._labels: NumberLabels | None = None  # None: not split yet

    def words_and_pairs(self) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
        self.labels()
        return self._words, self._pairs

    def labels(self) -> NumberLabels:
        if self._labels is None:
            words = _WORD.findall(self.text.lower())
            self._words, self._pairs, self._labels = frozenset(words), frozenset(pairwise(words)), NumberLabels(words)
        return self._labels


@dataclass(frozen=True)
class Item:
    """A line read as a list item: its text, its words in order (lower case), their pairs (digits folded), the words
    as a set and its numbers in order."""

    text: str
    words: tuple[str, ...]
    pairs: frozenset[tuple[str, str]]
    word_set: frozenset[str]
    numbers: tuple[int, ...]
    row: bool = False  # a table row: alike the row before only when a cell counts on


def read_item(line: str, structure: bool, code: bool) -> Item | None:
    """A complete line that is not blank, as a list item (`structure`: a table or data row, or code; `code`: inside a
    code block); None when it is no item."""
    stripped = line.strip()
    if structure and not code and stripped.startswith("|"):
        return _table_row_item(stripped)
    text = _code_item_text(stripped) if code else None if structure else _line_item_text(stripped)
    return None if text is None else item_of(text)


def item_of(text: str, row: bool = False) -> Item:
    """A text read as a list item's (`row`: a table row's cells)."""
    words = tuple(_WORD.findall(text.lower()))
    return Item(text, words, _pairs(words), frozenset(words), tuple(map(int, _number_words(words))), row)


def _table_row_item(line: str) -> Item | None:
    """A table row as an item of its cells' text, one space between cells (None for a separator row)."""
    if not line.strip(_SEPARATOR_SIGNS):
        return None
    return item_of(" ".join(line.replace("|", " ").split()), row=True)


class ListItemRun:
    """Follows the answer's lines; says when a run of list items of the same text, or alike, has become a loop."""

    def __init__(self, prompt: Prompt, min_copies: int) -> None:
        self._prompt = prompt
        self._min_copies = min_copies  # copies after the first that make a loop (the near-copy rule's)
        self._text: str | None = None  # the last item's text; None: the last line was no list item
        self._pairs: frozenset[tuple[str, str]] = frozenset()  # the last item's word pairs, digits folded
        self._words: frozenset[str] = frozenset()  # the last item's words as written
        self._numbers: tuple[int, ...] = ()  # the last item's numbers, in order
        # how each of them changed from the item before it (None: not known, that item had other numbers or was none)
        self._steps: tuple[int, ...] | None = None
        self._run_words: set[str] = set()  # the words of the run's items
        self._ends: list[int] = []  # where each of the run's items ends (a piece position)
        self._same = True  # every item of the run has the first's text
        self._quoted = 0  # times the prompt holds the run's item text (a run of the same text)

    @property
    def item_pieces(self) -> int:
        """The length of the run's last item in pieces (0 before its second)."""
        return self._ends[-1] - self._ends[-2] if len(self._ends) >= 2 else 0

    @property
    def text(self) -> str | None:
        """The last item's text (None: the last line was no list item)."""
        return self._text

    @property
    def in_run(self) -> bool:
        """Whether the last item is alike the one before (or has its text)."""
        return len(self._ends) >= 2

    @property
    def same_text(self) -> bool:
        """Whether the run's items all have the same text (else they are alike)."""
        return self._same

    def held_from(self, end: int) -> int:
        """Where the text the run may still cut starts (`end` for none): after the items the prompt accounts for."""
        kept = max(1, self._quoted)
        return self._ends[kept - 1] if len(self._ends) >= kept else end

    def take(self, item: Item | None, end: int) -> int | None:
        """Take the next line that is not blank (a blank line between items, a loose list, neither ends the run nor
        extends it), read as an item ending before piece `end` (None: no item); once the run is a loop, where to cut
        it (else None)."""
        if item is None:
            self._text, self._ends, self._same, self._quoted = None, [], True, 0
            self._numbers, self._steps = (), None
            return None
        text = item.text
        previous = self._text
        alike = previous is not None and (self._counts_on(item) if item.row else text == previous or self._alike(item))
        self._steps = _steps(self._numbers, item.numbers) if previous is not None else None
        self._text, self._pairs, self._words, self._numbers = text, item.pairs, item.word_set, item.numbers
        if not alike:
            self._ends, self._same, self._quoted, self._run_words = [end], True, 0, set(item.word_set)
            return None
        self._run_words |= item.word_set
        if text != previous:
            self._same, self._quoted = False, 0
        self._ends.append(end)
        if len(self._ends) == 2 and self._same and text:  # once per run: the prompt is a few thousand characters
            self._quoted = self._prompt.text.count(text)
        if len(self._ends) > max(self._min_copies, self._quoted):
            return self._ends[max(1, self._quoted) - 1]
        return None

    def _counts_on(self, row: Item) -> bool:
        """Whether a table row is a copy of the one before in a loop: alike, and a cell counts on (the same row again
        is left to the verbatim rule, a number changed otherwise is a real table's)."""
        if row.text == self._text:
            return False
        counting = self._counting_on(row.numbers)
        return bool(counting) and self._alike(row, counting)

    def _alike(self, item: Item, counting: set[int] | None = None) -> bool:
        """Whether an item is a copy of the one before in a loop: alike, and what sets it apart is nothing new (a
        number, or words the run already wrote) nor the prompt's (a document's hosts); `counting`: its numbers that
        count on, when known."""
        union = len(item.pairs | self._pairs)
        if len(item.pairs & self._pairs) < ALIKE_OVERLAP * union:
            return False
        added = item.word_set - self._words
        if not added:
            return True  # the same words, one repeated or dropped
        if any(not word.isdigit() and word not in self._run_words for word in added):
            return False  # a word new to the run: the next of a list of parallel steps (nginx, redis, cron, ...)
        return not self._from_prompt(
            added, item.words, self._counting_on(item.numbers) if counting is None else counting
        )

    def _from_prompt(self, added: frozenset[str], words: tuple[str, ...], counting: set[int]) -> bool:
        """Whether the prompt accounts for the words that set an item apart: it holds them all (a number maybe only in
        a range, "servers 1-40"), and when some are a counter's next numbers, one of those beside a neighbour it has
        in the item ("host 17" for "restart host 17"; "server-17" for "ssh -p 8017 server-17", whose port the
        document gives beside "port"), or after the same word in a form `NumberLabels` tolerates ("Host-17",
        "hosts 16, 17"): a 100-row table puts every number up to 100 somewhere in the prompt, which would let any
        counter run on. `counting`: the item's numbers that count on from the item before."""
        missing = added - self._prompt.words_and_pairs()[0]
        if not all(is_number(word) for word in missing):
            return False
        counters = {word for word in added if is_number(word) and int(word) in counting}
        if not missing and not counters:
            return True
        looked_up = missing | counters
        beside = {word for index, word in enumerate(words) if word in looked_up and self._beside_its_word(words, index)}
        return missing <= beside and (not counters or not counters.isdisjoint(beside))

    def _beside_its_word(self, words: tuple[str, ...], index: int) -> bool:
        """Whether the prompt writes an item's number beside a neighbour it has in the item, or after its word."""
        word = words[index]
        if not is_number(word):
            return False
        _, prompt_pairs = self._prompt.words_and_pairs()
        if (index > 0 and (words[index - 1], word) in prompt_pairs) or (
            index + 1 < len(words) and (word, words[index + 1]) in prompt_pairs
        ):
            return True
        label = label_before(words, index)
        return label is not None and self._prompt.labels().labels(label, int(word))

    def _counting_on(self, numbers: tuple[int, ...]) -> set[int]:
        """An item's numbers that are a counter's next step: one above a number of the item before, or in the same
        place among the item's numbers as one of the item before, changed by the step that one changed by (2, 4, 6;
        10, 20, 30), or by any step while none is known (the run's second item)."""
        before, steps = self._numbers, self._steps
        counting = {value for value in numbers if value - 1 in before}
        if len(numbers) == len(before):
            counting.update(
                value
                for place, (value, was) in enumerate(zip(numbers, before, strict=True))
                if value != was and (steps is None or value - was == steps[place])
            )
        return counting


def is_blank(line: str, code: bool) -> bool:
    """Whether a line says nothing (inside a code block, a comment without text): no item, and no end of a run."""
    stripped = line.strip()
    return not stripped or (code and _BLANK_COMMENT.fullmatch(stripped) is not None)


def _list_item_text(line: str) -> str | None:
    match = _LIST_ITEM.fullmatch(line)
    return None if match is None else match["text"]


def _line_item_text(line: str) -> str | None:
    """The text of a line outside code blocks that is a list item, or the whole line when it holds a number: a counter
    written without list markers or a code block ("ssh server-1 -p 8001", "ssh server-2 -p 8002", ...)."""
    text = _list_item_text(line)
    return line if text is None and _DIGITS.search(line) else text


def _code_item_text(line: str) -> str | None:
    """The text of a code line that is a comment or a numbered line, the comment's list marker dropped (else None)."""
    comment = _COMMENT.fullmatch(line)
    if comment is not None:
        item_text = _list_item_text(comment["text"])
        return comment["text"] if item_text is None else item_text
    numbered = _NUMBERED.fullmatch(line)
    return None if numbered is None else numbered["text"]


def _number_words(words: tuple[str, ...]) -> list[str]:
    """An item's numbers, in order."""
    return [word for word in words if is_number(word)]


def _steps(before: tuple[int, ...], numbers: tuple[int, ...]) -> tuple[int, ...] | None:
    """How each number of an item changed from the item before (None when their numbers do not pair up)."""
    if len(numbers) != len(before):
        return None
    return tuple(value - was for value, was in zip(numbers, before, strict=True))


def _pairs(words: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    """An item's word pairs, its start and end included, digits folded: "server 1" and "server 2" are alike."""
    folded = ["", *(_DIGITS.sub("0", word) for word in words), ""]
    return frozenset(pairwise(folded))

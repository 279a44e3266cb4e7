"""The numbers a prompt writes after a word that names them ("host 12", "Port: 8002", "ports 8000, 8002, 8004",
"servers 1-40"), looked up in the forms an answer writes them in: the repetition guard counts a counter's next number as
the prompt's only beside the same word, and a document and an answer often write that word differently.

Tolerated, and only these: case; a plural -s, -es or -ies on either side ("ports 8002" for "port 8002", "boxes 3" for
"box 3", "entries 3" for "entry 3"), the common ways a label's word changes in a list; one joining sign between word
and number on either side ("host-12", "host_12", "Port: 8002", "port=8002", "server #12", "ports/8002") or none
("host12": the text's words split letters from digits), the ways names and labels are written;
the numbers that follow a labelled one, joined by ",", "and", "or", "&" or "/" (each is the word's: "ports 8000, 8002
and 8004"), up to one that a word follows; a range after the word ("servers 1-40", an en dash, "1 to 40", "1 through
40") of at most MAX_RANGE numbers.
Not tolerated: a sentence's "." or a list's "," between word and number ("the server. 12 users", "server, 12 racks"),
the number before the word ("12 servers" counts servers, it names none), a number after a joiner that a word follows
("server 12 and 13 users": 13 counts users; so "ports 80 and 443 are open" loses 443, as nouns and verbs look alike
here), other words of the same stem ("serving")."""

from __future__ import annotations

from collections import defaultdict

# signs that join a label to its number in names and key-value text; "." and "," end sentences and separate items
_JOINERS = frozenset("-_:#=/")
# words and signs that go on from one labelled number to the next of the same word
_LIST_JOINERS = frozenset({",", "and", "or", "&", "/"})
_RANGE_SIGNS = frozenset({"-", "\u2013", "to", "through"})  # hyphen, en dash
# a wider range names a class ("ports 1024-65535 are open"), not a list to go through: an answer of max_tokens (512)
# holds some 128 list items at most
MAX_RANGE = 128
COUNTER_DIGITS = 18  # a counter's numbers are short; a longer run of digits is read as a word (int() has limits)


class NumberLabels:
    """The numbers a text, given as its words in lower case (each sign a word of its own), writes after a word,
    looked up with the tolerated forms."""

    def __init__(self, tokens: list[str]) -> None:
        self._single: set[tuple[str, int]] = set()
        self._ranges: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
        for index, token in enumerate(tokens):
            if token.isalpha():
                self._read_numbers_after(token, tokens, index + 1)

    def labels(self, word: str, number: int) -> bool:
        """Whether the text writes `number` after `word` (lower case) in one of the tolerated forms."""
        return any(
            (form, number) in self._single or any(low <= number <= high for low, high in self._ranges.get(form, ()))
            for form in _word_forms(word)
        )

    def _read_numbers_after(self, word: str, tokens: list[str], start: int) -> None:
        at = start + 1 if start < len(tokens) and tokens[start] in _JOINERS else start
        first = at
        while at < len(tokens) and is_number(tokens[at]) and (at == first or not _counts_next_word(tokens, at)):
            low = int(tokens[at])
            self._single.add((word, low))
            at += 1
            if at + 1 < len(tokens) and tokens[at] in _RANGE_SIGNS and is_number(tokens[at + 1]):
                high = int(tokens[at + 1])
                if low < high <= low + MAX_RANGE:
                    self._ranges[word].append((low, high))
                at += 2
            while at < len(tokens) and tokens[at] in _LIST_JOINERS:
                at += 1


def _counts_next_word(tokens: list[str], at: int) -> bool:
    """Whether the number at `at` counts the word after it ("13 users"): no label's (a range or list word goes on)."""
    following = tokens[at + 1] if at + 1 < len(tokens) else ""
    return following.isalpha() and following not in _RANGE_SIGNS and following not in _LIST_JOINERS


def label_before(words: tuple[str, ...], index: int) -> str | None:
    """The word an item writes a number after, at most one joining sign between (None when there is none)."""
    before = index - 1
    if before >= 1 and words[before] in _JOINERS:
        before -= 1
    return words[before] if before >= 0 and words[before].isalpha() else None


def _word_forms(word: str) -> tuple[str, ...]:
    """A word as written, with a plural -s, -es or -ies added, and without one it may have."""
    forms = [word, word + "s", word + "es"]
    if word.endswith("s"):
        forms.append(word[:-1])
    if word.endswith("es"):
        forms.append(word[:-2])
    if word.endswith("y"):
        forms.append(word[:-1] + "ies")
    if word.endswith("ies"):
        forms.append(word[:-3] + "y")
    return tuple(forms)


def is_number(word: str) -> bool:
    """Whether a word is a number a counter may write (a run of digits too long for one is a word)."""
    return word.isdecimal() and len(word) <= COUNTER_DIGITS

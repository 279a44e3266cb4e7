"""Units of two to MAX_UNIT_LINES lines counted on together ("# server-10" / 'echo "Server-10: 8001"'; "Host:
server-10" / "Port: 8010" / "Role: web"): a loop the run of list items misses, as each line differs from the next. Each
place in the unit (its first lines, its second lines, ...) is followed by a run of items of its own; the units are a
loop once the places are all in runs and one whose line changes (a counter) has run as long as a list's loop, or, when
every place repeats its own text ("1. Restart the server:" / "2. Check the logs:" numbered on), once one has and the
unit is no shorter one written again (the same line again and again is the verbatim rule's)."""

from __future__ import annotations

from bisect import bisect_left

from quart_app.runtimes.numbered_items import Item, ListItemRun, Prompt, item_of

# a longer unit is more than a list item's lines; the cost is a run of items per place per line
MAX_UNIT_LINES = 4


class LineUnitRun:
    """Follows the answer's lines in units of `length`; says when the units have become a loop."""

    def __init__(self, prompt: Prompt, min_copies: int, length: int) -> None:
        self._places = tuple(ListItemRun(prompt, min_copies) for _ in range(length))
        self._line_ends: list[int] = []  # where each line ends (blank lines left out)
        self._period = 0  # the last unit's length in pieces

    @property
    def unit_pieces(self) -> int:
        return self._period

    def held_from(self, end: int) -> int:
        """Where the text a loop of units may still cut starts (`end` for none): held while the place that took the
        last line is in a run (a place whose run broke lets go, as a list's run does)."""
        if not self._places[(len(self._line_ends) - 1) % len(self._places)].in_run:
            return end
        return min(place.held_from(end) for place in self._places if place.in_run)

    def take(self, item: Item | None, end: int) -> int | None:
        """Take the next line that is not blank, as a unit's line (see `unit_line`), ending before piece `end`; once
        the units are a loop, where to cut it: before the first line that a changing place's run does not keep."""
        ends, places = self._line_ends, self._places
        place = places[len(ends) % len(places)]
        ends.append(end)
        kept = place.take(item, end)
        if kept is None or not all(other.in_run for other in places):
            return None
        changing = [other for other in places if not other.same_text]
        if place.same_text and changing:
            return None  # a line the same in every unit ("Role: web") counts nothing: a changing place decides
        if not changing and _repeats_a_shorter_unit([other.text for other in places]):
            return None  # the same line again and again ("-v - port"): the rules for shorter units decide where to cut
        self._period = end - ends[-1 - len(places)]
        return min(self._before_next_line(other.held_from(end), end) for other in changing or places)

    def _before_next_line(self, kept: int, end: int) -> int:
        """Where the line before the next one of the place of the line ending at `kept` ends (`end` when none yet)."""
        after = bisect_left(self._line_ends, kept) + len(self._places) - 1
        return self._line_ends[after] if after < len(self._line_ends) else end


def _repeats_a_shorter_unit(texts: list[str | None]) -> bool:
    """Whether the texts of a unit's lines are those of a shorter unit written again ("a", "b", "a", "b")."""
    return any(texts[shorter:] + texts[:shorter] == texts for shorter in range(1, len(texts)))


def unit_line(line: str, item: Item | None, structure: bool, code: bool) -> Item | None:
    """A line as a unit's: its item, or a plain line that is none (no number, no list marker) read whole, as a unit's
    line the same every time ("Role: web") belongs to it; a table row or a code line still is none (a table's loop is
    one row counted on: the run of items follows rows)."""
    if item is not None and item.row:
        return None
    if item is not None or structure or code:
        return item
    return item_of(line.strip())

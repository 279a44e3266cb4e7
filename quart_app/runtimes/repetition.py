"""Stop an answer that has started repeating itself: a small model at low temperature falls into a loop ("-v - port"
line after line, the same paragraph again, or again with a word changed or a number counting up, the same list item
numbered on) and writes it until max_tokens (~30 s of CPU for SmolLM2's 512)."""

from __future__ import annotations

import logging
import re
import sys
from bisect import bisect_right
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass

import numpy as np

from quart_app.runtimes.code_fences import FenceTracker
from quart_app.runtimes.line_units import MAX_UNIT_LINES, LineUnitRun, unit_line
from quart_app.runtimes.numbered_items import ListItemRun, Prompt, is_blank, read_item

log = logging.getLogger(__name__)

# the longest repeating unit looked for, in pieces (≈ tokens): a paragraph; a longer one cannot repeat within the
# shipped max_tokens (512) anyway, and the cost per piece grows with it
MAX_PERIOD = 256
# a verbatim run this long copying the text just before it is a loop: a table's |---|---| separator or a row of
# identical cells is far shorter, and the lines of a list or of code differ somewhere within it
MIN_REPEATED_PIECES = 48
# near copies (each copy differs from the one before in at most one piece: a word changed, a number counting up, a
# step renumbered) make a loop only in units at least this long: a list item or a code line is shorter (8-16 tokens
# of SmolLM2, whose digits are a token each), and lists of those legitimately differ in one piece a line
NEAR_MIN_PERIOD = 20
# ... and only once this many near copies follow the first: two or three parallel sentences are prose
NEAR_MIN_COPIES = 3
_SENTENCE_ENDS = (".", "!", "?")
# lines whose look-alikes are structure, not a loop, when they differ in one piece: table rows, code, and data rows
# (CSV, TSV: two fields separated without a space, where prose puts one after its commas); verbatim copies of them
# are still a loop
_STRUCTURED_LINE_STARTS = ("|", "```", "~~~")
_DATA_FIELD = re.compile(r"[,;\t][^\s,;]")
_HEAD = 12  # characters of a line enough to see how it starts (an indented fence in a list item included)
_NOT_HELD = sys.maxsize  # a position past any answer's end: the runs hold nothing
_PERIODS = np.arange(1, MAX_PERIOD + 1, dtype=np.int64)
_VERBATIM_LIMITS = np.maximum(_PERIODS, MIN_REPEATED_PIECES)
_NEAR_PERIODS = _PERIODS[NEAR_MIN_PERIOD - 1 :].copy()
_NEAR_LIMITS = NEAR_MIN_COPIES * _NEAR_PERIODS


@dataclass(frozen=True)
class Repeat:
    """The answer repeats a unit of `period` pieces; seen at piece `seen_at`, it is kept up to piece `kept`."""

    period: int
    seen_at: int
    kept: int
    near: bool = False  # the copies differ in one piece each (not verbatim)
    numbered: bool = False  # list items of the same text
    alike: bool = False  # list items alike: a counter, a word repeated

    def copies_differ(self) -> str:
        """How the copies differ, for the log ("" for verbatim)."""
        if self.alike:
            return ", list items alike"
        if self.numbered:
            return ", numbered items of the same text"
        return ", copies differing in a token" if self.near else ""


class RepetitionGuard:
    """Fed an answer one piece (a token's text) at a time. Hands on the text that can no longer turn out to be a
    repeat and holds back the rest; once the answer repeats itself, `repeat` says so and `finish()` returns the held
    text up to the end of the repeated unit's first copy. `context` is the prompt: a list quoted from it is no loop."""

    def __init__(self, context: str = "") -> None:
        self._pieces: list[str] = []
        self._released = 0  # pieces handed on
        self._boundaries: list[int] = []  # line and sentence ends, ascending, up to the last piece
        # every period is compared at every piece, so pieces are ids in arrays and the periods are compared at once:
        # verbatim, and with their whitespace folded (" The" and "The", "\n" and "\n\n") for near copies
        self._ids: dict[str, int] = {}
        self._exact = np.zeros(1024, dtype=np.int64)
        self._folded = np.zeros(1024, dtype=np.int64)
        # _runs[p - 1]: how many of the last pieces each equal the piece p before them
        self._runs = np.zeros(MAX_PERIOD, dtype=np.int64)
        # per period from NEAR_MIN_PERIOD: where its run of near copies starts; after its last mismatch, where the
        # run starts instead if another mismatch comes within one unit, and the piece until which that holds
        self._near_starts = _NEAR_PERIODS.copy()  # a period's first comparison
        self._near_restarts = np.zeros(_NEAR_PERIODS.size, dtype=np.int64)
        self._near_guards = np.zeros(_NEAR_PERIODS.size, dtype=np.int64)
        self._prose_since = 0  # the first piece after the last one in a table row, a data row or a code block
        self._structure = _StructureTracker()
        prompt = Prompt(context)
        self._items = ListItemRun(prompt, NEAR_MIN_COPIES)
        self._units = tuple(LineUnitRun(prompt, NEAR_MIN_COPIES, length) for length in range(2, MAX_UNIT_LINES + 1))
        self._line_structure = False  # whether a piece of the line in progress is structure
        # where the runs of items and of units hold text from: they change only as lines end, so found then
        self._held_by_lines = _NOT_HELD
        self.repeat: Repeat | None = None

    def push(self, piece: str) -> str:
        """Take the next piece; return the text now safe to hand on ("" for none). Not to be called once `repeat`
        is set."""
        pieces = self._pieces
        position = len(pieces)
        pieces.append(piece)
        end = position + 1
        self._store_ids(position, piece)
        structure = self._structure.is_structure(piece)
        longest = max(self._push_verbatim(position), self._push_near(position, structure))
        if self.repeat is None and self._structure.lines:
            self._end_lines(end, structure)
        else:
            self._line_structure |= structure
        if self.repeat is not None:
            return ""
        if self._is_boundary(end - 1):  # decided now that the piece after it is known
            self._boundaries.append(end - 1)
        # what copies the text just before it may become a repeat: hand on up to the last boundary before that
        held_from = min(end - longest, self._held_by_lines)
        if held_from == end and self._is_boundary(end):
            return self._release(end)
        index = bisect_right(self._boundaries, held_from) - 1
        return self._release(self._boundaries[index]) if index >= 0 else ""

    def _store_ids(self, position: int, piece: str) -> None:
        """Record the piece at `position` as ids, as it is and folded (the arrays double when full)."""
        if position == self._exact.size:
            self._exact = np.concatenate([self._exact, np.zeros_like(self._exact)])
            self._folded = np.concatenate([self._folded, np.zeros_like(self._folded)])
        ids = self._ids
        self._exact[position] = ids.setdefault(piece, len(ids))
        folded = piece.strip()
        self._folded[position] = ids.setdefault(folded, len(ids))

    def _push_verbatim(self, position: int) -> int:
        """Follow the verbatim runs with the piece at `position`; the longest run."""
        reach = min(MAX_PERIOD, position)  # periods 1..reach have a piece to compare with
        if not reach:
            return 0
        runs = self._runs[:reach]
        runs += 1
        runs *= self._exact[position - reach : position][::-1] == self._exact[position]
        hits = np.flatnonzero(runs >= _VERBATIM_LIMITS[:reach])
        if hits.size and self.repeat is None:
            period, run = int(hits[0]) + 1, int(runs[hits[0]])
            self.repeat = Repeat(period, position + 1, self._cut(position + 1 - run - period, period))
        return int(runs.max())

    def _end_lines(self, end: int, structure: bool) -> None:
        """Lines end in piece `end - 1` ("\\n", or "\\n   " with the next line's indentation): follow the list
        items of the same text, or alike, and the units of several lines alike, with them."""
        piece = self._pieces[end - 1]
        # where the line ends for a cut: before a piece that carries the next line's start ("\n   "), kept out
        line_end = end if piece.endswith("\n") else end - 1
        next_line = piece[piece.rfind("\n") + 1 :].strip()
        for line, in_code in self._structure.lines:
            line_structure = structure or self._line_structure
            self._line_structure = False
            if is_blank(line, in_code):
                continue
            item = read_item(line, line_structure, in_code)  # once for all runs
            kept = self._items.take(item, line_end)
            as_unit_line = unit_line(line, item, line_structure, in_code)
            units_kept = [(units, units.take(as_unit_line, line_end)) for units in self._units]
            if kept is not None:
                same = self._items.same_text
                self.repeat = Repeat(self._items.item_pieces, end, kept, numbered=same, alike=not same)
                return
            for units, unit_kept in units_kept:
                if unit_kept is not None:
                    self.repeat = Repeat(units.unit_pieces, end, unit_kept, alike=True)
                    return
        self._line_structure = structure and bool(next_line)
        self._held_by_lines = min(
            self._items.held_from(_NOT_HELD), *(units.held_from(_NOT_HELD) for units in self._units)
        )

    def _push_near(self, position: int, structure: bool) -> int:
        """Follow the runs of near copies with the piece at `position` (`structure`: it belongs to a table row, a
        data row or a code block); the longest run (0 for none)."""
        end = position + 1
        if structure:
            self._prose_since = end
            return 0  # every near run restarts after it: no need to follow them here
        count = min(MAX_PERIOD, position) - NEAR_MIN_PERIOD + 1  # periods with a piece to compare with
        if count <= 0:
            return 0
        before = self._folded[position - NEAR_MIN_PERIOD - count + 1 : position - NEAR_MIN_PERIOD + 1][::-1]
        changed = before != self._folded[position]
        starts, restarts, guards = self._near_starts[:count], self._near_restarts[:count], self._near_guards[:count]
        # a second change within one unit: the copies differ by more than a piece; the run starts after the first
        again = guards > position
        again &= changed
        np.copyto(starts, restarts, where=again)
        np.copyto(restarts, end, where=changed)
        np.copyto(guards, position + _NEAR_PERIODS[:count], where=changed)
        longest = end - max(int(starts.min()), self._prose_since)
        if longest < _NEAR_LIMITS[0]:
            return longest  # no period's run is long enough yet (the common case, checked without the arrays)
        runs = end - np.maximum(starts, self._prose_since)
        hits = np.flatnonzero(runs >= _NEAR_LIMITS[:count])
        if hits.size and self.repeat is None:
            period, run = int(_NEAR_PERIODS[hits[0]]), int(runs[hits[0]])
            self.repeat = Repeat(period, end, self._cut(end - run - period, period), near=True)
        return longest

    def finish(self) -> str:
        """The text still held: all of it, or, when the answer repeats itself, up to the end of its first copy."""
        return self._release(self.repeat.kept if self.repeat is not None else len(self._pieces))

    def _cut(self, start: int, period: int) -> int:
        """Where to end an answer repeating from `start` every `period` pieces: after one copy, at the line or
        sentence end nearest to it (the repeat may begin mid-line: the pieces before the first copy can match the
        end of the next, "\n" before a line, " The" against "The"); never before what was already handed on."""
        one_copy = start + period
        lowest = max(start + 1, self._released)
        before = next((p for p in range(one_copy, lowest - 1, -1) if self._is_boundary(p)), None)
        after = next((p for p in range(one_copy, one_copy + period) if self._is_boundary(p)), None)
        candidates = [position for position in (before, after) if position is not None]
        # the nearer one; on a tie the later, which drops nothing of the first copy
        return min(candidates, key=lambda position: (abs(position - one_copy), -position), default=one_copy)

    def _is_boundary(self, position: int) -> bool:
        """Whether a line or a sentence ends before piece `position` (a sentence end needs a space after it: "end. "
        but not "config.php")."""
        if position <= 0 or position > len(self._pieces):
            return False
        before = self._pieces[position - 1]
        after = self._pieces[position] if position < len(self._pieces) else ""
        return before.endswith("\n") or (before.rstrip().endswith(_SENTENCE_ENDS) and after[:1].isspace())

    def _release(self, end: int) -> str:
        text = "".join(self._pieces[self._released : end])
        self._released = max(self._released, end)
        return text


class _StructureTracker:
    """Follows the answer's lines: which pieces belong to a code block, a table row or a data row, whose look-alikes
    are no loop. Data separators are counted in the piece alone, not in the line so far (a paragraph is one line)."""

    def __init__(self) -> None:
        self._fences = FenceTracker()
        self._data_fields = 0  # separators without a space after them, on the line in progress
        self._last_character = "\n"
        self.lines: list[tuple[str, bool]] = []  # the lines the last piece completed, each with whether it is code

    def is_structure(self, piece: str) -> bool:
        fences = self._fences
        head = (fences.line_so_far[:_HEAD] + piece[:_HEAD]).lstrip()
        in_fence = fences.in_fence
        line_end = piece.rfind("\n")
        self._data_fields += len(
            _DATA_FIELD.findall(self._last_character + piece[: line_end if line_end >= 0 else None])
        )
        structure = in_fence or head.startswith(_STRUCTURED_LINE_STARTS) or self._data_fields >= 2
        self.lines = fences.feed(piece)
        if line_end >= 0:
            self._data_fields = len(_DATA_FIELD.findall(piece[line_end + 1 :]))
        self._last_character = piece[-1:] or self._last_character
        return structure or fences.in_fence or fences.line_so_far[:_HEAD].lstrip().startswith(_STRUCTURED_LINE_STARTS)


def stop_repeating(pieces: Generator[str, None, None], backend: str, prompt: str = "") -> Generator[str, None, None]:
    """`pieces` as a backend generates them for `prompt`, ended once the answer repeats itself, the repeats cut; ""
    (a point where the caller may stop) passes through."""
    guard = RepetitionGuard(prompt)
    with closing(pieces):  # closing the model's generator stops the generation
        for piece in pieces:
            yield guard.push(piece) if piece else ""
            if guard.repeat is not None:
                repeat = guard.repeat
                log.info(
                    "llm %s: the answer started repeating itself (a unit of %d tokens%s): stopped after %d tokens,"
                    " kept %d",
                    backend, repeat.period, repeat.copies_differ(), repeat.seen_at, repeat.kept,
                )  # fmt: skip
                break
    yield guard.finish()

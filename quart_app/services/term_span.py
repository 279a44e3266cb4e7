"""How close together a chunk holds a question's terms: the shortest stretch of its text holding each of them (cover
density, as ts_rank_cd measures it for words; identifier lexemes carry no positions, so it is measured on the text)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence


def span_terms(identifiers: Sequence[str], words: Sequence[str]) -> list[str]:
    """The terms whose closeness counts: the question's identifiers and `words`, those of its other words that the
    chunks are ranked by holding (a keyword question's words outside its identifiers the lexical leg counted: not one
    too common to count, which a close chunk may well not hold); none when fewer than two (one term is as close as it
    gets wherever it is)."""
    found = list(dict.fromkeys([*identifiers, *(w for w in (word.strip(".-:/") for word in words) if w)]))
    return found if len(found) >= 2 else []


def _places(low: str, term: str) -> list[int]:
    """Where `term` starts in `low` not inside a longer word (`true` is not in `construe`, `iter_content` is in
    `Response.iter_content`); str.find, not a regular expression: a tenth of the time on a question's 20 chunks."""
    found, at = [], low.find(term)
    while at >= 0:
        end = at + len(term)
        if not (at > 0 and _word(low[at - 1])) and not (end < len(low) and _word(low[end])):
            found.append(at)
        at = low.find(term, at + 1)
    return found


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def shortest_span(text: str, terms: Sequence[str]) -> int | None:
    """Characters of the shortest stretch of `text` holding every term (any case), None when one is missing."""
    low = text.lower()
    places = sorted((at, at + len(term), n) for n, term in enumerate(terms) for at in _places(low, term))
    inside: Counter[int] = Counter()
    # the window's places whose end no later place in it reaches, ends falling: its furthest end is the first's (a
    # max over the window per place was quadratic in a chunk's hits)
    furthest: deque[int] = deque()
    best: int | None = None
    first = 0
    for last, (_, end, n) in enumerate(places):
        inside[n] += 1
        while furthest and places[furthest[-1]][1] <= end:
            furthest.pop()
        furthest.append(last)
        # the shortest window ending here: drop places from the left while their term is in it again
        while inside[places[first][2]] > 1:
            inside[places[first][2]] -= 1
            first += 1
        while furthest[0] < first:
            furthest.popleft()
        if len(inside) == len(terms):
            stretch = places[furthest[0]][1] - places[first][0]
            best = stretch if best is None else min(best, stretch)
    return best

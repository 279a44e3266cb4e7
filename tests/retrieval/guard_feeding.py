"""Feeding the repetition guard an answer as a model would: in pieces close to a BPE tokenizer's, one at a time."""

from __future__ import annotations

import re
from collections.abc import Callable

from quart_app.runtimes.repetition import RepetitionGuard

# close to a BPE tokenizer's pieces: a word with the space before it, a run of punctuation, a line end
_PIECE = re.compile(r" ?\w+| ?[^\w\s]+|\s+")
# SmolLM2's pieces of code-like text: a digit each, a line end each ("\n", "\n" for a blank line), a space alone
_SMOLLM2_PIECE = re.compile(r" ?[^\W\d]+|\d| ?[^\w\s]+|\n| ")


def pieces_of(text: str) -> list[str]:
    pieces = _PIECE.findall(text)
    assert "".join(pieces) == text
    return pieces


def smollm2_pieces_of(text: str) -> list[str]:
    pieces = _SMOLLM2_PIECE.findall(text)
    assert "".join(pieces) == text
    return pieces


def guarded(
    text: str, context: str = "", split: Callable[[str], list[str]] = pieces_of
) -> tuple[list[str], RepetitionGuard]:
    """What the guard hands on for `text` fed piece by piece (`split` into them; finish() last) after the prompt
    `context`, and the guard."""
    guard = RepetitionGuard(context)
    handed: list[str] = []
    for piece in split(text):
        handed.append(guard.push(piece))
        if guard.repeat is not None:
            break
    handed.append(guard.finish())
    return handed, guard

"""Code fences an answer leaves open are closed at its end: CommonMark's fences (``` or ~~~, three or more, the closing
one at least as long), fed whole or a character at a time, and as a stream whose pieces are never changed."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from quart_app.runtimes.code_fences import FenceTracker, close_fences, has_text_outside_fence_lines

CLOSINGS = {
    "cut-in-the-code": ("Run:\n```sh\nocc files:scan --all", "\n```"),
    "cut-after-a-line-end": ("```\nphp -v -o\n", "```"),
    "cut-after-the-opening-fence": ("Run:\n```py", "\n```"),
    "closed": ("```python\nx = 1\n```", ""),
    "closed-then-text": ("```python\nx = 1\n```\nThat is all.", ""),
    "two-blocks-the-second-open": ("```\na\n```\nThen:\n```\nb", "\n```"),
    "inline-code": ("Use ```ls``` to list the files.", ""),
    "in-a-list-item": ("1. Install:\n   ```bash\n   apt install x", "\n   ```"),
    "tilde-block-holding-backticks": ("~~~~\ncode\n```\nmore", "\n~~~~"),
    "longer-fence-holding-a-shorter-one": ("````md\n```\ninner\n```\n", "````"),
    "closing-fence-with-text-after-it-does-not-close": ("```\na\n``` not a fence", "\n```"),
    "two-backticks": ("``\nnot a block", ""),
    "no-fences": ("The database dumps are kept for thirty days.", ""),
}


@pytest.mark.parametrize(("text", "closing"), CLOSINGS.values(), ids=CLOSINGS.keys())
def test_the_closing_fence_of_a_block_left_open(text: str, closing: str) -> None:
    whole, by_character = FenceTracker(), FenceTracker()
    whole.feed(text)
    for character in text:
        by_character.feed(character)
    assert whole.closing() == closing
    assert by_character.closing() == closing
    closed = FenceTracker()
    closed.feed(text + closing)
    assert closed.closing() == ""


def test_close_fences_hands_every_piece_on_unchanged_and_adds_the_closing_fence_last() -> None:
    closed: list[bool] = []
    pieces = ["", "Run", ":\n", "``", "`sh\n", "occ", " files:scan"]

    def model() -> Generator[str, None, None]:
        try:
            yield from pieces
        finally:
            closed.append(True)

    assert list(close_fences(model())) == [*pieces, "\n```"]
    assert closed == [True]


def test_close_fences_closes_the_model_stream_when_closed_early() -> None:
    closed: list[bool] = []

    def model() -> Generator[str, None, None]:
        try:
            yield from ["a", "b", "c"]
        finally:
            closed.append(True)

    stream = close_fences(model())
    assert next(stream) == "a"
    stream.close()
    assert closed == [True]


@pytest.mark.parametrize(
    ("answer", "has_text"),
    [("```python\n```", False), ("```\n\n```", False), ("", False), ("```\nls -la\n```", True), ("Hi.", True)],
)
def test_an_answer_of_fence_lines_only_says_nothing(answer: str, has_text: bool) -> None:
    assert has_text_outside_fence_lines(answer) is has_text

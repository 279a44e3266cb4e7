"""The repetition guard on piece sequences: loops are ended after their first copy, the text handed on before the
loop is found is never taken back, and lists, tables and code whose lines look alike pass whole."""

from __future__ import annotations

import logging
import re
from collections.abc import Generator

import pytest

from quart_app.runtimes.repetition import MIN_REPEATED_PIECES, RepetitionGuard, stop_repeating

# close to a BPE tokenizer's pieces: a word with the space before it, a run of punctuation, a line end
_PIECE = re.compile(r" ?\w+| ?[^\w\s]+|\s+")

PARAGRAPH = (
    "The server is configured to allow users to connect to the web server, which runs on port 443. SSH is open to"
    " the admin VPN only.\n\n"
)


def pieces_of(text: str) -> list[str]:
    pieces = _PIECE.findall(text)
    assert "".join(pieces) == text
    return pieces


def guarded(text: str) -> tuple[list[str], RepetitionGuard]:
    """What the guard hands on for `text` fed piece by piece (finish() last), and the guard."""
    guard = RepetitionGuard()
    handed: list[str] = []
    for piece in pieces_of(text):
        handed.append(guard.push(piece))
        if guard.repeat is not None:
            break
    handed.append(guard.finish())
    return handed, guard


@pytest.mark.parametrize(
    ("answer", "once"),
    [
        ("Combine them:" + " -r -o" * 80, "Combine them: -r -o"),  # a short cycle, no line end to cut at
        ("Flags:\n-v - verbose\n" + "-v - port\n" * 40, "Flags:\n-v - verbose\n-v - port\n"),  # "\n" before matches
        ("It depends on the firewall. " + PARAGRAPH * 5, "It depends on the firewall. " + PARAGRAPH),
        # the first copy starts mid-line: " The" after a sentence, "The" after a blank line in the copies
        ("Ports. The server" + PARAGRAPH[len("The server") :] + PARAGRAPH * 4, "Ports. The server" + PARAGRAPH[10:]),
    ],
    ids=["token-cycle", "same-line", "same-paragraph", "paragraph-after-a-sentence"],
)
def test_a_loop_ends_after_its_first_copy(answer: str, once: str) -> None:
    handed, guard = guarded(answer)
    assert guard.repeat is not None
    assert "".join(handed) == once
    assert guard.repeat.seen_at < len(pieces_of(answer))  # found before the end, not at max_tokens


def test_a_loop_is_found_once_its_repeats_are_min_repeated_pieces_long() -> None:
    unit = pieces_of(" -r -o")
    _, guard = guarded("Combine them:" + " -r -o" * 40)
    assert guard.repeat is not None
    assert guard.repeat.seen_at == len(pieces_of("Combine them:")) + len(unit) + MIN_REPEATED_PIECES


def test_text_handed_on_before_the_loop_is_found_is_never_taken_back() -> None:
    """The stream hands each sentence on once it is clear of repeats; what it held back is what the cut may drop."""
    answer = "Ports are listed in the table. The web server listens on 443. " + PARAGRAPH * 4
    handed, guard = guarded(answer)
    assert guard.repeat is not None
    assert handed[0] == ""  # a sentence is held until it ends
    streamed = "".join(handed[:-1])
    assert streamed.startswith("Ports are listed in the table. The web server listens on 443.")
    assert "".join(handed) == "Ports are listed in the table. The web server listens on 443. " + PARAGRAPH


LEGITIMATE = {
    "table": "| port | "
    + " | ".join(f"host{n}" for n in range(14))
    + " |\n"
    + "|---" * 15
    + "|\n"
    + "".join(f"| {port} |" + " yes |" * 14 + "\n" for port in (22, 80, 443, 5432, 8080)),
    "list": "Steps:\n" + "".join(f"- restart the web server on host {n} and check its log\n" for n in range(40)),
    "numbered-same-text": "".join(f"{n}. Open the admin settings.\n" for n in range(1, 12)),
    "code": "```python\n"
    + "def test_add():\n"
    + "".join(f"    assert add({n}, {n}) == {2 * n}\n" for n in range(30))
    + "    values = ["
    + ", ".join("0" for _ in range(20))
    + "]\n"
    + "class A:\n    pass\n\n\nclass B:\n    pass\n\n\nclass C:\n    pass\n```\n"
    + "}\n" * 6
    + "=" * 80
    + "\n",
}


@pytest.mark.parametrize("answer", LEGITIMATE.values(), ids=LEGITIMATE.keys())
def test_lists_tables_and_code_whose_lines_look_alike_pass_whole(answer: str) -> None:
    handed, guard = guarded(answer)
    assert guard.repeat is None
    assert "".join(handed) == answer


def test_stop_repeating_closes_the_model_stream_and_logs_one_line_without_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[bool] = []

    def model() -> Generator[str, None, None]:
        try:
            yield ""  # a prompt batch evaluated: passed on as a point to stop at
            yield from pieces_of("Flags:\n-v - verbose\n" + "-v - port\n" * 100)
        finally:
            closed.append(True)

    with caplog.at_level(logging.INFO, logger="quart_app.runtimes.repetition"):
        handed = list(stop_repeating(model(), "llama"))
    assert handed[0] == ""
    assert "".join(handed) == "Flags:\n-v - verbose\n-v - port\n"
    assert closed == [True]  # the model stopped generating, not only the text cut
    [record] = caplog.records
    assert record.levelno == logging.INFO and "repeating itself" in record.getMessage()
    assert "port" not in record.getMessage() and "verbose" not in record.getMessage()


def test_stop_repeating_passes_an_answer_without_repeats_whole() -> None:
    answer = "The database dumps are kept for thirty days before they are pruned."
    assert "".join(stop_repeating((piece for piece in pieces_of(answer)), "llama")) == answer

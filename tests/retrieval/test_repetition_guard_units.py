"""The repetition guard on units of three and four lines counted on together ("Host: server-N" / "Port: 80N" /
"Role: web", and on): a counter run on beyond the prompt's numbers ends after its first unit, a document's own list
gone through unit by unit passes whole, and the same list run on past the document keeps the units it holds."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from guard_feeding import guarded, smollm2_pieces_of

# each unit: its lines for server n, a line the same in every unit among them
UNITS: dict[str, Callable[[int], str]] = {
    "three-lines": lambda n: f"Host: server-{n}\nPort: {8000 + n}\nRole: web\n\n",
    "four-lines": lambda n: f"## server-{n}\nHost: server-{n}.example.com\nPort: {8000 + n}\nRole: web\n\n",
    "three-lines-one-a-list-item": lambda n: f"- Host: server-{n}\n  Port: {8000 + n}\n  Role: web\n",
    "four-comment-lines": lambda n: f"# server-{n}\n# port {8000 + n}\n# role: web\n# ok\n",
}
INTRO = "Add them to the inventory:\n\n"
# the document writes its 40 servers another way than the answer's units
SERVERS = "Servers: " + "; ".join(f"server-{n} (web) listens on port {8000 + n}" for n in range(1, 41)) + "."


def units(unit: Callable[[int], str], numbers: range) -> str:
    return "".join(unit(n) for n in numbers)


@pytest.mark.parametrize("unit", UNITS.values(), ids=UNITS.keys())
def test_a_counter_in_units_of_several_lines_ends_after_the_first_unit(unit: Callable[[int], str]) -> None:
    """Before: only units of one and two lines were followed; a unit of three or four, each line unlike the next and
    no copy a near one, ran on to max_tokens."""
    answer = INTRO + units(unit, range(1, 50))
    handed, guard = guarded(answer, "Context: the web servers answer on their own ports.\nQuestion: list them")
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed).rstrip("\n") == INTRO + unit(1).rstrip("\n")


@pytest.mark.parametrize("unit", UNITS.values(), ids=UNITS.keys())
def test_units_of_several_lines_going_through_a_documents_servers_pass_whole(unit: Callable[[int], str]) -> None:
    answer = INTRO + units(unit, range(1, 41))
    handed, guard = guarded(answer, "Context: " + SERVERS + "\nQuestion: list them")
    assert guard.repeat is None
    assert "".join(handed) == answer


@pytest.mark.parametrize("unit", UNITS.values(), ids=UNITS.keys())
def test_units_of_several_lines_run_on_past_the_document_keep_the_units_it_holds(unit: Callable[[int], str]) -> None:
    answer = INTRO + units(unit, range(1, 70))
    handed, guard = guarded(answer, "Context: " + SERVERS + "\nQuestion: list them")
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed).rstrip("\n") == (INTRO + units(unit, range(1, 41))).rstrip("\n")


def test_units_of_several_lines_in_smollm2_pieces_end_after_the_first_unit() -> None:
    """A digit a piece, a line end a piece: the units are followed line by line all the same."""
    unit = UNITS["three-lines"]
    answer = INTRO + units(unit, range(1, 50))
    context = "Context: the web servers answer on their own ports.\nQuestion: list them"
    handed, guard = guarded(answer, context, smollm2_pieces_of)
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed).rstrip("\n") == INTRO + unit(1).rstrip("\n")


def test_units_of_three_lines_whose_last_lines_say_different_things_pass_whole() -> None:
    """The headings and the ports counted up, what each says under them its own."""
    notes = ["Restart nginx.", "Renew the TLS certificate.", "Rotate the logs.", "Check the disk.", "Update PHP."]
    notes += ["Move the backups.", "Add swap space."]
    answer = "".join(f"Server {n}:\nPort {8000 + n}\n{note}\n\n" for n, note in enumerate(notes, 1))
    handed, guard = guarded(answer, "Context: seven servers need care.\nQuestion: what to do on each?")
    assert guard.repeat is None
    assert "".join(handed) == answer


def test_units_whose_lines_each_repeat_their_own_text_end_after_the_first_unit() -> None:
    """Numbered on, two items of the same texts in turn: no item alike the one before it, no copy verbatim."""
    answer = "".join(f"{2 * n + 1}. Restart the server:\n{2 * n + 2}. Check the logs:\n" for n in range(20))
    handed, guard = guarded(answer, "Context: restart the servers after the upgrade.")
    assert guard.repeat is not None
    assert "".join(handed) == "1. Restart the server:\n2. Check the logs:\n"


def test_a_line_written_again_and_again_is_cut_by_the_verbatim_rule_after_one_copy() -> None:
    """Plain lines without a number are a unit's lines too, but the same one again is no unit of two or more: the
    verbatim rule keeps one copy, where a unit of two would keep two."""
    answer = "Flags:\n-v - verbose\n" + "-v - port\n" * 40
    handed, guard = guarded(answer)
    assert guard.repeat is not None and not guard.repeat.alike
    assert "".join(handed) == "Flags:\n-v - verbose\n-v - port\n"

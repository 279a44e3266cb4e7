"""The repetition guard on counters: a counter run on beyond the prompt's numbers ends after its first item whatever its
step, and a list that goes through a document's own numbers (its 40 hosts, every second or tenth) passes whole."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from guard_feeding import guarded, smollm2_pieces_of

# a document with a 100-row table: every number from 1 to 100 stands somewhere in the prompt, never beside "server"
RACKS = "| row | rack | owner |\n|---|---|---|\n" + "".join(
    f"| Row {n} | R{n % 7} | team {'abcde'[n % 5]} |\n" for n in range(1, 101)
)


@pytest.mark.parametrize("step", [2, 10], ids=["every-second", "every-tenth"])
def test_a_counter_by_another_step_than_one_ends_after_the_first_item(step: int) -> None:
    """Before: a counter's next number counted as the prompt's only beside a word of the item when one above the
    last; by another step, anywhere in the prompt: "N. Restart server 2N." ran on to server 100, the table's last."""
    prompt = f"Context: {RACKS}\nQuestion: Give numbered steps to restart the servers from server {step} in {step}s."
    answer = "".join(f"{n}. Restart server {step * n}.\n" for n in range(1, 60))
    handed, guard = guarded(answer, prompt)
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed) == f"1. Restart server {step}.\n"


# a document's 40 hosts numbered by another step than one, each beside the word the answer writes with it
EVEN_HOSTS = "The web servers: " + ", ".join(f"host {2 * n}" for n in range(40)) + ". Restart each and check its log."
PORTS = "Ports: " + "; ".join(f"server {n} listens on port {8000 + 10 * n}" for n in range(1, 41)) + "."
STEPPED_LISTS = {
    "every-second-host": (
        EVEN_HOSTS,
        "".join(f"- restart the web server on host {2 * n} and check its log\n" for n in range(40)),
    ),
    "ports-ten-apart": (PORTS, "".join(f"{n}. server {n}: port {8000 + 10 * n}\n" for n in range(1, 41))),
}


@pytest.mark.parametrize(("document", "answer"), STEPPED_LISTS.values(), ids=STEPPED_LISTS.keys())
def test_a_document_list_gone_through_by_another_step_passes_whole(document: str, answer: str) -> None:
    handed, guard = guarded(answer, "Context: " + document + "\nQuestion: which hosts?")
    assert guard.repeat is None
    assert "".join(handed) == answer


def test_a_counter_by_another_step_run_on_past_the_document_keeps_the_items_it_holds() -> None:
    """host 0 to host 78 are the document's; host 80 on are the model's."""
    answer = "".join(f"- restart the web server on host {2 * n} and check its log\n" for n in range(60))
    handed, guard = guarded(answer, "Context: " + EVEN_HOSTS + "\nQuestion: which hosts?")
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed) == answer[: answer.index("- restart the web server on host 80 ")]


# a document's 40 servers, each with its port: an answer goes through them writing each pair its own way
SERVER_PORTS = "Servers: " + "; ".join(f"server-{n} on port {8000 + n}" for n in range(1, 41)) + "."


def test_a_document_list_with_two_counters_passes_whole_when_one_stands_beside_its_word() -> None:
    """In "ssh -p 8002 admin@server-2", server-2 is the document's, and so is 8002, though beside "port" there, not "p".
    Before: every number counted on had to stand beside a word of the item, so the list ended after its first item."""
    answer = "".join(f"- ssh -p {8000 + n} admin@server-{n} sudo systemctl restart nginx\n" for n in range(1, 41))
    handed, guard = guarded(answer, "Context: " + SERVER_PORTS + "\nQuestion: restart nginx on each server")
    assert guard.repeat is None
    assert "".join(handed) == answer


def test_a_counter_with_two_numbers_run_on_past_the_document_keeps_the_items_it_holds() -> None:
    answer = "".join(f"- ssh -p {8000 + n} admin@server-{n} sudo systemctl restart nginx\n" for n in range(1, 60))
    handed, guard = guarded(answer, "Context: " + SERVER_PORTS + "\nQuestion: restart nginx on each server")
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed) == answer[: answer.index("- ssh -p 8041 ")]


# counters written as plain lines, outside any list or code block, each line changing in several places
UNFENCED: dict[str, Callable[[int], str]] = {
    "ssh-a-server": lambda n: f"ssh -p {8000 + n} admin@server-{n} sudo systemctl restart nginx\n",
    "server-and-port": lambda n: f"server-{n} port {8000 + n}\n",
    "ports-by-tens": lambda n: f"curl http://server-{n}:{8000 + 10 * n}/status\n",
}


@pytest.mark.parametrize("line", UNFENCED.values(), ids=UNFENCED.keys())
def test_a_counter_written_as_plain_lines_ends_after_the_first(line: Callable[[int], str]) -> None:
    """Before: only list items and a code block's numbered and comment lines were items; plain lines changing in two
    places a line are no near copies either (one changed piece a unit), so such a run went on to max_tokens."""
    answer = "To restart them, run:\n" + "".join(line(n) for n in range(1, 50))
    handed, guard = guarded(answer, "Context: the web servers answer on their own ports.\nQuestion: restart them")
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed).rstrip("\n") == "To restart them, run:\n" + line(1).rstrip("\n")


@pytest.mark.parametrize("line", UNFENCED.values(), ids=UNFENCED.keys())
def test_plain_lines_going_through_a_documents_servers_pass_whole(line: Callable[[int], str]) -> None:
    document = "Servers: " + "; ".join(line(n).strip() for n in range(1, 41)) + "."
    answer = "To restart them, run:\n" + "".join(line(n) for n in range(1, 41))
    handed, guard = guarded(answer, "Context: " + document + "\nQuestion: restart them")
    assert guard.repeat is None
    assert "".join(handed) == answer


def test_plain_lines_run_on_past_the_document_keep_the_lines_it_holds() -> None:
    line = UNFENCED["ssh-a-server"]
    answer = "".join(line(n) for n in range(1, 60))
    handed, guard = guarded(answer, "Context: " + SERVER_PORTS + "\nQuestion: restart nginx on each server")
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed) == "".join(line(n) for n in range(1, 41))


def test_plain_lines_with_numbers_that_say_different_things_pass_whole() -> None:
    ports = [(443, "web", "everyone"), (5432, "PostgreSQL", "app servers"), (22, "SSH", "admins"), (25, "mail", "all")]
    answer = "".join(f"Port {port}: {service}, open to {whom}\n" for port, service, whom in ports)
    handed, guard = guarded(answer, "Context: the firewall table.\nQuestion: which ports are open?")
    assert guard.repeat is None
    assert "".join(handed) == answer


def server_units(numbers: list[int]) -> str:
    return "".join(f'# server-{n}\necho "Server-{n}: 8001"\n\n' for n in numbers)


def test_a_counter_in_units_of_two_lines_ends_after_the_units_the_prompt_holds() -> None:
    """SmolLM2 asked for "a bash loop over server-1 to server-5 on port 8001 to 8005, without a code block" wrote
    units of two lines, each line unlike the next, the server counted on to server-10000000000 (341 tokens; it ended
    only as the zeros made a verbatim repeat): server-1 and server-5 are the prompt's, server-10 on are not."""
    question = "Question: Write a bash loop over server-1 to server-5 on port 8001 to 8005, without a code block."
    answer = "#!/bin/bash\n\n" + server_units([1, 5, *(10**power for power in range(1, 11))])
    # as SmolLM2 wrote it: "#!/", "bin", "/", "bash", "\n", "\n", "#", " server", "-", "1", "\n", "echo", ' "', ...
    assert smollm2_pieces_of(answer)[4:13] == ["\n", "\n", "#", " server", "-", "1", "\n", "echo", ' "']
    context = "Context: the web servers answer on their own ports.\n" + question
    handed, guard = guarded(answer, context, smollm2_pieces_of)
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed).rstrip("\n") == "#!/bin/bash\n\n" + server_units([1, 5]).rstrip("\n")


def test_units_of_two_lines_going_through_a_documents_servers_pass_whole() -> None:
    answer = "".join(f"# server-{n}\nssh -p {8000 + n} admin@server-{n} sudo reboot\n\n" for n in range(1, 41))
    handed, guard = guarded(answer, "Context: " + SERVER_PORTS + "\nQuestion: reboot each server")
    assert guard.repeat is None
    assert "".join(handed) == answer


def test_units_whose_second_lines_say_different_things_pass_whole() -> None:
    """The headings alike, counted up; what each says under its heading is its own."""
    notes = ["Restart nginx.", "Renew the TLS certificate.", "Rotate the logs.", "Check the disk.", "Update PHP."]
    answer = "".join(f"Server {n}:\n{note}\n\n" for n, note in enumerate(notes, 1))
    handed, guard = guarded(answer, "Context: five servers need care.\nQuestion: what to do on each?")
    assert guard.repeat is None
    assert "".join(handed) == answer

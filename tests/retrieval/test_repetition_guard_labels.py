"""The repetition guard on counters whose numbers the document writes beside another form of the same word: "ports
8000, 8002", "Port: 8002", "servers 1-40", "host-12", "host12", "entries 1-40" for an answer's "port 8002", "server 12",
"host 12", "entry 12" (and back). A list going through the document's numbers passes whole; the same list run on past
them is still cut where the document ends."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from guard_feeding import guarded

# each form: the document (its numbers 1..40 written its way), the answer's item for number n, the question
FORMS: dict[str, tuple[str, Callable[[int], str]]] = {
    # a plural word, the numbers after it separated by commas and "and"
    "plural-list": (
        "The web tier listens on ports " + ", ".join(str(8000 + 2 * n) for n in range(1, 40)) + " and 8080.",
        lambda n: f"- port {8000 + 2 * n}: open it to the load balancer\n",
    ),
    # one label per number, a colon between and a capital
    "label-colon": (
        "".join(f"Service web-{chr(64 + n % 26)}{n}\nPort: {8000 + 2 * n}\n" for n in range(1, 41)),
        lambda n: f"- port {8000 + 2 * n}: open it to the load balancer\n",
    ),
    # a range after the plural: the numbers between are nowhere in the prompt
    "plural-range": ("Servers 1-40 run the web tier.", lambda n: f"{n}. Restart nginx on server {n}.\n"),
    # a plural in -es, a range written in words
    "es-plural-range": ("Switches 1 to 40 sit in rack B.", lambda n: f"- reboot switch {n} and check its uplink\n"),
    # the document joins word and number with a hyphen, the answer writes a space
    "hyphen-to-space": (
        "Hosts: " + ", ".join(f"host-{n}" for n in range(1, 41)) + ".",
        lambda n: f"- restart the web server on host {n} and check its log\n",
    ),
    # the document writes a space, the answer a hyphen
    "space-to-hyphen": (
        "Hosts: " + ", ".join(f"host {n}" for n in range(1, 41)) + ".",
        lambda n: f"- restart the web server on host-{n} and check its log\n",
    ),
    # a plural in -ies, a range written in words; the answer writes the singular in -y
    "ies-plural-range": ("Entries 1 through 40 record failed logins.", lambda n: f"- check entry {n} for the user\n"),
    # the document writes the singular in -y, the answer the plural in -ies
    "y-to-ies": (
        "Slow log: " + "; ".join(f"query {n} took {900 + n} ms" for n in range(1, 41)) + ".",
        lambda n: f"- queries {n}: check its plan\n",
    ),
    # the document glues the number to its word, the answer writes a space or a hyphen between
    "glued-to-space": (
        "Hosts: " + ", ".join(f"host{n}" for n in range(1, 41)) + ".",
        lambda n: f"- restart the web server on host {n} and check its log\n",
    ),
    "glued-to-hyphen": (
        "Hosts: " + ", ".join(f"host{n}" for n in range(1, 41)) + ".",
        lambda n: f"- restart the web server on host-{n} and check its log\n",
    ),
    # the document writes a space or a hyphen, the answer glues the number to its word
    "space-to-glued": (
        "Hosts: " + ", ".join(f"host {n}" for n in range(1, 41)) + ".",
        lambda n: f"- restart the web server on host{n} and check its log\n",
    ),
    # the document joins word and number with "_", as in names, the answer writes a space
    "underscore-to-space": (
        "Hosts: " + ", ".join(f"host_{n}" for n in range(1, 41)) + ".",
        lambda n: f"- restart the web server on host {n} and check its log\n",
    ),
    "hyphen-to-glued": (
        "Hosts: " + ", ".join(f"host-{n}" for n in range(1, 41)) + ".",
        lambda n: f"- restart the web server on host{n} and check its log\n",
    ),
}


@pytest.mark.parametrize(("document", "item"), FORMS.values(), ids=FORMS.keys())
def test_a_document_list_in_another_form_of_its_word_passes_whole(document: str, item: Callable[[int], str]) -> None:
    """Before: a counter's next number counted as the prompt's only beside the very word of the item ("port 8002"),
    so each of these lists ended after its first item."""
    answer = "".join(item(n) for n in range(1, 41))
    handed, guard = guarded(answer, "Context: " + document + "\nQuestion: go through them all.")
    assert guard.repeat is None
    assert "".join(handed) == answer


@pytest.mark.parametrize(("document", "item"), FORMS.values(), ids=FORMS.keys())
def test_a_list_in_another_form_run_on_past_the_document_keeps_the_items_it_holds(
    document: str, item: Callable[[int], str]
) -> None:
    answer = "".join(item(n) for n in range(1, 70))
    handed, guard = guarded(answer, "Context: " + document + "\nQuestion: go through them all.")
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed) == "".join(item(n) for n in range(1, 41))


NOT_LABELS: dict[str, tuple[str, Callable[[int], str], int]] = {
    # a range this wide names a class of ports, not a list to go through
    "wide-range": ("Ports 1024-65535 are open to the VPN.", lambda n: f"- open port {n} to the VPN\n", 1024),
    # a sentence's end between word and number: the numbers after it are racks
    "sentence-end": ("Restart the server. 12, 13, 14 and 15 are its racks.", lambda n: f"- restart server {n}\n", 12),
    # a comma between word and number separates two items
    "comma": ("Check the server, 12, 13, 14 and 15 are its racks.", lambda n: f"- restart server {n}\n", 12),
    # a number after "and" or "," that counts the word after it: 13 is a count of users, not a server
    "and-a-count": ("Server 12 and 13 users share rack B.", lambda n: f"- restart server {n}\n", 12),
    "comma-a-count": ("Server 12, 13 users and 2 admins share rack B.", lambda n: f"- restart server {n}\n", 12),
}


@pytest.mark.parametrize(("document", "item", "first"), NOT_LABELS.values(), ids=NOT_LABELS.keys())
def test_a_counter_over_numbers_not_written_after_its_word_ends_after_the_first(
    document: str, item: Callable[[int], str], first: int
) -> None:
    answer = "".join(item(n) for n in range(first, first + 50))
    handed, guard = guarded(answer, "Context: " + document + "\nQuestion: restart them")
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed) == item(first)

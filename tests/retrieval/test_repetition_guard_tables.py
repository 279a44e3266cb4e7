"""The repetition guard on markdown tables: rows alike in their other cells with a cell counting on past what the prompt
holds ("| server-1 | 8001 | web |", "| server-2 | 8002 | web |", ... to max_tokens, as SmolLM2 wrote an inventory)
are cut at a row boundary, the header and separator kept; a document's own table gone through row by row, and a table
whose rows differ in text, pass whole."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from guard_feeding import guarded, smollm2_pieces_of

HEADER = "| Host | Port | Role |\n|---|---|---|\n"
INTRO = "Here is the inventory:\n\n"
# the document writes its 40 servers another way than the answer's rows
SERVERS = "Servers: " + "; ".join(f"server-{n} (web) listens on port {8000 + n}" for n in range(1, 41)) + "."


def rows(numbers: range) -> str:
    return "".join(f"| server-{n} | {8000 + n} | web |\n" for n in numbers)


def test_a_documents_table_of_40_hosts_quoted_row_by_row_passes_whole() -> None:
    answer = INTRO + HEADER + rows(range(1, 41))
    handed, guard = guarded(answer, "Context: " + SERVERS + "\nQuestion: list the hosts as a table")
    assert guard.repeat is None
    assert "".join(handed) == answer


@pytest.mark.parametrize("split", [None, smollm2_pieces_of], ids=["bpe-pieces", "smollm2-pieces"])
def test_a_table_run_on_past_the_document_is_cut_after_its_40_rows(split: Callable[[str], list[str]] | None) -> None:
    """Before: table rows were structure, never items; the rows counted on to max_tokens."""
    answer = INTRO + HEADER + rows(range(1, 70))
    context = "Context: " + SERVERS + "\nQuestion: list the hosts as a table"
    handed, guard = guarded(answer, context) if split is None else guarded(answer, context, split)
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed) == INTRO + HEADER + rows(range(1, 41))


def test_a_table_whose_first_cell_counts_on_with_no_prompt_behind_it_ends_after_the_first_row() -> None:
    answer = INTRO + HEADER + rows(range(1, 70))
    handed, guard = guarded(answer, "Context: the web servers answer on their own ports.\nQuestion: list them")
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed) == INTRO + HEADER + rows(range(1, 2))


def test_a_counting_table_without_a_header_ends_after_the_first_row() -> None:
    answer = "".join(f"| {n} | web | everyone |\n" for n in range(80))
    handed, guard = guarded(answer)
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed) == "| 0 | web | everyone |\n"


# 60 services of a document, each row its own words and numbers
SERVICES = [
    (f"{name}-{site}", port, owner)
    for site, (owner, base) in enumerate([("ops", 100), ("dev", 200), ("qa", 300)], 1)
    for name, port in [
        ("nginx", 443), ("redis", 6379), ("postgres", 5432), ("cron", 0), ("postfix", 25), ("dovecot", 993),
        ("ssh", 22), ("ldap", 389), ("samba", 445), ("ntp", 123), ("dns", 53), ("vpn", 1194), ("mysql", 3306),
        ("mongo", 27017), ("kafka", 9092), ("zookeeper", 2181), ("rabbit", 5672), ("memcached", 11211),
        ("elastic", 9200), ("grafana", base + 3000),
    ]
]  # fmt: skip


def test_a_table_of_real_distinct_rows_passes_whole() -> None:
    document = "Services: " + "; ".join(f"{name} on port {port} run by {owner}" for name, port, owner in SERVICES)
    answer = "| Service | Port | Owner |\n|---|---|---|\n" + "".join(
        f"| {name} | {port} | {owner} |\n" for name, port, owner in SERVICES
    )
    handed, guard = guarded(answer, "Context: " + document + ".\nQuestion: list the services as a table")
    assert guard.repeat is None
    assert "".join(handed) == answer


def test_a_table_whose_rows_differ_in_a_number_that_does_not_count_passes_whole() -> None:
    """Alike in their other cells, but 22, 80, 443, 5432, 8080 is no counter's run: a real table, even without a
    document saying so."""
    answer = "| port | open |\n|---|---|\n" + "".join(
        f"| {port} | yes |\n" for port in (22, 25, 53, 80, 110, 143, 443, 465, 587, 993, 995, 3306, 5432, 8080)
    )
    handed, guard = guarded(answer)
    assert guard.repeat is None
    assert "".join(handed) == answer

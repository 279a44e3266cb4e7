"""The repetition guard on piece sequences: loops are ended after their first copy, the text handed on before the
loop is found is never taken back, and lists, tables and code whose lines look alike pass whole."""

from __future__ import annotations

import logging
from collections.abc import Generator

import pytest
from guard_feeding import guarded, pieces_of

from quart_app.runtimes.repetition import MIN_REPEATED_PIECES, NEAR_MIN_COPIES, stop_repeating

PARAGRAPH = (
    "The server is configured to allow users to connect to the web server, which runs on port 443. SSH is open to"
    " the admin VPN only.\n\n"
)


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


NEAR_PARAGRAPH = (
    "The server is configured to allow users to connect to the {} server, which runs on port 443. SSH is open to the"
    " admin VPN only.\n\n"
)
STEP = "Step {}: Open the admin settings, select the Security section and restart the web server on the host.\n"
NOTE = "Note: The server is running on port {}, which is the default port for SSH on this host.\n"
SERVERS = ["web", "mail", "file", "chat", "backup", "proxy", "office", "wiki"]


@pytest.mark.parametrize(
    ("answer", "once"),
    [
        (
            "It depends on the firewall. " + "".join(NEAR_PARAGRAPH.format(server) for server in SERVERS),
            "It depends on the firewall. " + NEAR_PARAGRAPH.format("web"),
        ),
        ("To enable it:\n" + "".join(STEP.format(n) for n in range(1, 15)), "To enable it:\n" + STEP.format(1)),
        ("Ports:\n" + "".join(NOTE.format(port) for port in range(22, 40)), "Ports:\n" + NOTE.format(22)),
    ],
    ids=["paragraph-one-word-changed", "steps-renumbered", "line-with-a-number-counting-up"],
)
def test_a_loop_of_near_copies_ends_after_its_first_copy(answer: str, once: str) -> None:
    """Copies that differ in one piece each never line up verbatim: before, they ran on to max_tokens."""
    handed, guard = guarded(answer)
    assert guard.repeat is not None and guard.repeat.near
    assert "".join(handed).rstrip("\n") == once.rstrip("\n")  # cut at the line's end or at its sentence's
    # found at the fourth copy (NEAR_MIN_COPIES after the first), long before the end
    assert guard.repeat.seen_at <= len(pieces_of(once)) + (NEAR_MIN_COPIES + 1) * guard.repeat.period


RESTART = "- {}. Restart the server:\n"
OPEN_SETTINGS = "{}. Open the admin settings.\n"


def numbered(item: str, count: int) -> str:
    return "".join(item.format(n) for n in range(1, count + 1))


@pytest.mark.parametrize(
    ("intro", "item"), [("To restart each server:\n", RESTART), ("", OPEN_SETTINGS)], ids=["bulleted", "plain"]
)
def test_numbered_items_of_the_same_text_end_after_the_first(intro: str, item: str) -> None:
    """SmolLM2 asked for steps per server of the firewall table counted "- N. Restart the server:" to 45 (units of 8-10
    tokens, too short for the near-copy rule): found at the item NEAR_MIN_COPIES after the first, the rest held."""
    handed, guard = guarded(intro + numbered(item, 45))
    assert guard.repeat is not None and guard.repeat.numbered
    assert "".join(handed) == intro + item.format(1)
    assert guard.repeat.seen_at == len(pieces_of(intro + numbered(item, NEAR_MIN_COPIES + 1)))


def test_numbered_items_of_the_same_text_pass_as_often_as_the_prompt_holds_them() -> None:
    """A document's own list of that shape is quoted whole; one item more than it holds is a loop."""
    document = "Context: the runbook says\n" + numbered(OPEN_SETTINGS, 11) + "Question: what are the steps?"
    answer = numbered(OPEN_SETTINGS, 11)
    handed, guard = guarded(answer, document)
    assert guard.repeat is None and "".join(handed) == answer
    handed, guard = guarded(numbered(OPEN_SETTINGS, 20), document)
    assert guard.repeat is not None and "".join(handed) == answer
    assert guard.repeat.seen_at == len(pieces_of(numbered(OPEN_SETTINGS, 12)))


def test_numbered_items_quoted_less_often_than_the_copies_that_make_a_loop_keep_those_quoted() -> None:
    document = "Context: " + numbered(OPEN_SETTINGS, 2)
    handed, guard = guarded(numbered(OPEN_SETTINGS, 20), document)
    assert guard.repeat is not None and "".join(handed) == numbered(OPEN_SETTINGS, 2)
    assert guard.repeat.seen_at == len(pieces_of(numbered(OPEN_SETTINGS, NEAR_MIN_COPIES + 1)))


def test_numbered_items_of_the_same_text_are_handed_on_once_the_run_breaks() -> None:
    """Held while they may still become a loop; two or three alike among other items are a list."""
    answer = "Steps:\n" + numbered(RESTART, NEAR_MIN_COPIES) + "- 4. Check the log:\n- 5. Done.\n"
    handed, guard = guarded(answer)
    assert guard.repeat is None and "".join(handed) == answer
    third_item_ends = len(pieces_of("Steps:\n" + numbered(RESTART, NEAR_MIN_COPIES)))
    assert "".join(handed[:third_item_ends]) == "Steps:\n" + RESTART.format(1)  # the copies held ...
    # ... and handed on once the line after the run, different, is followed by another
    assert "log:\n" in "".join(handed[: third_item_ends + len(pieces_of("- 4. Check the log:\n- 5. Done"))])


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
    "numbered-different-items": "To move the data directory:\n"
    + "".join(
        f"{n}. {step}\n"
        for n, step in enumerate(
            [
                "Put the server in maintenance mode with occ maintenance:mode --on so that no user writes meanwhile.",
                "Stop the web server and the cron job so that nothing opens a file in the old data directory.",
                "Copy the data directory to the new disk with rsync -a, keeping the owner, the group and the modes.",
                "Change datadirectory in config/config.php to the new path and check the web server user can read it.",
                "Update the oc_storages table where the id still names the old path, or the files of all users vanish.",
                "Start the web server and the cron job again and turn maintenance mode off with occ maintenance:mode.",
                "Run occ files:scan --all to check that every file of every user is found in the new data directory.",
            ],
            1,
        )
    ),
    "csv": "date,time,user,action,ip,result\n"
    + "".join(
        f"2026-12-0{1 + n // 8},08:{10 + 3 * n:02d}:{(17 * n) % 60:02d},{user},{action},10.0.1.{20 + n % 3},{result}\n"
        for n, (user, action, result) in enumerate(
            [("alice", "login", "ok"), ("alice", "upload", "ok"), ("bob", "login", "failed"), ("bob", "login", "ok")]
            + [("carol", "share", "ok"), ("alice", "download", "ok"), ("bob", "logout", "ok"), ("dave", "login", "ok")]
            + [("dave", "login", "failed")] * 4
            + [("carol", "upload", "ok"), ("carol", "logout", "ok"), ("dave", "logout", "ok")]
        )
    ),
    "csv-a-row-a-minute": "time,host,check,value,unit,status\n"
    + "".join(f"2026-12-01 08:{m:02d}:00,web01.example.org,disk usage of /var/www,71,percent,ok\n" for m in range(20)),
    # two near copies of a sentence long enough to loop: parallel prose, not yet a loop
    "three-parallel-sentences": "".join(
        f"The {server} server accepts connections from every address on the office network and from the admin VPN"
        " of the firm. "
        for server in ("web", "mail", "file")
    ),
}


@pytest.mark.parametrize("answer", LEGITIMATE.values(), ids=LEGITIMATE.keys())
def test_lists_tables_and_code_whose_lines_look_alike_pass_whole(answer: str) -> None:
    handed, guard = guarded(answer)
    assert guard.repeat is None
    assert "".join(handed) == answer


HOSTS = "The web servers: " + ", ".join(f"host {n}" for n in range(40)) + ". Restart each and check its log."
HOST_NAMES = "".join(f"- host-{n:02d}.example.org\n" for n in range(1, 41))
CHANGELOG = (
    "## 4.1.0 - 2026-11-30\n### Fixed\n"
    + "".join(
        f"- Fix the crash when a file {case} is uploaded over WebDAV (#{issue})\n"
        for case, issue in [
            ("larger than 2 GB", 1234),
            ("with an empty name", 1240),
            ("with a very long name", 1251),
            ("in a shared folder", 1263),
            ("in an encrypted folder", 1270),
        ]
    )
    + "- Bump nextcloud/coding-standard from 1.1.0 to 1.1.1 (#1281)\n"
    + "- Bump phpunit/phpunit from 9.6.3 to 9.6.4 (#1282)\n"
    + "".join(f"- Update translations (#{issue})\n" for issue in range(1290, 1296))
)
# lists whose items differ in a number only: a document's, quoted or gone through item by item (the prompt is given)
QUOTED = {
    "list": (
        HOSTS,
        "Steps:\n" + "".join(f"- restart the web server on host {n} and check its log\n" for n in range(40)),
    ),
    # items as long as a list item gets (19 pieces), one number apart
    "list-of-long-items": (
        HOSTS,
        "".join(
            f"- restart the web server on host {n} and check its log for errors after the upgrade tonight\n"
            for n in range(20)
        ),
    ),
    # numbered as the answer numbers them, not as the document bullets them
    "numbered-hosts": (HOST_NAMES, "Hosts:\n" + "".join(f"{n}. host-{n:02d}.example.org\n" for n in range(1, 41))),
    "changelog": (CHANGELOG, CHANGELOG),
}


@pytest.mark.parametrize(("document", "answer"), QUOTED.values(), ids=QUOTED.keys())
def test_lists_whose_items_differ_in_what_the_prompt_holds_pass_whole(document: str, answer: str) -> None:
    handed, guard = guarded(answer, "Context: " + document + "\nQuestion: which hosts?")
    assert guard.repeat is None
    assert "".join(handed) == answer


@pytest.mark.parametrize(
    ("answer", "once"),
    [
        ("To restart them:\n" + "".join(f"{n}. Restart server {n}\n" for n in range(1, 46)), "1. Restart server 1"),
        (
            "Check:\n- Check the log file.\n"
            + "".join(f"- Check the log files{' again' * n}.\n" for n in range(1, 30)),
            "- Check the log files again.",
        ),
        ("Steps:\n" + "".join(f"{n}.\n" for n in range(1, 125)), "1."),  # SmolLM2 asked for steps per log file
        ("Here:\n" + "".join(f"* {n}. 1.8.{n}\n" for n in range(1, 40)), "* 1. 1.8.1"),
    ],
    ids=["counter", "word-repeated", "empty-items", "version-counting-up"],
)
def test_list_items_alike_end_after_the_first(answer: str, once: str) -> None:
    """Items a counter or a repeated word apart are no list: before, they ran on to max_tokens."""
    handed, guard = guarded(answer, "Context: restart the servers and check the log files.")
    assert guard.repeat is not None
    assert "".join(handed).rstrip("\n").endswith("\n" + once)
    assert guard.repeat.seen_at < len(pieces_of(answer)) / 4


def test_a_document_list_quoted_and_counted_on_keeps_the_items_the_prompt_holds() -> None:
    """host-01..host-12 are the document's; host-13 on are the model's."""
    document = "Context: " + HOST_NAMES[: HOST_NAMES.index("- host-13")]
    answer = "".join(f"{n}. host-{n:02d}.example.org\n" for n in range(1, 41))
    handed, guard = guarded(answer, document)
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed) == "".join(f"{n}. host-{n:02d}.example.org\n" for n in range(1, 13))


# a document with a 100-row table: every number from 1 to 100 stands somewhere in the prompt
ROWS_TABLE = "| row | rack | owner |\n|---|---|---|\n" + "".join(
    f"| Row {n} | R{n % 7} | team {'abcde'[n % 5]} |\n" for n in range(1, 101)
)


def test_a_counter_whose_numbers_a_table_in_the_prompt_holds_ends_after_the_first() -> None:
    """SmolLM2 asked to restart server 1 to server 10 with such a table among the documents counted "N. Restart
    server N+9." to 483 tokens: each next number was in the prompt, though never beside "server"."""
    prompt = "Context: " + ROWS_TABLE + "\nQuestion: Give numbered steps to restart server 1 to server 10."
    answer = "".join(f"{n}. Restart server {n + 9}.\n" for n in range(1, 60))
    handed, guard = guarded(answer, prompt)
    assert guard.repeat is not None and guard.repeat.alike
    assert "".join(handed) == "1. Restart server 10.\n"


# the prompt's own numbers: a document's rows gone through in order (as its 40 hosts are), or its ports listed (no
# counter); a document's 100 rows listed in order are the same shape as its 40 hosts, so they pass too
PROMPT_NUMBERS = {
    "rows-of-the-table": (ROWS_TABLE, "".join(f"- Row {n}: rack R{n % 7}\n" for n in range(1, 40))),
    "ports-of-the-table": (
        "| port | service |\n|---|---|\n" + "".join(f"| {port} | s{port} |\n" for port in (22, 80, 443, 5432, 8080)),
        "".join(f"- port {port}\n" for port in (22, 80, 443, 5432, 8080)),
    ),
}


@pytest.mark.parametrize(("document", "answer"), PROMPT_NUMBERS.values(), ids=PROMPT_NUMBERS.keys())
def test_items_numbered_as_the_prompt_numbers_them_pass_whole(document: str, answer: str) -> None:
    handed, guard = guarded(answer, "Context: " + document + "\nQuestion: list them")
    assert guard.repeat is None and "".join(handed) == answer


def test_a_list_of_parallel_steps_passes_whole() -> None:
    """One word apart, each a different server: a real list, even without a document saying so."""
    answer = "".join(
        f"{n}. Restart the {server} server.\n" for n, server in enumerate(["web", "PostgreSQL", "SSH", "mail"], 1)
    )
    handed, guard = guarded(answer)
    assert guard.repeat is None and "".join(handed) == answer


def test_a_list_of_long_parallel_steps_each_naming_something_new_passes_whole() -> None:
    """Three quarters of their word pairs shared, each a service the prompt does not name: a loop brings no new word
    (it counts, or repeats one it wrote)."""
    answer = "".join(
        f"{n}. Restart the {service} service and check its status with systemctl afterwards.\n"
        for n, service in enumerate(["nginx", "redis", "cron", "postfix", "dovecot"], 1)
    )
    handed, guard = guarded(answer, "Context: restart the services after the upgrade.")
    assert guard.repeat is None and "".join(handed) == answer


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

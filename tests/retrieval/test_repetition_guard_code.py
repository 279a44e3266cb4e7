"""The repetition guard inside code blocks: a counter written as numbered or comment lines is a loop as a list's is,
ordinary code whose lines look alike (loops, assignments, tables, a comment block of real steps) passes whole."""

from __future__ import annotations

import pytest
from guard_feeding import guarded, pieces_of


@pytest.mark.parametrize(
    ("answer", "once"),
    [
        ("```bash\n" + "".join(f"#  {n}. Check: port {n}\n" for n in range(1, 60)), "#  1. Check: port 1"),
        ("```js\n" + "".join(f"// {n}. Check the log file {n}\n" for n in range(1, 60)), "// 1. Check the log file 1"),
        ("```\n" + "".join(f"{n}. Check: port {n}\n" for n in range(1, 60)), "1. Check: port 1"),
        ("```sh\n" + "".join(f"# Check for {n}.\n#\n" for n in range(1, 60)), "# Check for 1."),
        ("```sql\n" + "".join(f"-- {n}.\n" for n in range(1, 90)), "-- 1."),
    ],
    ids=["numbered-comments", "slash-comments", "numbered-lines", "comments-counted-up", "empty-items"],
)
def test_a_counter_in_a_code_block_ends_after_the_first_item(answer: str, once: str) -> None:
    """Before: a code block's lines were all structure, so numbered comments counted up ran on to max_tokens."""
    handed, guard = guarded(answer, "Context: the firewall allows the web server and SSH.\nQuestion: check the ports")
    assert guard.repeat is not None
    assert "".join(handed).rstrip("\n").endswith("\n" + once)
    assert guard.repeat.seen_at < len(pieces_of(answer)) / 4


CODE_THAT_LOOKS_ALIKE = {
    "loop": "```python\nfor port in (22, 80, 443, 5432):\n    check(port)\n"
    + "".join(f"total_{n} = total_{n} + 1\n" for n in range(12))
    + "```\n",
    "assignments-differing-in-names": "```python\n"
    + "".join(f"{name} = {name} + 1\n" for name in ("hits", "misses", "errors", "retries", "timeouts", "skips"))
    + "```\n",
    "table-in-code": "```\n" + "".join(f"| {n} | web{n} | ok |\n" for n in range(30)) + "```\n",
    "numbered-comments-of-different-steps": "```bash\n"
    + "".join(
        f"# {n}. {step}\n{command}\n"
        for n, (step, command) in enumerate(
            [
                ("Put the server in maintenance mode", "occ maintenance:mode --on"),
                ("Stop the web server", "systemctl stop nginx"),
                ("Copy the data directory", "rsync -a /var/www/data /mnt/data"),
                ("Start the web server", "systemctl start nginx"),
                ("Scan the files", "occ files:scan --all"),
            ],
            1,
        )
    )
    + "```\n",
    "comment-block-of-steps": "```sh\n"
    + "".join(
        f"#  {n}. Check: {check}\n"
        for n, check in enumerate(["the disk space", "the web server", "the database", "the cron job", "the TLS"], 1)
    )
    + "```\n",
    "defines": "```c\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <unistd.h>\n"
    + "".join(f"#define PIN_{n} {n}\n" for n in range(16))
    + "```\n",
    # a preprocessor line is code, though it starts as a shell comment would
    "defines-glued": "```c\n" + "".join(f"#define PIN{n} {n}\n" for n in range(16)) + "```\n",
    "ports-the-prompt-names": "```ini\n" + "".join(f"; port {port}\n" for port in (22, 80, 443, 5432, 8080)) + "```\n",
}


@pytest.mark.parametrize("answer", CODE_THAT_LOOKS_ALIKE.values(), ids=CODE_THAT_LOOKS_ALIKE.keys())
def test_code_whose_lines_look_alike_passes_whole(answer: str) -> None:
    handed, guard = guarded(answer, "Context: the firewall opens the ports 22, 80, 443, 5432 and 8080.")
    assert guard.repeat is None
    assert "".join(handed) == answer


def test_an_indented_counter_in_a_code_block_ends_after_the_first_item() -> None:
    """SmolLM2 writes a line end and the next line's indentation as one token ("\\n   "): before, lines ended only
    with a token ending in "\\n", so an indented run was one long line that no rule read as items."""
    answer = "```python\ndef check():\n" + "".join(f"    # {n}. Check: port {n}\n" for n in range(1, 60))
    assert "\n    " in pieces_of(answer)
    handed, guard = guarded(answer)
    assert guard.repeat is not None
    assert "".join(handed) == "```python\ndef check():\n    # 1. Check: port 1"  # not the next line's indentation

"""The repetition guard's cost per token: fixed answers of 512 pieces (about max_tokens) fed to RepetitionGuard.push one
piece at a time, best of several rounds (the guard runs in the generating thread, after every token).

    .venv/bin/python bench/repetition_guard_cost.py [--rounds 7]

Prints per answer the microseconds per piece and whether the guard stopped it; run it on two commits to compare.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from quart_app.runtimes.repetition import RepetitionGuard  # noqa: E402

PIECES = 512
# close to a BPE tokenizer's pieces: a word with the space before it, a run of punctuation, a line end
_PIECE = re.compile(r" ?\w+| ?[^\w\s]+|\s+")
_WORDS = re.findall(
    r"\S+",
    "the server keeps nightly dumps of the database for thirty days and copies each archive to the storage box while"
    " the web server answers on port 443 and SSH is open to the admin VPN only",
)

ANSWERS = {
    # prose without repeats: every period compared at every piece, no run long enough to stop it
    "prose": "".join(
        " ".join(_WORDS[(7 * n + k) % len(_WORDS)] for k in range(3 + n % 11)).capitalize() + ". " for n in range(200)
    ),
    "list": "".join(f"- restart the web server on host {n} and check its log\n" for n in range(60)),
    # numbered items alike, each host one the prompt names: every line end compares an item's word pairs with the
    # last one's and looks its new words up in the prompt's
    "numbered": "".join(f"{n}. restart the web server on host-{n:02d} and check its log\n" for n in range(1, 61)),
    # bulleted items of different words: every line end compares word pairs
    "bullets": "".join(
        "- " + " ".join(_WORDS[(5 * n + k) % len(_WORDS)] for k in range(4 + n % 5)) + "\n" for n in range(120)
    ),
    # a table going through the prompt's 40 servers, its rows alike but for the counters: every row read as an item of
    # its cells, stepped against the row before and its counters looked up in the prompt
    "table": "| Host | Port | Role |\n|---|---|---|\n"
    + "".join(f"| server-{n} | {8000 + n} | web |\n" for n in range(1, 41)),
    "code": "```python\n" + "".join(f"    assert add({n}, {n}) == {2 * n}\n" for n in range(60)) + "```\n",
    # a code block of numbered comments, each over a command: every comment line is a list item to compare
    "comments": "```bash\n"
    + "".join(
        f"# {n}. " + " ".join(_WORDS[(3 * n + k) % len(_WORDS)] for k in range(4)) + f"\nrun --step {n}\n"
        for n in range(1, 60)
    )
    + "```\n",
    # plain lines with two counters each, outside any code block (every line an item since they hold a number): each
    # line's numbers are stepped against the line before and looked up in the prompt's word pairs
    "plain": "".join(f"ssh -p {8000 + n} admin@server-{n} sudo systemctl restart nginx\n" for n in range(1, 41)),
    # units of three lines going through the prompt's servers, one line the same in each: every line through the run
    # of items and a place of each unit length, its counter looked up after its word
    "units": "".join(f"Host: server-{n}\nPort: {8000 + n}\nRole: web\n\n" for n in range(1, 41)),
}


def pieces_of(text: str) -> list[str]:
    return _PIECE.findall(text)[:PIECES]


# the prompt each answer is guarded against ("" for none): the hosts the list items go through (else a loop)
PROMPTS = {
    "list": "Hosts: " + ", ".join(f"host {n}" for n in range(60)) + ". Restart each and check its log.",
    "numbered": "Hosts: " + ", ".join(f"host-{n:02d}" for n in range(1, 61)) + ". Restart each and check its log.",
    "plain": "Servers: " + "; ".join(f"server-{n} on port {8000 + n}" for n in range(1, 41)) + ".",
    "table": "Servers: " + "; ".join(f"server-{n} (web) listens on port {8000 + n}" for n in range(1, 41)) + ".",
    "units": "Servers: " + "; ".join(f"server-{n} (web) listens on port {8000 + n}" for n in range(1, 41)) + ".",
}


def measure(pieces: list[str], prompt: str, rounds: int) -> tuple[float, bool]:
    best = float("inf")
    stopped = False
    for _ in range(rounds):
        guard = RepetitionGuard(prompt)
        started = time.perf_counter()
        for piece in pieces:
            guard.push(piece)
            if guard.repeat is not None:
                break
        guard.finish()
        best = min(best, time.perf_counter() - started)
        stopped = guard.repeat is not None
    return best / len(pieces) * 1e6, stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for name, answer in ANSWERS.items():
        pieces = pieces_of(answer)
        per_piece_us, stopped = measure(pieces, PROMPTS.get(name, ""), args.rounds)
        stop = " (stopped as a loop)" if stopped else ""
        print(f"{name}: {len(pieces)} pieces, {per_piece_us:.1f} µs per piece{stop}")


if __name__ == "__main__":
    main()

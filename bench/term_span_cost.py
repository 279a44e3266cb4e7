"""The cost of term_span.shortest_span on one chunk whose text holds a question's terms many times: one rare term at
the start and the other written again and again after it (a log or a table naming one port or host on every line), so
every window reaching back to the rare term holds all the hits after it. Runs in /docSearch's retrieval, on the event
loop, once per candidate chunk; a chunk holds up to the embedder's chunk_tokens (512 with e5, more with an external
model).

    .venv/bin/python bench/term_span_cost.py [--rounds 5]

Prints per hit count the CPU milliseconds of one call (best of the rounds); run it on two commits to compare.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from quart_app.services.term_span import shortest_span  # noqa: E402

HITS = (100, 500, 2000, 5000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    for hits in HITS:
        text = "listen_port is set once; " + " ".join(f"line {n}: upstream_host answered" for n in range(hits))
        timings = []
        for _ in range(rounds):
            started = time.process_time()
            span = shortest_span(text, ["listen_port", "upstream_host"])
            timings.append(time.process_time() - started)
        print(f"{hits:5d} hits, {len(text):7d} characters: {min(timings) * 1000:8.2f} ms (span {span})")


if __name__ == "__main__":
    main()

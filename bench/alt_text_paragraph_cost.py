"""The cost of docx_alt_text.with_alt_texts, which sets each drawing's alt text apart from the words around it in a
DOCX paragraph: one paragraph of N runs, every other one an inline picture's alt text (a picture catalogue or a
converted scan laid out as one paragraph).

    .venv/bin/python bench/alt_text_paragraph_cost.py [--rounds 3]

Prints per run count the CPU milliseconds of one call (best of the rounds); run it on two commits to compare.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from quart_app.loaders.docx_alt_text import with_alt_texts  # noqa: E402

RUNS = (200, 5_000, 20_000, 40_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    for runs in RUNS:
        pieces = ["Site map: the harbour" if n % 2 == 0 else f"see figure {n}" for n in range(runs)]
        alt_text_at = list(range(0, runs, 2))
        timings = []
        for _ in range(rounds):
            started = time.process_time()
            with_alt_texts(pieces, alt_text_at)
            timings.append(time.process_time() - started)
        print(f"{runs:6d} runs, {len(alt_text_at):6d} alt texts: {min(timings) * 1000:9.2f} ms")


if __name__ == "__main__":
    main()

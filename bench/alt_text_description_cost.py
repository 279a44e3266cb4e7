"""The cost of office_alt_text.described on one long description, the check for a description that is only a file
name or path included: a description with many path separators and no picture extension at its end ("a/a/a/..."),
and one of words. The loaders call it for every described drawing of a DOCX, PPTX or ODT file.

    .venv/bin/python bench/alt_text_description_cost.py [--rounds 3]

Prints per description the CPU milliseconds of one call (best of the rounds); run it on two commits to compare.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from quart_app.loaders.office_alt_text import described  # noqa: E402

DESCRIPTIONS = {
    "4,000 separators": "a/" * 4_000,
    "16,000 separators": "a/" * 16_000,
    "words, 100 kB": "The harbour and its two warehouses. " * 2_800,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    for name, description in DESCRIPTIONS.items():
        timings = []
        for _ in range(rounds):
            started = time.process_time()
            described("Site map", description)
            timings.append(time.process_time() - started)
        print(f"{name:18s} {len(description):7d} characters: {min(timings) * 1000:9.2f} ms")


if __name__ == "__main__":
    main()

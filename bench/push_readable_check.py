"""What push mode's readability check adds to a question: one WebDAV SEARCH by file id, as the asking user.

    NEXTCLOUD_URL=http://127.0.0.1:8125 APP_SECRET=... APP_VERSION=5.3.1 \\
      .venv/bin/python bench/push_readable_check.py --user bert --file-id 84 --file-id 88 [--rounds 30]
    .venv/bin/python bench/push_readable_check.py --docsearch [--rounds 30]
    .venv/bin/python bench/push_readable_check.py --query [--rounds 30]

Needs a real Nextcloud with the ExApp registered (shared/realnc); the user must have logged in once (Nextcloud has
no folder to search before). Times `readable_file_ids` (quart_app/nextcloud/readable_files.py) over one client for
the given ids, then padded with ids the user cannot read up to 10, 30 and 100 ids (the PHP app's ctxLimit is 10-30;
100 is one SEARCH's most). Writes the table to bench/results/push_readable_check.txt.

`--docsearch` needs no Nextcloud: POST /docSearch (ctxLimit 10) through the app on an embedded PostgreSQL and the
embedder program, against the tests' fake Nextcloud (its SEARCH answers in about a millisecond, so the table shows
the app's side; a real one adds its SEARCH time per round), while bert has lost none, 15 or 35 of the 40 files
ranked first. Writes bench/results/push_docsearch_fill.txt. `--query`: the same with POST /query (its context of
ctxLimit chunks filled as /docSearch's list; the extractive LLM, so the table shows retrieval and checks), writing
bench/results/push_query_fill.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from quart_app.nextcloud import NextcloudClient  # noqa: E402  # after the sys.path line
from quart_app.nextcloud.readable_check_wait import ReadableCheckWait  # noqa: E402
from quart_app.nextcloud.readable_files import readable_file_ids  # noqa: E402

# ids far above any real file id: found by no one
UNKNOWN_ID_BASE = 10_000_000
# the shipped nextcloud.readable_check_timeout_s
SEARCH_WAIT_S = 15.0


async def _measure(nc: NextcloudClient, user: str, ids: list[int], rounds: int) -> tuple[list[float], set[int]]:
    found = await readable_file_ids(nc, user, ids, ReadableCheckWait(SEARCH_WAIT_S))  # warm-up: connection, PHP opcache
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        await readable_file_ids(nc, user, ids, ReadableCheckWait(SEARCH_WAIT_S))
        times.append((time.perf_counter() - start) * 1000)
    return times, found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user")
    parser.add_argument("--file-id", type=int, action="append")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--docsearch", action="store_true", help="/docSearch p50 against the fake Nextcloud")
    parser.add_argument("--query", action="store_true", help="/query p50 against the fake Nextcloud")
    args = parser.parse_args()
    if args.docsearch or args.query:
        from push_docsearch_fill import measure_fill  # its kits' imports only for these modes

        await measure_fill(args.rounds, "/query" if args.query else "/docSearch")
        return
    if not args.user or not args.file_id:
        parser.error("--user and --file-id are needed unless --docsearch or --query")
    nc = NextcloudClient(
        os.environ["NEXTCLOUD_URL"],
        app_id=os.environ.get("APP_ID", "context_chat_backend"),
        app_version=os.environ.get("APP_VERSION", "5.3.1"),
        app_secret=os.environ["APP_SECRET"],
    )
    lines = [
        f"{time.strftime('%Y-%m-%d %H:%M')} bench/push_readable_check.py --user {args.user} "
        + " ".join(f"--file-id {i}" for i in args.file_id),
        f"{nc.shown_url}, {args.rounds} rounds each (ms per check: one SEARCH)",
        f"{'ids':>4} {'found':>5} {'p50':>7} {'p95':>7} {'mean':>7}",
    ]
    try:
        for size in sorted({len(args.file_id), 10, 30, 100}):
            ids = args.file_id + [UNKNOWN_ID_BASE + n for n in range(max(0, size - len(args.file_id)))]
            times, found = await _measure(nc, args.user, ids, args.rounds)
            p95 = statistics.quantiles(times, n=20)[-1]
            p50, mean = statistics.median(times), statistics.fmean(times)
            lines.append(f"{len(ids):>4} {len(found):>5} {p50:>7.1f} {p95:>7.1f} {mean:>7.1f}")
    finally:
        await nc.aclose()
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    lines.append(f"load average {load} on {os.cpu_count()} cores (php -S, SQLite)")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    (REPO / "bench" / "results" / "push_readable_check.txt").write_text(text)


if __name__ == "__main__":
    asyncio.run(main())

"""/docSearch p50 in push mode while the asking user lost many top-ranked files (`push_readable_check.py --docsearch`).

The app (create_app) on an embedded PostgreSQL and the embedder program, bert's 120 files shared by anna, Nextcloud
the tests' fake (tests/dav_file_search.py): the ranking's first 0, 15 or 35 of 40 files are unshared in Nextcloud
only, and each question's results, SEARCHes and time are recorded.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests"), str(REPO / "tests" / "contract")]

from async_wait import wait_until  # noqa: E402  # after the sys.path line
from bench_services import fresh_database, start_embedder, start_postgres, stop, write_report  # noqa: E402
from contract_kit import (  # noqa: E402
    SourcePart,
    all_embedded,
    contract_config,
    make_settings,
    put_sources,
    running_app,
    signed_headers,
    status_report,
)
from nextcloud_ocs_fake import FakeAppApiNextcloud  # noqa: E402
from quart.typing import TestClientProtocol  # noqa: E402

from quart_app import create_app  # noqa: E402

LIMIT = 10
FILES = 120
LOST = (0, 15, 35)
QUESTION = "when is the orchard gate code changed"
TOPICS = ("orchard gate code", "tulip bulbs", "hinge oil", "compost heap", "apple harvest", "pond pump")
OUT = REPO / "bench" / "results" / "push_docsearch_fill.txt"


def _corpus() -> list[SourcePart]:
    """Notes mixing the topics, so the question ranks them in a spread rather than ties."""
    parts = []
    for n in range(FILES):
        first, second = TOPICS[n % len(TOPICS)], TOPICS[(n * 7 + 3) % len(TOPICS)]
        text = f"Garden note {n}: the {first} is changed every {n % 12 + 1} weeks; also check the {second} in week {n}."
        parts.append(SourcePart(f"files__default: {1000 + n}", text.encode(), ["anna", "bert"], f"anna/note-{n}.md"))
    return parts


async def _ask(http: TestClientProtocol, limit: int) -> tuple[float, list[str]]:
    start = time.perf_counter()
    response = await http.post(
        "/docSearch", json={"userId": "bert", "query": QUESTION, "ctxLimit": limit}, headers=signed_headers("bert")
    )
    elapsed = (time.perf_counter() - start) * 1000
    hits = await response.get_json()
    assert response.status_code == 200, hits
    return elapsed, [hit["source_id"] for hit in hits]


async def _measure(root: Path, dsn: str, embedder_url: str, rounds: int) -> list[str]:
    lines = [f"{'lost of top 40':>14} {'results':>7} {'SEARCHes':>8} {'p50 ms':>7} {'p95 ms':>7} {'mean ms':>7}"]
    with FakeAppApiNextcloud() as nextcloud:
        app = create_app(make_settings(root / "storage", dsn, contract_config(embedder_url), nextcloud.url))
        async with running_app(app) as test_app:
            http = test_app.test_client()
            await http.put("/enabled?enabled=1", headers=signed_headers())
            for start in range(0, FILES, 20):
                await put_sources(http, _corpus()[start : start + 20])

            async def embedded() -> bool:
                return all_embedded(await status_report(http))

            await wait_until(embedded, "every chunk embedded", timeout_s=900)
            _, ranking = await _ask(http, 40)
            for lost in LOST:
                nextcloud.dav.revoke("bert", *(int(sid.removeprefix("files__default: ")) for sid in ranking[:lost]))
                await _ask(http, LIMIT)  # warm-up
                del nextcloud.dav.searches[:]
                times, found = [], 0
                for _ in range(rounds):
                    elapsed, hits = await _ask(http, LIMIT)
                    times.append(elapsed)
                    found = len(hits)
                searches = len(nextcloud.dav.searches) / rounds
                p95 = statistics.quantiles(times, n=20)[-1]
                lines.append(
                    f"{lost:>14} {found:>7} {searches:>8.1f} {statistics.median(times):>7.1f} {p95:>7.1f}"
                    f" {statistics.fmean(times):>7.1f}"
                )
    return lines


async def measure_docsearch(rounds: int) -> None:
    """Run the scenarios and write the table to bench/results/push_docsearch_fill.txt."""
    logging.disable(logging.WARNING)  # the check's warning per question names every file left out
    with tempfile.TemporaryDirectory(prefix="ccb-bench-push-docsearch-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the unprivileged postgres user must traverse it
        cluster, postgres = start_postgres(root)
        embedder_url, embedder = start_embedder(root)
        try:
            rows = await _measure(root, fresh_database(cluster, "push_docsearch"), embedder_url, rounds)
        finally:
            stop(embedder)
            stop(postgres)
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    head = [
        f"{time.strftime('%Y-%m-%d %H:%M')} bench/push_readable_check.py --docsearch --rounds {rounds}",
        f"POST /docSearch ctxLimit {LIMIT}, {FILES} files bert reads (shared by anna), the fake Nextcloud's SEARCH",
    ]
    write_report([*head, *rows, f"load average {load} on {os.cpu_count()} cores"], OUT)

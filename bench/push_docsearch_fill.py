"""/docSearch or /query p50 in push mode while the asking user lost many top-ranked files
(`push_readable_check.py --docsearch` or `--query`).

The app (create_app) on an embedded PostgreSQL and the embedder program, bert's 120 files shared by anna, Nextcloud
the tests' fake (tests/dav_file_search.py): the ranking's first 0, 15 or 35 of 40 files are unshared in Nextcloud
only, and each question's results (/query: the answer's sources; 0 for its 400), retrievals, SEARCHes and time are
recorded.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
from quart_app.services.retrieval import RetrievalService  # noqa: E402

LIMIT = 10
FILES = 120
LOST = (0, 15, 35)
QUESTION = "when is the orchard gate code changed"
TOPICS = ("orchard gate code", "tulip bulbs", "hinge oil", "compost heap", "apple harvest", "pond pump")
# each route's table
OUT = {
    "/docSearch": REPO / "bench" / "results" / "push_docsearch_fill.txt",
    "/query": REPO / "bench" / "results" / "push_query_fill.txt",
}


def _corpus() -> list[SourcePart]:
    """Notes mixing the topics, so the question ranks them in a spread rather than ties."""
    parts = []
    for n in range(FILES):
        first, second = TOPICS[n % len(TOPICS)], TOPICS[(n * 7 + 3) % len(TOPICS)]
        text = f"Garden note {n}: the {first} is changed every {n % 12 + 1} weeks; also check the {second} in week {n}."
        parts.append(SourcePart(f"files__default: {1000 + n}", text.encode(), ["anna", "bert"], f"anna/note-{n}.md"))
    return parts


async def _ask(http: TestClientProtocol, limit: int, route: str = "/docSearch") -> tuple[float, list[str]]:
    start = time.perf_counter()
    response = await http.post(
        route, json={"userId": "bert", "query": QUESTION, "ctxLimit": limit}, headers=signed_headers("bert")
    )
    elapsed = (time.perf_counter() - start) * 1000
    body = await response.get_json()
    if route == "/query":
        # 400 "No documents retrieved": every chunk of the context was left out
        assert response.status_code in (200, 400), body
        return elapsed, body.get("sources", [])
    assert response.status_code == 200, body
    return elapsed, [hit["source_id"] for hit in body]


class _CountedRetrievals:
    """Counts RetrievalService.retrieve calls (one per round of either route) while installed."""

    def __init__(self) -> None:
        self.calls = 0
        self._retrieve = RetrievalService.retrieve

    def __enter__(self) -> _CountedRetrievals:
        original = self._retrieve

        async def counted(service: RetrievalService, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return await original(service, *args, **kwargs)

        RetrievalService.retrieve = counted  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        RetrievalService.retrieve = self._retrieve  # type: ignore[method-assign]


async def _measure(root: Path, dsn: str, embedder_url: str, rounds: int, route: str) -> list[str]:
    lines = [
        f"{'lost of top 40':>14} {'results':>7} {'retrievals':>10} {'SEARCHes':>8} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'mean ms':>7}"
    ]
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
                await _ask(http, LIMIT, route)  # warm-up
                del nextcloud.dav.searches[:]
                times, found = [], 0
                with _CountedRetrievals() as retrievals:
                    for _ in range(rounds):
                        elapsed, hits = await _ask(http, LIMIT, route)
                        times.append(elapsed)
                        found = len(hits)
                searches = len(nextcloud.dav.searches) / rounds
                p95 = statistics.quantiles(times, n=20)[-1]
                lines.append(
                    f"{lost:>14} {found:>7} {retrievals.calls / rounds:>10.1f} {searches:>8.1f}"
                    f" {statistics.median(times):>7.1f} {p95:>7.1f} {statistics.fmean(times):>7.1f}"
                )
    return lines


async def measure_fill(rounds: int, route: str) -> None:
    """Run the scenarios on `route` (/docSearch or /query) and write the table to its OUT file."""
    logging.disable(logging.WARNING)  # the check's warning per question names every file left out
    with tempfile.TemporaryDirectory(prefix="ccb-bench-push-docsearch-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the unprivileged postgres user must traverse it
        cluster, postgres = start_postgres(root)
        embedder_url, embedder = start_embedder(root)
        try:
            rows = await _measure(root, fresh_database(cluster, "push_fill"), embedder_url, rounds, route)
        finally:
            stop(embedder)
            stop(postgres)
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    head = [
        f"{time.strftime('%Y-%m-%d %H:%M')} bench/push_readable_check.py --{route.strip('/').lower()}"
        f" --rounds {rounds}",
        f"POST {route} ctxLimit {LIMIT}, {FILES} files bert reads (shared by anna), the fake Nextcloud's SEARCH,"
        " per question",
    ]
    write_report([*head, *rows, f"load average {load} on {os.cpu_count()} cores"], OUT[route])

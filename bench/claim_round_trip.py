"""What ordering a load or an access change costs: this process alone vs claims shared through the database.

    .venv/bin/python bench/claim_round_trip.py [--sources 200] [--per-load 1]

Starts an embedded PostgreSQL in a temp dir and times, for `--sources` small sources in loads of `--per-load`:
  load    arrival + claim + release (what /loadSources and a pull batch add around parsing and writing);
  change  an access change's hold + release (what /updateAccess and the deletes add around their transaction);
once with SourceOrder alone (one replica) and once with its ClaimStore (replicas sharing the database); next to
  query   one `SELECT 1` on a pooled request connection (the pool's check + the query), the unit to compare with.
Writes the table to bench/results/claims.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_services import fresh_database, start_postgres, stop  # noqa: E402

from quart_app.services.source_order import SourceOrder, source_key  # noqa: E402  # after the sys.path line
from quart_app.store import Database  # noqa: E402
from quart_app.store.claim_store import ClaimStore  # noqa: E402

DIMENSION = 384


@dataclass(frozen=True)
class Load:
    source_id: str
    provider: str = "files__default"
    user_ids: tuple[str, ...] = ("alice", "bob")


async def timed(rounds: int, step: Callable[[int], Awaitable[None]]) -> list[float]:
    """Milliseconds per call of `step(i)`."""
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        await step(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(order: SourceOrder, sources: int, per_load: int) -> dict[str, list[float]]:
    loads = [[Load(f"files__default: {i * per_load + j}") for j in range(per_load)] for i in range(sources // per_load)]

    async def load(i: int) -> None:
        async with order.arrival() as arrival, order.claim(loads[i], arrival) as claim:
            assert len(claim.held) == per_load

    async def change(i: int) -> None:
        async with order.change([source_key(s.source_id) for s in loads[i]]):
            pass

    return {"load": await timed(len(loads), load), "change": await timed(len(loads), change)}


async def run(dsn: str, sources: int, per_load: int) -> list[tuple[str, str, list[float]]]:
    db = Database(dsn)
    await db.open()
    await db.migrate("bench", DIMENSION)
    claims = ClaimStore(db)
    await claims.open()
    try:

        async def query(_: int) -> None:
            async with db.connection() as conn:
                await conn.execute("SELECT 1")

        await timed(20, query)
        rows = [("request pool", "query", await timed(sources, query))]
        for name, order in (("this process", SourceOrder()), ("database", SourceOrder(shared=claims))):
            await measure(order, min(sources, 20), per_load)  # warm: connections, plans
            for kind, times in (await measure(order, sources, per_load)).items():
                rows.append((name, kind, times))
        return rows
    finally:
        await claims.close()
        await db.close()


def report_lines(args: argparse.Namespace, rows: list[tuple[str, str, list[float]]]) -> list[str]:
    lines = [f"{args.sources} sources, {args.per_load} per load, one at a time (ms per load or change)"]
    lines.append(f"{'ordering':<14}{'what':<8}{'calls':>6}{'p50':>8}{'p95':>8}{'mean':>8}{'total s':>9}")
    for name, kind, times in rows:
        p95 = statistics.quantiles(times, n=20)[-1]
        lines.append(
            f"{name:<14}{kind:<8}{len(times):>6}{statistics.median(times):>8.3f}{p95:>8.3f}"
            f"{statistics.fmean(times):>8.3f}{sum(times) / 1000:>9.3f}"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--per-load", type=int, default=1)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "claims.txt")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ccb-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the unprivileged postgres user must traverse it
        cluster, postgres = start_postgres(root)
        try:
            rows = asyncio.run(run(fresh_database(cluster, "bench_claims"), args.sources, args.per_load))
        finally:
            stop(postgres)
    lines = report_lines(args, rows)
    print("\n".join(lines))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    header = f"{time.strftime('%Y-%m-%d %H:%M')} bench/claim_round_trip.py {' '.join(sys.argv[1:])}\n"
    args.results.write_text(header + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

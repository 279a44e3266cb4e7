"""What reading the actions received for a documents batch costs (pull/queued_readers.py), by pull_actions' size.

    .venv/bin/python bench/pull_action_lookup.py [--rows 1000,10000,100000] [--items 20] [--rounds 30]

Before a batch's content-provider items are indexed, the actions kept for two days (pull_actions) that name their
sources, providers or readers are read; for a file whose readers changed since the poll, those received since it.
Starts an embedded PostgreSQL in a temp dir (bench_services.measure_on_fresh_database), fills pull_actions with
`--rows` access changes and deletes of files and mails of 200 users (as received: done, spread over two days), and
times both lookups for a batch of `--items` provider items (one round = one batch). Writes the table to
bench/results/pull_action_lookup.txt.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_services import measure_on_fresh_database, write_report  # noqa: E402

from quart_app.pull.queue_items import DocumentItem  # noqa: E402  # after the sys.path line
from quart_app.pull.queued_readers import current_readers, readers_since_poll  # noqa: E402
from quart_app.store import Database  # noqa: E402

DIMENSION = 384
USERS = [f"user{i}" for i in range(200)]
MAIL = "mail__mail"


def action(rng: random.Random) -> tuple[str, dict[str, object]]:
    """One action of a busy instance: mostly file shares and unshares, some mail access changes and deletes."""
    roll = rng.random()
    if roll < 0.6:
        op = rng.choice(("allow", "deny"))
        source = f"files__default: {rng.randrange(1_000_000)}"
        return "update_access_source_id", {"op": op, "userIds": rng.sample(USERS, 2), "sourceId": source}
    if roll < 0.8:
        return "update_access_source_id", {
            "op": rng.choice(("allow", "deny")),
            "userIds": rng.sample(USERS, 1),
            "sourceId": f"{MAIL}: {rng.randrange(1_000_000)}",
        }
    return "delete_source_ids", {"sourceIds": [f"files__default: {rng.randrange(1_000_000)}" for _ in range(3)]}


async def fill(db: Database, rows: int, rng: random.Random) -> None:
    async with db.connection() as conn:
        await conn.execute("TRUNCATE pull_actions")
        kinds, payloads = zip(*(action(rng) for _ in range(rows)), strict=True)
        await conn.execute(
            "INSERT INTO pull_actions (row_id, type, payload, received_at, done_at)"
            " SELECT n, k, p::jsonb, now() - make_interval(secs => (%s - n) * 172800.0 / %s), now()"
            " FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS r(k, p, n)",
            (rows, rows, list(kinds), [json.dumps(p) for p in payloads]),
        )
        await conn.execute("ANALYZE pull_actions")


def batch(rng: random.Random, items: int) -> list[DocumentItem]:
    return [
        DocumentItem(
            kind="content_providers",
            row_id=i,
            source_id=f"{MAIL}: {rng.randrange(1_000_000)}",
            user_ids=rng.sample(USERS, 2),
            title="Re: budget",
            mimetype="text/plain",
            modified=0,
            provider=MAIL,
            size=0,
            content="The travel budget is 12000 euros.",
        )
        for i in range(items)
    ]


Lookup = Callable[[list[DocumentItem]], Awaitable[list[DocumentItem]]]


async def _since_a_minute_ago(db: Database, items: list[DocumentItem]) -> list[DocumentItem]:
    return await readers_since_poll(db, items, 60.0)


async def run(dsn: str, sizes: list[int], items: int, rounds: int) -> list[str]:
    rng = random.Random(7)
    db = Database(dsn)
    await db.open()
    await db.migrate("bench", DIMENSION)
    lines = [f"one batch of {items} provider items, {rounds} rounds (ms per batch)"]
    lines.append(f"{'pull_actions rows':>18}  {'lookup':<32}{'p50':>8}{'p95':>8}")
    try:
        for rows in sizes:
            await fill(db, rows, rng)
            lookups: tuple[tuple[str, Lookup], ...] = (
                ("all kept (provider items)", functools.partial(current_readers, db)),
                ("since a poll 60 s ago (stale)", functools.partial(_since_a_minute_ago, db)),
            )
            for name, lookup in lookups:
                await lookup(batch(rng, items))  # warm: plan, cache
                times = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    await lookup(batch(rng, items))
                    times.append((time.perf_counter() - started) * 1000)
                p95 = statistics.quantiles(times, n=20)[-1]
                lines.append(f"{rows:>18,}  {name:<32}{statistics.median(times):>8.1f}{p95:>8.1f}")
    finally:
        await db.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000,10000,100000")
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "pull_action_lookup.txt")
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]
    lines: list[str] = []

    async def measure(dsn: str) -> None:
        lines.extend(await run(dsn, sizes, args.items, args.rounds))

    measure_on_fresh_database("lookup", measure)
    write_report(lines, args.results)


if __name__ == "__main__":
    main()

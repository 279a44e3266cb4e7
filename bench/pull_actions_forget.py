"""What forgetting the applied pull actions costs (pull_action_store.forget_done), by pull_actions' size and by how many
content-provider rows have an unconfirmed DELETE (migration 0018: the actions naming them are kept).

    PYTHONPATH=<tree> .venv/bin/python bench/pull_actions_forget.py --label before|after [--rows 10000,100000]
        [--unconfirmed 0,100,10000] [--rounds 10] [--statement forget_done|keep_rule] [--backlog]

The actions loop runs forget_done at its start and then at most every 10 min, under the appliers' lock (no action is
applied meanwhile). Starts an embedded PostgreSQL in a temp dir (bench_services.measure_on_fresh_database), fills
pull_actions with `--rows` access changes and deletes of files and mails of 200 users, all applied and acknowledged
three days ago (due to be forgotten; the provider queue noted drained now, migration 0019), notes `--unconfirmed` mail
rows of two readers each as unconfirmed (a tree without migration 0018 takes 0 only), and times forget_done in a
transaction rolled back after each round. Appends the table to bench/results/pull_actions_forget.txt. `--statement
keep_rule` times the statement that keeps the actions naming unconfirmed rows alone, without forget_done's first look
whether any unconfirmed row exists; `--backlog` leaves the provider queue not found drained (a backlog: the actions
that may concern a provider row are kept).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

# first, so that the tree PYTHONPATH names is measured (bench_services puts this file's tree first on sys.path)
import quart_app

TREE = Path(quart_app.__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_services import measure_on_fresh_database  # noqa: E402
from pull_action_lookup import MAIL, USERS, action  # noqa: E402

from quart_app.store import Database, pull_action_store  # noqa: E402
from quart_app.store.database import Connection  # noqa: E402

DIMENSION = 384


async def keep_rule(conn: Connection) -> int:
    """The keep rule's statement alone, as forget_done runs it when some unconfirmed row exists."""
    keep = {"keep": pull_action_store.KEEP_DONE, "lock": pull_action_store.PROVIDER_LOCK}
    cur = await conn.execute(pull_action_store._FORGET_DUE_NOT_NAMING_UNCONFIRMED, keep)
    return cur.rowcount


STATEMENTS: dict[str, Callable[[Connection], Awaitable[int]]] = {
    "forget_done": pull_action_store.forget_done,
    "keep_rule": keep_rule,
}


class _RolledBack(Exception):
    """Ends a round's transaction, so every round forgets the same rows."""


async def fill(db: Database, rows: int, unconfirmed: int, rng: random.Random, backlog: bool) -> None:
    async with db.connection() as conn:
        await conn.execute("TRUNCATE pull_actions")
        kinds, payloads = zip(*(action(rng) for _ in range(rows)), strict=True)
        await conn.execute(
            "INSERT INTO pull_actions (row_id, type, payload, received_at, done_at, acked_at)"
            " SELECT n, k, p::jsonb, now() - interval '3 days', now() - interval '3 days', now() - interval '3 days'"
            " FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS r(k, p, n)",
            (list(kinds), [json.dumps(p) for p in payloads]),
        )
        cur = await conn.execute("SELECT to_regclass('pull_unconfirmed_provider_rows') IS NOT NULL")
        if (row := await cur.fetchone()) and row[0]:
            await conn.execute("TRUNCATE pull_unconfirmed_provider_rows")
        cur = await conn.execute("SELECT to_regclass('pull_provider_queue_drained') IS NOT NULL")
        if (row := await cur.fetchone()) and row[0]:
            # the provider queue drained now (migration 0019): the actions that may concern a provider row are due too
            await conn.execute("TRUNCATE pull_provider_queue_drained")
            if not backlog:
                await conn.execute("INSERT INTO pull_provider_queue_drained (drained_at) VALUES (now())")
        if unconfirmed:
            from quart_app.store.provider_row_store import UnconfirmedProviderRow, record_unconfirmed

            noted = [
                UnconfirmedProviderRow(
                    i, f"{MAIL}: {rng.randrange(1_000_000)}", (MAIL, MAIL.split("__")[1]), tuple(rng.sample(USERS, 2))
                )
                for i in range(unconfirmed)
            ]
            await record_unconfirmed(conn, noted)
        await conn.execute("ANALYZE")


async def run(
    dsn: str, label: str, sizes: list[int], unconfirmed: list[int], rounds: int, statement: str, backlog: bool
) -> list[str]:
    rng = random.Random(11)
    db = Database(dsn)
    await db.open()
    await db.migrate("bench", DIMENSION)
    forget = STATEMENTS[statement]
    lines = [f"{label} ({TREE.name}): {statement}, {rounds} rounds (ms)"]
    lines.append(f"{'pull_actions rows':>18}{'unconfirmed rows':>18}{'forgotten':>11}{'p50':>9}{'p95':>9}")
    try:
        for rows in sizes:
            for noted in unconfirmed:
                await fill(db, rows, noted, rng, backlog)
                times, forgotten = [], 0
                for _ in range(rounds + 1):  # the first warms the plan and the cache
                    started = time.perf_counter()
                    try:
                        async with db.connection() as conn, conn.transaction():
                            forgotten = await forget(conn)
                            times.append((time.perf_counter() - started) * 1000)
                            raise _RolledBack
                    except _RolledBack:
                        pass
                times = times[1:]
                p95 = statistics.quantiles(times, n=20)[-1]
                lines.append(f"{rows:>18,}{noted:>18,}{forgotten:>11,}{statistics.median(times):>9.1f}{p95:>9.1f}")
                print(lines[-1], flush=True)
    finally:
        await db.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after")
    parser.add_argument("--rows", default="10000,100000")
    parser.add_argument("--unconfirmed", default="0,100,10000")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--statement", choices=sorted(STATEMENTS), default="forget_done")
    parser.add_argument("--backlog", action="store_true", help="the provider queue never found drained")
    parser.add_argument("--results", type=Path, default=BENCH / "results" / "pull_actions_forget.txt")
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]
    unconfirmed = [int(n) for n in args.unconfirmed.split(",")]
    lines: list[str] = []

    async def measure(dsn: str) -> None:
        lines.extend(await run(dsn, args.label, sizes, unconfirmed, args.rounds, args.statement, args.backlog))

    measure_on_fresh_database("forget", measure)
    with args.results.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()

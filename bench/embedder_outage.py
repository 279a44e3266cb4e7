"""How the embedding queue rides out an embedding-service outage, with the shipped embedding_worker settings.

    .venv/bin/python bench/embedder_outage.py [--chunks 100] [--outages 10,70]

Starts an embedded PostgreSQL and the embedder program (MiniLM int8) in a temp dir, queues `--chunks` distinct
chunks, stops the embedder, starts one embedding worker, and after each outage length starts the embedder again on
the same port. Measures, per outage: calls the worker made to the stopped service, chunks failed or with an attempt
counted (both must be 0), then the time from the service answering /health again to the worker asking it again
(a batch claimed), to the first batch written and to the queue being empty (drain). Writes the table to
bench/results/embedder_outage.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from bench_services import MODEL, REPO, fresh_database, start_embedder, start_postgres, stop
from ingest_throughput import DIMENSION, WORDS

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database
from quart_app.store.document_store import ChunkRecord, DocumentRecord, write_indexed

CHUNKS_PER_DOCUMENT = 10


async def queue_chunks(db: Database, count: int, round_no: int) -> None:
    rng = random.Random(round_no)
    async with db.connection() as conn:
        for doc in range(0, count, CHUNKS_PER_DOCUMENT):
            texts = [" ".join(rng.choice(WORDS) for _ in range(60)) for _ in range(CHUNKS_PER_DOCUMENT)]
            chunks = [ChunkRecord(i, t, 0, 80, hashlib.sha256(t.encode()).digest()) for i, t in enumerate(texts)]
            source = f"files__default: {round_no}-{doc}"
            digest = hashlib.sha256(source.encode()).digest()
            record = DocumentRecord(source, "files__default", "t", "text/plain", 1, digest, 1)
            await write_indexed(conn, record, chunks, ["alice"])


async def count(db: Database, where: str) -> int:
    async with db.connection() as conn:
        row = await (await conn.execute(f"SELECT count(*) FROM chunks WHERE {where}".encode())).fetchone()
    return int(row[0]) if row else 0


async def seconds_until(db: Database, where: str, chunks: int, since: float) -> float:
    """Seconds from `since` until `chunks` chunks match `where` (polled every 50 ms: the figure, not a wait)."""
    while True:
        if await count(db, where) >= chunks:
            return time.monotonic() - since
        await asyncio.sleep(0.05)


async def one_outage(db: Database, root: Path, port: int, outage_s: float, chunks: int, round_no: int) -> str:
    config = EmbeddingWorkerConfig()  # the shipped defaults: 6 attempts, outage backoff 1 s doubling to 15 s
    url = f"http://127.0.0.1:{port}/v1"
    async with EmbeddingClient(url, timeout_s=config.lease_s) as client:
        worker = EmbeddingWorker(db, client, config)
        await queue_chunks(db, chunks, round_no)
        async with worker:
            await asyncio.sleep(outage_s)  # the outage: the embedder is stopped before this round starts
            calls = worker.outage.failed_calls
            this_round = f"source_id LIKE 'files__default: {round_no}-%'"
            failed = await count(db, f"{this_round} AND embed_state = 'failed'")
            counted = await count(db, f"{this_round} AND attempts > 0")
            _, embedder = await asyncio.to_thread(start_embedder, root, port)
            back = time.monotonic()
            # the worker claims a batch the moment it asks the service again (its lease is held during the request)
            asked = await seconds_until(
                db, f"{this_round} AND (lease_token IS NOT NULL OR embedded_at IS NOT NULL)", 1, back
            )
            resumed = await seconds_until(db, f"{this_round} AND embed_state = 'embedded'", 1, back)
            drained = await seconds_until(db, f"{this_round} AND embed_state = 'embedded'", chunks, back)
    stop(embedder)
    return (
        f"outage {outage_s:5.0f} s: {calls:3d} refused calls, {failed} chunks failed, {counted} attempts counted;"
        f" service back -> asked again {asked:5.2f} s, first batch written {resumed:5.2f} s,"
        f" {chunks} chunks drained {drained:5.2f} s"
    )


async def run(dsn: str, root: Path, port: int, outages: list[float], chunks: int) -> list[str]:
    lines = []
    async with Database(dsn, min_size=1, max_size=4) as db:
        await db.migrate(MODEL, DIMENSION)
        for round_no, outage_s in enumerate(outages):
            lines.append(await one_outage(db, root, port, outage_s, chunks, round_no))
            print(lines[-1], flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100)
    parser.add_argument("--outages", default="10,70")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "embedder_outage.txt")
    args = parser.parse_args()
    outages = [float(s) for s in args.outages.split(",")]
    with tempfile.TemporaryDirectory(prefix="ccb-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the unprivileged postgres user must traverse it
        cluster, postgres = start_postgres(root)
        url, embedder = start_embedder(root)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        stop(embedder)
        try:
            lines = asyncio.run(run(fresh_database(cluster, "bench_outage"), root, port, outages, args.chunks))
        finally:
            stop(postgres)
    config = EmbeddingWorkerConfig()
    settings = (
        f"shipped settings: max_attempts {config.max_attempts}, outage backoff {config.outage_backoff_base_s:g} s"
        f" doubling to {config.outage_backoff_max_s:g} s; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    header = f"{time.strftime('%Y-%m-%d %H:%M')} bench/embedder_outage.py {' '.join(sys.argv[1:])}\n{settings}\n"
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(header + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

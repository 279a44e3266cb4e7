"""Embedding throughput against a slow external OpenAI-compatible service, by embedding.concurrency.

    .venv/bin/python bench/external_embedder_concurrency.py [--chunks 480] [--latency-ms 200] [--batch-size 16]

Starts an embedded PostgreSQL in a temp dir and the tests' OpenAI-compatible fake (tests/embedding_service_fake.py)
with a fixed latency per request, so the two cores are not the limit: the service's latency is, as with a remote
TEI/vLLM or a cloud API. For each concurrency, queues `--chunks` distinct chunks and times one embedding worker loop
(the shipped embedding_worker settings: a claim of 8192 tokens, here ~100 chunks of 80 tokens) draining them; the
client splits each claim into requests of `--batch-size` texts with up to `concurrency` in flight. Writes the table to
bench/results/external_embedder.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_services import REPO, fresh_database, start_postgres, stop
from embedder_outage import count, queue_chunks
from embedding_service_fake import EmbeddingServiceFake

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database

DIMENSION = 8


async def one_run(db: Database, fake: EmbeddingServiceFake, concurrency: int, batch_size: int, chunks: int) -> str:
    await queue_chunks(db, chunks, concurrency)
    requests_before = len(fake.inputs_per_request)
    fake.peak_in_flight = 0
    async with EmbeddingClient(
        fake.url, batch_size=batch_size, concurrency=concurrency, send_input_type=False, timeout_s=600
    ) as client:
        worker = EmbeddingWorker(db, client, EmbeddingWorkerConfig())
        started = time.perf_counter()
        written = await worker.drain()
        elapsed = time.perf_counter() - started
    failed = await count(db, "embed_state <> 'embedded'")
    requests = len(fake.inputs_per_request) - requests_before
    return (
        f"concurrency {concurrency}: {written} chunks in {elapsed:6.2f} s = {written / elapsed:6.1f} chunks/s;"
        f" {requests} requests of <= {batch_size} texts, peak {fake.peak_in_flight} in flight, {failed} not embedded"
    )


async def run(dsn: str, latency_s: float, levels: list[int], batch_size: int, chunks: int) -> list[str]:
    lines = []
    with EmbeddingServiceFake(model="fake-embed-8", dimension=DIMENSION, latency_s=latency_s) as fake:
        async with Database(dsn, min_size=1, max_size=4) as db:
            await db.migrate(fake.model, DIMENSION)
            for concurrency in levels:
                lines.append(await one_run(db, fake, concurrency, batch_size, chunks))
                print(lines[-1], flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=480)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "external_embedder.txt")
    args = parser.parse_args()
    levels = [int(s) for s in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="ccb-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the unprivileged postgres user must traverse it
        cluster, postgres = start_postgres(root)
        try:
            dsn = fresh_database(cluster, "bench_external_embedder")
            lines = asyncio.run(run(dsn, args.latency_ms / 1000, levels, args.batch_size, args.chunks))
        finally:
            stop(postgres)
    settings = (
        f"fake service latency {args.latency_ms:g} ms per request, one worker loop, shipped embedding_worker settings;"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    header = f"{time.strftime('%Y-%m-%d %H:%M')} bench/external_embedder_concurrency.py {' '.join(sys.argv[1:])}\n"
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(header + settings + "\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""An embedding worker as its own process (one claim/embed loop), for the kill-mid-batch and two-process tests and
bench/embedding_scaling.py: `python worker_process.py DSN URL [--lease-s S] [--batch-tokens N]`.

Prints "worker listening" once NOTIFYs of newly queued chunks reach it; runs until killed."""

from __future__ import annotations

import argparse
import asyncio

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database


async def main(dsn: str, url: str, lease_s: float, batch_tokens: int) -> None:
    config = EmbeddingWorkerConfig.model_validate(
        {"workers": 1, "batch_tokens": batch_tokens, "lease_s": lease_s, "idle_poll_s": 0.2}
    )
    async with Database(dsn, min_size=1, max_size=3) as db, EmbeddingClient(url, timeout_s=60) as client:
        worker = EmbeddingWorker(db, client, config)
        await worker.start()
        await worker.wait_listening()
        print("worker listening", flush=True)
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dsn")
    parser.add_argument("url", help="the embedding service's /v1 base URL")
    parser.add_argument("--lease-s", type=float, default=30.0)
    parser.add_argument("--batch-tokens", type=int, default=128)
    args = parser.parse_args()
    asyncio.run(main(args.dsn, args.url, args.lease_s, args.batch_tokens))

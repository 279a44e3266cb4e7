"""An embedding worker as its own process, for the kill-mid-batch test: `python worker_process.py DSN URL LEASE_S`."""

from __future__ import annotations

import asyncio
import sys

from appliance.config import EmbeddingWorkerConfig
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database


async def main(dsn: str, url: str, lease_s: float) -> None:
    config = EmbeddingWorkerConfig.model_validate(
        {"workers": 1, "batch_tokens": 128, "lease_s": lease_s, "idle_poll_s": 0.2}
    )
    async with Database(dsn, min_size=1, max_size=3) as db, EmbeddingClient(url, timeout_s=60) as client:
        worker = EmbeddingWorker(db, client, config)
        await worker.start()
        print("worker running", flush=True)
        await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))

"""The status page's history: the sampler loop writes one row per interval, keeps at most `samples` rows, and the
samples show the queue filling and draining."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from engine_kit import PROSE, rows, scalar, write_source

from appliance.config import StatusHistoryConfig
from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.services.ingest import IngestService
from quart_app.services.status_history import StatusSampler, history
from quart_app.store import Database
from quart_app.store.status_history_store import record_sample

KEPT = 5


async def test_the_history_stays_bounded_while_the_sampler_runs(db: Database) -> None:
    config = StatusHistoryConfig(interval_s=0.1, samples=KEPT)
    loops = BackgroundLoops()
    status = loops.start(StatusSampler.LOOP_NAME, StatusSampler(db, config).run)
    counts: list[int] = []
    oldest = set()
    try:
        # four windows' worth of samples: without pruning there would be 20 rows
        while status.counters.get("samples", 0) < 4 * KEPT:
            counts.append(await scalar(db, "SELECT count(*) FROM status_history"))
            oldest.add(await scalar(db, "SELECT min(sampled_at) FROM status_history"))
            await asyncio.sleep(config.interval_s / 2)
    finally:
        await loops.close()
    assert status.state == "stopped" and status.counters["samples"] >= 4 * KEPT
    assert max(counts) <= KEPT, counts
    # late samples (a loaded machine) leave gaps, never extra rows
    assert 1 <= await scalar(db, "SELECT count(*) FROM status_history") <= KEPT
    # the window moved: the oldest row was dropped again and again
    assert len(oldest - {None}) > KEPT
    report = await history(db, config)
    assert report["samples_max"] == KEPT and len(report["at"]) == len(report["queue_depth"]) <= KEPT
    assert report["at"] == sorted(report["at"])


async def sample_at_next_interval(db: Database, interval: float, samples: int) -> None:
    """Record a sample 50 ms into the next interval (rows are one per interval)."""
    await asyncio.sleep(interval - time.time() % interval + 0.05)
    async with db.connection() as conn:
        await record_sample(conn, interval, samples)


async def test_samples_show_the_queue_filling_and_draining(
    db: Database, ingest: IngestService, embedding_client: EmbeddingClient, tmp_path: Path
) -> None:
    interval = 2.0
    config = StatusHistoryConfig(interval_s=interval, samples=100)
    await ingest.ingest([write_source(tmp_path, "files__default: 1", PROSE.format(topic="history"), ["alice"])])
    queued = await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'")
    # the first sample just after an interval starts, so every chunk the drain embeds falls inside the window of the
    # next interval's sample (a drain that ended just after a boundary was a whole interval old by then)
    await sample_at_next_interval(db, interval, config.samples)
    await EmbeddingWorker(db, embedding_client, EmbeddingWorkerConfig.model_validate({})).drain()
    await sample_at_next_interval(db, interval, config.samples)
    report = await history(db, config)
    assert report["queue_depth"] == [queued, 0] and queued > 0
    assert report["chunks_per_s"][0] == 0 and report["chunks_per_s"][1] > 0
    assert [row[0] for row in await rows(db, "SELECT span_s FROM status_history")] == [interval, interval]

"""The status page's history: a background loop samples throughput and queue depth; `history` reads them back."""

from __future__ import annotations

import logging
import time
from typing import Any

from appliance.config import StatusHistoryConfig
from quart_app.background_loops import LoopHandle, loop_detail
from quart_app.store import Database, StoreError
from quart_app.store.status_history_store import read_history, record_sample

log = logging.getLogger(__name__)

# samples land this long after an interval starts, so each one counts the interval that just ended
_AFTER_BOUNDARY_S = 0.05


class StatusSampler:
    """Run by BackgroundLoops as `status_history`: one sample per interval into the database, pruned as it goes."""

    LOOP_NAME = "status_history"

    def __init__(self, db: Database, config: StatusHistoryConfig) -> None:
        self._db = db
        self._config = config

    async def run(self, handle: LoopHandle) -> None:
        interval, samples = self._config.interval_s, self._config.samples
        running = f"a sample every {interval:g} s, the last {samples} kept"
        handle.status.set("running", running)
        while not handle.stopping.is_set():
            try:
                async with self._db.connection() as conn:
                    await record_sample(conn, interval, samples)
                handle.status.count("samples")
                handle.status.set("running", running)
            except StoreError as exc:
                # the database being away is no crash: the chart shows a gap and the next sample comes on time
                log.warning("status history: sample skipped: %s", exc)
                handle.status.set("waiting", loop_detail(exc, "sample skipped: "))
            await handle.sleep(interval - time.time() % interval + _AFTER_BOUNDARY_S)


async def history(db: Database, config: StatusHistoryConfig) -> dict[str, Any]:
    """The kept samples as columns (what the page's chart takes): epoch seconds, chunks per second, queue depth."""
    async with db.connection() as conn:
        samples = await read_history(conn)
    return {
        "interval_s": config.interval_s,
        "samples_max": config.samples,
        "at": [round(sample.at, 3) for sample in samples],
        "chunks_per_s": [round(sample.chunks_embedded / sample.span_s, 3) for sample in samples],
        "queue_depth": [sample.queue_depth for sample in samples],
    }

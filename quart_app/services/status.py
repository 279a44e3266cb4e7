"""Progress report: documents and chunks per state, failure reasons, queue depth, recent throughput and ETA; and the
database's own state, so a report without it can still say why."""

from __future__ import annotations

import time
from typing import Any

from quart_app.store import Database
from quart_app.store.database_outage import DatabaseOutage
from quart_app.store.status_store import THROUGHPUT_WINDOW_S, read_counts

# the report's parts read from PostgreSQL: null while it cannot be reached (GET /status answers the rest)
DATABASE_PARTS = ("documents", "chunks", "queue", "throughput", "eta_s", "embedding_model")

# below this span the rate is too noisy to extrapolate from
_MIN_SPAN_S = 1.0


async def status(db: Database) -> dict[str, Any]:
    """A JSON-ready snapshot; `eta_s` is None when nothing is queued or no recent throughput is known."""
    async with db.connection() as conn:
        counts = await read_counts(conn)
    queued = counts.chunks.get("queued", 0)
    rate = 0.0
    if counts.recent_embedded:
        rate = counts.recent_embedded / max(counts.recent_span_s, _MIN_SPAN_S)
    eta: float | None = None
    if queued == 0:
        eta = 0.0
    elif rate > 0:
        eta = round(queued / rate, 1)
    return {
        "documents": {
            "indexed": counts.documents.get("indexed", 0),
            "failed": counts.documents.get("failed", 0),
            "failure_reasons": counts.document_errors,
            "failed_sources": [{"source_id": s, "error": e} for s, e in counts.failed_documents],
        },
        "chunks": {
            "embedded": counts.chunks.get("embedded", 0),
            "queued": queued,
            "failed": counts.chunks.get("failed", 0),
            "failure_reasons": counts.chunk_errors,
        },
        "queue": {
            "depth": queued,
            "tokens": counts.queued_tokens,
            "due_now": counts.due_now,
            "in_progress": counts.leased,
        },
        "throughput": {
            "window_s": THROUGHPUT_WINDOW_S,
            "chunks_embedded": counts.recent_embedded,
            "chunks_per_s": round(rate, 2),
        },
        "eta_s": eta,
        "embedding_model": {"id": counts.model_id, "dimension": counts.dimension},
    }


def database_state(outage: DatabaseOutage | None, error: Exception | None = None) -> dict[str, Any]:
    """The `database` part of GET /status: available, or since when and why not (`error`: what the report's own
    reads just met, when the pool has not marked an outage, e.g. every connection busy)."""
    if outage is None and error is None:
        return {"state": "available", "unavailable_since": None, "last_error": None}
    since, reason = (outage.since, outage.reason) if outage is not None else (time.time(), str(error))
    return {"state": "unavailable", "unavailable_since": since, "last_error": reason}

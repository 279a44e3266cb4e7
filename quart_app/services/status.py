"""Progress report: documents and chunks per state, failure reasons, queue depth, recent throughput and ETA."""

from __future__ import annotations

from typing import Any

from quart_app.store import Database
from quart_app.store.status_store import THROUGHPUT_WINDOW_S, read_counts

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

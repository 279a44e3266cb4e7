"""SQL for the progress report: counts per state, failures, queue depth and recent embedding rate."""

from __future__ import annotations

from dataclasses import dataclass, field

from quart_app.store.database import Connection

THROUGHPUT_WINDOW_S = 60


@dataclass(slots=True)
class StoreCounts:
    """Raw figures the status service turns into its report."""

    documents: dict[str, int] = field(default_factory=dict)
    document_errors: dict[str, int] = field(default_factory=dict)
    failed_documents: list[tuple[str, str]] = field(default_factory=list)
    chunks: dict[str, int] = field(default_factory=dict)
    chunk_errors: dict[str, int] = field(default_factory=dict)
    queued_tokens: int = 0
    due_now: int = 0
    leased: int = 0
    recent_embedded: int = 0
    recent_span_s: float = 0.0
    model_id: str | None = None
    dimension: int | None = None


async def read_counts(conn: Connection, failed_limit: int = 50) -> StoreCounts:
    """One consistent snapshot of the store's progress figures."""
    counts = StoreCounts()
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cur = await conn.execute("SELECT state, count(*) FROM documents GROUP BY state")
        counts.documents = {row[0]: int(row[1]) for row in await cur.fetchall()}
        cur = await conn.execute(
            "SELECT coalesce(error, ''), count(*) FROM documents WHERE state = 'failed'"
            " GROUP BY 1 ORDER BY 2 DESC LIMIT 20"
        )
        counts.document_errors = {row[0]: int(row[1]) for row in await cur.fetchall()}
        cur = await conn.execute(
            "SELECT source_id, coalesce(error, '') FROM documents WHERE state = 'failed'"
            " ORDER BY updated_at DESC LIMIT %s",
            (failed_limit,),
        )
        counts.failed_documents = [(row[0], row[1]) for row in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT embed_state, count(*), coalesce(sum(token_count), 0),"
            " count(*) FILTER (WHERE next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())),"
            " count(*) FILTER (WHERE lease_until >= now())"
            " FROM chunks GROUP BY embed_state"
        )
        for state, number, tokens, due, leased in await cur.fetchall():
            counts.chunks[state] = int(number)
            if state == "queued":
                counts.queued_tokens, counts.due_now, counts.leased = int(tokens), int(due), int(leased)
        cur = await conn.execute(
            "SELECT coalesce(last_error, ''), count(*) FROM chunks WHERE embed_state = 'failed'"
            " GROUP BY 1 ORDER BY 2 DESC LIMIT 20"
        )
        counts.chunk_errors = {row[0]: int(row[1]) for row in await cur.fetchall()}
        cur = await conn.execute(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(embedded_at)), 0) FROM chunks"
            " WHERE embedded_at > now() - make_interval(secs => %s)",
            (THROUGHPUT_WINDOW_S,),
        )
        row = await cur.fetchone()
        if row is not None:
            counts.recent_embedded, counts.recent_span_s = int(row[0]), float(row[1])
        cur = await conn.execute("SELECT model_id, dimension FROM embedding_model")
        model = await cur.fetchone()
        if model is not None:
            counts.model_id, counts.dimension = model[0], int(model[1])
    return counts

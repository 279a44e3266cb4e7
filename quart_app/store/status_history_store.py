"""SQL for the status page's history: one sample per interval of throughput and queue depth, pruned as it goes."""

from __future__ import annotations

from dataclasses import dataclass

from quart_app.store.database import Connection


@dataclass(frozen=True, slots=True)
class HistorySample:
    """One row: when (epoch seconds), chunks embedded in the span before it, chunks queued at that moment."""

    at: float
    span_s: float
    chunks_embedded: int
    queue_depth: int


async def record_sample(conn: Connection, interval_s: float, samples: int) -> None:
    """Write this interval's sample (once, whichever process comes first) and drop what falls out of the window.

    Rows are keyed by the start of their interval, so at most `samples` intervals fit the window; rows after now
    (the clock stepped back) go too, so the bound holds whatever the clock does.
    """
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO status_history (sampled_at, span_s, chunks_embedded, queue_depth)"
            " SELECT date_bin(make_interval(secs => %(interval)s), now(), 'epoch'), %(interval)s,"
            " (SELECT count(*) FROM chunks WHERE embedded_at > now() - make_interval(secs => %(interval)s)),"
            " (SELECT count(*) FROM chunks WHERE embed_state = 'queued')"
            " ON CONFLICT (sampled_at) DO NOTHING",
            {"interval": interval_s},
        )
        await conn.execute(
            "DELETE FROM status_history WHERE sampled_at <= now() - make_interval(secs => %(window)s)"
            " OR sampled_at > now()",
            {"window": interval_s * samples},
        )


async def read_history(conn: Connection) -> list[HistorySample]:
    """Every kept sample, oldest first."""
    cur = await conn.execute(
        "SELECT extract(epoch FROM sampled_at), span_s, chunks_embedded, queue_depth FROM status_history"
        " ORDER BY sampled_at"
    )
    rows = await cur.fetchall()
    return [HistorySample(float(at), float(span), int(done), int(depth)) for at, span, done, depth in rows]

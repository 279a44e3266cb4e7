"""The embedding queue's order: a small file indexed after a big one is not queued behind all of the big one's chunks
(seen on a real Nextcloud 34: a 5 MB log of 5,110 chunks kept the four small files uploaded with it from the vector
leg for about 15 minutes, and in that time the log's chunks outranked the file a question was about)."""

from __future__ import annotations

from engine_kit import scalar

from quart_app.store import Database
from quart_app.store.document_store import ChunkRecord, DocumentRecord, write_indexed
from quart_app.store.queue_store import claim_batch


async def _write(db: Database, source_id: str, chunks: int) -> None:
    records = [ChunkRecord(i, f"{source_id} part {i}", 0, 10, f"{source_id}/{i}".encode()) for i in range(chunks)]
    doc = DocumentRecord(source_id, "files__default", source_id, "text/plain", 1, b"h" * 32, 1)
    async with db.connection() as conn:
        await write_indexed(conn, doc, records, ["alice"])


async def test_a_small_file_written_after_a_big_one_is_in_the_first_batch(db: Database) -> None:
    await _write(db, "files__default: 1", 200)
    await _write(db, "files__default: 2", 1)
    async with db.connection() as conn:
        claim = await claim_batch(conn, batch_tokens=100, lease_s=60.0)
    small = await scalar(db, "SELECT id FROM chunks WHERE source_id = 'files__default: 2'")
    assert len(claim.chunks) == 10
    assert small in [c.id for c in claim.chunks]


async def test_the_chunks_of_one_file_are_claimed_in_their_order(db: Database) -> None:
    await _write(db, "files__default: 1", 30)
    async with db.connection() as conn:
        first = await claim_batch(conn, batch_tokens=100, lease_s=60.0)
        second = await claim_batch(conn, batch_tokens=100, lease_s=60.0)
    for claim, expected in ((first, range(10)), (second, range(10, 20))):
        ids = [c.id for c in claim.chunks]
        assert await scalar(db, "SELECT array_agg(ordinal ORDER BY ordinal) FROM chunks WHERE id = ANY(%s)", ids) == [
            *expected
        ]

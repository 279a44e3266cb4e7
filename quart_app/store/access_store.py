"""SQL for access rows and deletions; a document nobody may read any more is removed with its chunks.

Every write here can touch a whole provider's rows, so it runs without statement_timeout (lock waits stay bounded).

Lock order: a transaction locks the `documents` rows it works on first, in source_id order, and only then their
access rows (and, through the cascade, their chunks), as an ingest does (document_store: its one document row, then
its chunks and access rows). A delete that took access rows first and the document second deadlocked with an ingest
re-indexing that document, and with a delete by source or provider that runs the other way round.
"""

from __future__ import annotations

from typing import Literal

from quart_app.store.database import Connection, lift_statement_timeout

# UPDATE when some of the documents may be deleted, KEY SHARE when access rows are only added (as the foreign key does)
LockMode = Literal["UPDATE", "KEY SHARE"]

_ORPHANS_AMONG = (
    "DELETE FROM documents d WHERE d.source_id = ANY(%s)"
    " AND NOT EXISTS (SELECT 1 FROM access a WHERE a.source_id = d.source_id)"
)


async def _lock_documents(conn: Connection, where: str, params: tuple[object, ...], mode: LockMode) -> list[str]:
    """Lock the documents matching `where` (a condition on `d`) in source_id order; returns their ids."""
    cur = await conn.execute(
        f"SELECT source_id FROM documents d WHERE {where} ORDER BY source_id FOR {mode}".encode(), params
    )
    return [row[0] for row in await cur.fetchall()]


async def existing_sources(conn: Connection, source_ids: list[str]) -> list[str]:
    """The ids among `source_ids` that are stored."""
    cur = await conn.execute("SELECT source_id FROM documents WHERE source_id = ANY(%s)", (source_ids,))
    return [row[0] for row in await cur.fetchall()]


async def allow(conn: Connection, user_ids: list[str], source_ids: list[str]) -> int:
    """Add read access for each user to each stored source; returns the rows added."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        locked = await _lock_documents(conn, "d.source_id = ANY(%s)", (source_ids,), "KEY SHARE")
        return await _add(conn, user_ids, locked)


async def deny(conn: Connection, user_ids: list[str], source_ids: list[str]) -> tuple[int, int]:
    """Remove the users' access to the sources, then drop sources left without readers: (rows, documents)."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        locked = await _lock_documents(conn, "d.source_id = ANY(%s)", (source_ids,), "UPDATE")
        return await _remove(conn, user_ids, locked)


async def allow_provider(conn: Connection, user_ids: list[str], provider: str) -> int:
    """Add read access for each user to every document of `provider`."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        locked = await _lock_documents(conn, "d.provider = %s", (provider,), "KEY SHARE")
        return await _add(conn, user_ids, locked)


async def deny_provider(conn: Connection, user_ids: list[str], provider: str) -> tuple[int, int]:
    """Remove the users' access to every document of `provider`, dropping documents left without readers."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        locked = await _lock_documents(conn, "d.provider = %s", (provider,), "UPDATE")
        return await _remove(conn, user_ids, locked)


async def declare(conn: Connection, user_ids: list[str], source_id: str) -> bool:
    """Exactly `user_ids` may read `source_id`; an empty list removes the document. False if it is not stored."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        cur = await conn.execute("SELECT 1 FROM documents WHERE source_id = %s FOR UPDATE", (source_id,))
        if await cur.fetchone() is None:
            return False
        await conn.execute("DELETE FROM access WHERE source_id = %s AND NOT (user_id = ANY(%s))", (source_id, user_ids))
        await conn.execute(
            "INSERT INTO access (user_id, source_id) SELECT DISTINCT u, %s FROM unnest(%s::text[]) AS u"
            " ON CONFLICT DO NOTHING",
            (source_id, user_ids),
        )
        await conn.execute(_ORPHANS_AMONG, ([source_id],))
    return True


async def delete_sources(conn: Connection, source_ids: list[str]) -> int:
    """Delete documents by id (chunks and access rows cascade)."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        locked = await _lock_documents(conn, "d.source_id = ANY(%s)", (source_ids,), "UPDATE")
        cur = await conn.execute("DELETE FROM documents WHERE source_id = ANY(%s)", (locked,))
    return cur.rowcount


async def delete_provider(conn: Connection, provider: str) -> int:
    """Delete every document of a provider."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        deleted = 0
        # a document of the provider stored meanwhile by another transaction is locked and deleted in a next round
        while locked := await _lock_documents(conn, "d.provider = %s", (provider,), "UPDATE"):
            cur = await conn.execute("DELETE FROM documents WHERE source_id = ANY(%s)", (locked,))
            deleted += cur.rowcount
    return deleted


async def delete_user(conn: Connection, user_id: str) -> tuple[int, int]:
    """Remove all access rows of a user and every document only that user could read: (rows, documents)."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        where = "d.source_id IN (SELECT a.source_id FROM access a WHERE a.user_id = %s)"
        rows = documents = 0
        # access granted meanwhile by another transaction (to a document not locked yet) goes in a next round
        while locked := await _lock_documents(conn, where, (user_id,), "UPDATE"):
            removed, orphans = await _remove(conn, [user_id], locked)
            rows, documents = rows + removed, documents + orphans
    return rows, documents


async def _add(conn: Connection, user_ids: list[str], locked: list[str]) -> int:
    """Add read access for each user to each of the `locked` documents; returns the rows added."""
    cur = await conn.execute(
        "INSERT INTO access (user_id, source_id)"
        " SELECT DISTINCT u, s FROM unnest(%s::text[]) AS u CROSS JOIN unnest(%s::text[]) AS s ON CONFLICT DO NOTHING",
        (user_ids, locked),
    )
    return cur.rowcount


async def _remove(conn: Connection, user_ids: list[str], locked: list[str]) -> tuple[int, int]:
    """Remove the users' access to the `locked` documents, then those left without readers: (rows, documents)."""
    cur = await conn.execute("DELETE FROM access WHERE source_id = ANY(%s) AND user_id = ANY(%s)", (locked, user_ids))
    removed = cur.rowcount
    orphans = await conn.execute(_ORPHANS_AMONG, (locked,))
    return removed, orphans.rowcount


async def delete_user_sources(conn: Connection, user_id: str, source_ids: list[str]) -> tuple[int, int]:
    """Remove one user's access to the given sources, dropping documents left without readers."""
    return await deny(conn, [user_id], source_ids)


async def delete_user_provider(conn: Connection, user_id: str, provider: str) -> tuple[int, int]:
    """Remove one user's access to every document of a provider, dropping documents left without readers."""
    return await deny_provider(conn, [user_id], provider)


async def stored_providers(conn: Connection) -> list[str]:
    """Every provider key of a stored document (indexed or failed)."""
    cur = await conn.execute("SELECT DISTINCT provider FROM documents ORDER BY provider")
    return [row[0] for row in await cur.fetchall()]


async def count_by_provider(conn: Connection) -> dict[str, int]:
    """Indexed documents per provider (failed ones are not counted as indexed)."""
    cur = await conn.execute(
        "SELECT provider, count(*) FROM documents WHERE state = 'indexed' GROUP BY provider ORDER BY provider"
    )
    return {row[0]: int(row[1]) for row in await cur.fetchall()}

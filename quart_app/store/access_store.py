"""SQL for access rows and deletions; a document nobody may read any more is removed with its chunks.

Every write here can touch a whole provider's rows, so it runs without statement_timeout (lock waits stay bounded).
"""

from __future__ import annotations

from quart_app.store.database import Connection, lift_statement_timeout

_ORPHANS_AMONG = (
    "DELETE FROM documents d WHERE d.source_id = ANY(%s)"
    " AND NOT EXISTS (SELECT 1 FROM access a WHERE a.source_id = d.source_id)"
)


async def existing_sources(conn: Connection, source_ids: list[str]) -> list[str]:
    """The ids among `source_ids` that are stored."""
    cur = await conn.execute("SELECT source_id FROM documents WHERE source_id = ANY(%s)", (source_ids,))
    return [row[0] for row in await cur.fetchall()]


async def allow(conn: Connection, user_ids: list[str], source_ids: list[str]) -> int:
    """Add read access for each user to each stored source; returns the rows added."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        cur = await conn.execute(
            "INSERT INTO access (user_id, source_id)"
            " SELECT DISTINCT u, d.source_id FROM unnest(%s::text[]) AS u CROSS JOIN documents d"
            " WHERE d.source_id = ANY(%s) ON CONFLICT DO NOTHING",
            (user_ids, source_ids),
        )
    return cur.rowcount


async def deny(conn: Connection, user_ids: list[str], source_ids: list[str]) -> tuple[int, int]:
    """Remove the users' access to the sources, then drop sources left without readers: (rows, documents)."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        cur = await conn.execute(
            "DELETE FROM access WHERE source_id = ANY(%s) AND user_id = ANY(%s)", (source_ids, user_ids)
        )
        removed = cur.rowcount
        orphans = await conn.execute(_ORPHANS_AMONG, (source_ids,))
    return removed, orphans.rowcount


async def allow_provider(conn: Connection, user_ids: list[str], provider: str) -> int:
    """Add read access for each user to every document of `provider`."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        cur = await conn.execute(
            "INSERT INTO access (user_id, source_id)"
            " SELECT DISTINCT u, d.source_id FROM unnest(%s::text[]) AS u CROSS JOIN documents d"
            " WHERE d.provider = %s ON CONFLICT DO NOTHING",
            (user_ids, provider),
        )
    return cur.rowcount


async def deny_provider(conn: Connection, user_ids: list[str], provider: str) -> tuple[int, int]:
    """Remove the users' access to every document of `provider`, dropping documents left without readers."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        cur = await conn.execute(
            "DELETE FROM access a USING documents d"
            " WHERE a.source_id = d.source_id AND d.provider = %s AND a.user_id = ANY(%s)",
            (provider, user_ids),
        )
        removed = cur.rowcount
        orphans = await conn.execute(
            "DELETE FROM documents d WHERE d.provider = %s"
            " AND NOT EXISTS (SELECT 1 FROM access a WHERE a.source_id = d.source_id)",
            (provider,),
        )
    return removed, orphans.rowcount


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
        cur = await conn.execute("DELETE FROM documents WHERE source_id = ANY(%s)", (source_ids,))
    return cur.rowcount


async def delete_provider(conn: Connection, provider: str) -> int:
    """Delete every document of a provider."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        cur = await conn.execute("DELETE FROM documents WHERE provider = %s", (provider,))
    return cur.rowcount


async def delete_user(conn: Connection, user_id: str) -> tuple[int, int]:
    """Remove all access rows of a user and every document only that user could read: (rows, documents)."""
    async with conn.transaction():
        await lift_statement_timeout(conn)
        cur = await conn.execute("DELETE FROM access WHERE user_id = %s RETURNING source_id", (user_id,))
        source_ids = [row[0] for row in await cur.fetchall()]
        orphans = await conn.execute(_ORPHANS_AMONG, (source_ids,))
    return len(source_ids), orphans.rowcount


async def delete_user_sources(conn: Connection, user_id: str, source_ids: list[str]) -> tuple[int, int]:
    """Remove one user's access to the given sources, dropping documents left without readers."""
    return await deny(conn, [user_id], source_ids)


async def delete_user_provider(conn: Connection, user_id: str, provider: str) -> tuple[int, int]:
    """Remove one user's access to every document of a provider, dropping documents left without readers."""
    return await deny_provider(conn, [user_id], provider)


async def count_by_provider(conn: Connection) -> dict[str, int]:
    """Indexed documents per provider (failed ones are not counted as indexed)."""
    cur = await conn.execute(
        "SELECT provider, count(*) FROM documents WHERE state = 'indexed' GROUP BY provider ORDER BY provider"
    )
    return {row[0]: int(row[1]) for row in await cur.fetchall()}

"""SQL for the enabled flag every app replica shares (one row, written by PUT /enabled on any of them)."""

from __future__ import annotations

from quart_app.store.database import Connection


async def read_enabled(conn: Connection) -> bool | None:
    """The shared flag; None until a replica has written it."""
    cur = await conn.execute("SELECT enabled FROM app_enabled")
    row = await cur.fetchone()
    return None if row is None else bool(row[0])


async def write_enabled(conn: Connection, enabled: bool) -> None:
    await conn.execute(
        "INSERT INTO app_enabled (enabled) VALUES (%s)"
        " ON CONFLICT (singleton) DO UPDATE SET enabled = EXCLUDED.enabled, changed_at = now()",
        (enabled,),
    )

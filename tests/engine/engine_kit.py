"""Helpers shared by the engine tests: writing source files and reading the store back."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from local_ports import free_port as free_port  # re-exported for the tests of this folder

from quart_app.chunking.chunker import TokenChunker
from quart_app.services.ingest import IncomingSource
from quart_app.store import Database
from quart_app.store.document_store import ChunkRecord, DocumentRecord, write_indexed

PROSE = (
    "Nextcloud stores files on your own server. The Assistant answers questions about them.\n\n"
    "Context Chat indexes every document a user can read and keeps an access list per document.\n\n"
    "A paragraph about {topic}: the quick brown fox jumps over the lazy dog while the {topic} keeps going on "
    "and on, with enough words to fill a chunk of sixty-four tokens or so, and then a few more words.\n\n"
    "Another paragraph about {topic} closes the document with a short summary of what was said."
)


def write_source(
    directory: Path,
    source_id: str,
    content: bytes | str,
    users: list[str],
    mimetype: str = "text/plain",
    modified: int = 1_700_000_000,
    provider: str = "files__default",
) -> IncomingSource:
    """A source file on disk as the spool would leave it."""
    data = content.encode() if isinstance(content, str) else content
    path = directory / source_id.replace(":", "_").replace(" ", "")
    path.write_bytes(data)
    return IncomingSource(source_id, users, f"title of {source_id}", mimetype, modified, provider, path, len(data))


async def rows(db: Database, query: str, *params: object) -> list[tuple[Any, ...]]:
    """All rows of a query (tests read the store back with plain SQL)."""
    async with db.connection() as conn:
        cur = await conn.execute(query.encode(), params or None)
        return list(await cur.fetchall())


async def scalar(db: Database, query: str, *params: object) -> Any:
    """The first column of the first row."""
    result = await rows(db, query, *params)
    return result[0][0]


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


async def seed_documents(db: Database, chunker: TokenChunker, documents: int, prefix: str = "doc") -> int:
    """Write documents of PROSE straight through the store (no parsing), chunks queued; returns the chunk count."""
    total = 0
    async with db.connection() as conn:
        for n in range(documents):
            text = PROSE.format(topic=f"{prefix} number {n}")
            chunks = [
                ChunkRecord(i, c.text, c.start, c.token_count, text_hash(c.text))
                for i, c in enumerate(chunker.split(text, "text/plain"))
            ]
            doc = DocumentRecord(f"files__default: {n}", "files__default", "t", "text/plain", 1, text_hash(text), 1)
            total += (await write_indexed(conn, doc, chunks, ["alice"])).chunks
    return total

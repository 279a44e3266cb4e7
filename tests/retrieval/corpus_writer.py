"""Test data written with plain SQL: documents, chunks (embedded with the real model, or left queued), access."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from quart_app.store.database import Database
from quart_app.store.search_filters import vector_literal


class PassageEmbedder(Protocol):
    """The main model's passage vectors, computed at once (MiniLmEmbedder, or a test's other main model)."""

    def embed_sync(self, texts: list[str]) -> npt.NDArray[np.float32]: ...


class Corpus:
    """Writes documents, chunks (embedded with the real model, or left queued) and access rows with plain SQL."""

    def __init__(self, db: Database, embedder: PassageEmbedder) -> None:
        self.db = db
        self.embedder = embedder

    async def add(
        self,
        source_id: str,
        texts: Sequence[str],
        users: Sequence[str],
        *,
        title: str | None = None,
        provider: str = "files__default",
        embedded: bool = True,
        starts: Sequence[int] | None = None,
    ) -> list[int]:
        """`starts`: each chunk's character offset in its document (default 0 for all)."""
        vectors = self.embedder.embed_sync(list(texts)) if embedded else None
        async with self.db.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO documents (source_id, provider, title, mimetype, modified, content_hash, size, state)"
                " VALUES (%s, %s, %s, 'text/plain', 1700000000, %s, %s, 'indexed')",
                (
                    source_id,
                    provider,
                    title or source_id,
                    hashlib.sha256("".join(texts).encode()).digest(),
                    sum(map(len, texts)),
                ),
            )
            ids: list[int] = []
            for ordinal, text in enumerate(texts):
                embedding = None if vectors is None else vector_literal(vectors[ordinal])
                row = await (
                    await conn.execute(
                        "INSERT INTO chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash,"
                        " embedding, embed_state) VALUES (%s, 1, %s, %s, %s, %s, %s, %s::vector, %s) RETURNING id",
                        (
                            source_id,
                            ordinal,
                            text,
                            0 if starts is None else starts[ordinal],
                            len(text.split()),
                            hashlib.sha256(text.encode()).digest(),
                            embedding,
                            "queued" if vectors is None else "embedded",
                        ),
                    )
                ).fetchone()
                assert row is not None
                ids.append(int(row[0]))
            for user in users:
                await conn.execute("INSERT INTO access (user_id, source_id) VALUES (%s, %s)", (user, source_id))
        return ids

    async def grant(self, user: str, source_id: str) -> None:
        async with self.db.connection() as conn:
            await conn.execute("INSERT INTO access (user_id, source_id) VALUES (%s, %s)", (user, source_id))

    async def revoke(self, user: str, source_id: str) -> None:
        async with self.db.connection() as conn:
            await conn.execute("DELETE FROM access WHERE user_id = %s AND source_id = %s", (user, source_id))

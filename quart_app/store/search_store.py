"""Retrieval SQL: vector leg (pgvector HNSW or exact) and lexical leg (full-text), both ACL- and scope-filtered."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import AsyncConnection, sql

from quart_app.store.errors import StoreError
from quart_app.store.known_words import KnownWords, index_word_share, known_word_share
from quart_app.store.lexical_query import LexicalTerms, lexical_rows
from quart_app.store.search_filters import Scope, access_filter, chunk_filter, text_array, vector_literal

log = logging.getLogger(__name__)

# pgvector rejects larger hnsw.ef_search values
HNSW_MAX_EF_SEARCH = 1000


class ConnectionSource(Protocol):
    """Anything that lends out a psycopg async connection (the store's Database, or a test shim)."""

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]: ...


@dataclass(frozen=True, slots=True)
class Hit:
    """One candidate chunk from one leg, in that leg's rank order (score: distance or text rank)."""

    chunk_id: int
    source_id: str
    score: float

    def standing(self) -> tuple[float, ...]:
        """What the leg ranks by: hits of one leg with equal standings rank equal (rank_fusion.tied_ranks)."""
        return (self.score,)


@dataclass(frozen=True, slots=True)
class LexicalHit(Hit):
    """A full-text hit (score: its text rank, below 1) and how many of the question's identifiers and deciding words
    its chunk holds, which the leg ranks by first (lexical_query.LexicalRow); and of the deciding words those outside
    the identifiers (lexical_query.words_outside), `outside_terms` naming them."""

    identifiers: int
    words: int
    outside_words: int
    outside_terms: tuple[str, ...] = ()

    def standing(self) -> tuple[float, ...]:
        return (self.identifiers, self.words, self.score)


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """The text of a chunk and its document, for prompts and doc search."""

    chunk_id: int
    source_id: str
    title: str
    text: str
    start: int  # character offset in the document's text


@dataclass(frozen=True, slots=True)
class VectorTable:
    """Where a vector leg's vectors live: the FROM clause that joins them to chunk `c`, and the vector column."""

    source: sql.Composable
    vector: sql.Composable


# the embedding model's vectors, on the chunk rows themselves
CHUNK_VECTORS = VectorTable(sql.SQL("chunks c"), sql.SQL("c.embedding"))
# the multilingual model's vectors of the same chunks (retrieval.cross_lingual, migration 0008)
CROSS_LINGUAL_VECTORS = VectorTable(
    sql.SQL("cross_lingual_vectors x JOIN chunks c ON c.id = x.chunk_id"), sql.SQL("x.embedding")
)


class SearchStore:
    """Read-only queries over documents/chunks/access; every query filters by user and scope in SQL."""

    def __init__(self, db: ConnectionSource) -> None:
        self._db = db

    async def titles(self, user_id: str, source_ids: list[str]) -> dict[str, str]:
        """Titles of the given documents that the user may read (sources of an answer, for enrich_sources)."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "SELECT d.source_id, d.title FROM documents d JOIN access a ON a.source_id = d.source_id"
                " WHERE a.user_id = %s AND d.source_id = ANY(%s)",
                (user_id, source_ids),
            )
            return {row[0]: row[1] for row in await cur.fetchall()}

    async def estimated_chunks(self) -> int:
        """All users' chunks as PostgreSQL last estimated them (pg_class.reltuples: read, not counted; 0 before the
        table's first ANALYZE)."""
        async with self._db.connection() as conn:
            row = await (
                await conn.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'chunks'::regclass")
            ).fetchone()
        return int(row[0]) if row else 0

    async def count_accessible_chunks(self, user_id: str, scope: Scope | None, cap: int) -> int:
        """Chunks (embedded or queued) the user may read within the scope, counted up to `cap`.

        Driven from the user's access rows through the (source_id, version) index, so the cost is bounded by `cap`
        and no chunk row (with its vector) is read; it decides between the exact and the HNSW path.
        """
        _, params = chunk_filter(user_id, scope)
        query = sql.SQL(
            "SELECT count(*) FROM (SELECT 1 FROM access a JOIN chunks c ON c.source_id = a.source_id"
            " WHERE {readable} LIMIT %(cap)s) s"
        ).format(readable=access_filter(scope))
        async with self._db.connection() as conn:
            row = await (await conn.execute(query, {**params, "cap": cap})).fetchone()
        return int(row[0]) if row else 0

    async def vector_search(
        self,
        user_id: str,
        embedding: Sequence[float],
        limit: int,
        scope: Scope | None = None,
        *,
        exact: bool = False,
        ef_search: int = 100,
        table: VectorTable = CHUNK_VECTORS,
    ) -> list[Hit]:
        """Nearest chunks by cosine distance in `table`; HNSW with iterative scan (the ACL filter cannot starve it) or
        exact."""
        where, params = chunk_filter(user_id, scope)
        params.update(q=vector_literal(embedding), limit=limit)
        if exact:
            # OFFSET 0 fences the subquery: the sort cannot use the HNSW index, so the user's rows (reached through
            # the access rows and the source_id index) are scanned and ordered exactly
            query = sql.SQL(
                "SELECT id, source_id, distance FROM (SELECT c.id, c.source_id, {v} <=> %(q)s::vector AS"
                " distance FROM {source} WHERE {v} IS NOT NULL AND {where} OFFSET 0) s"
                " ORDER BY distance LIMIT %(limit)s"
            ).format(v=table.vector, source=table.source, where=where)
        else:
            query = sql.SQL(
                "SELECT c.id, c.source_id, {v} <=> %(q)s::vector AS distance FROM {source}"
                " WHERE {v} IS NOT NULL AND {where} ORDER BY {v} <=> %(q)s::vector LIMIT %(limit)s"
            ).format(v=table.vector, source=table.source, where=where)
        async with self._db.connection() as conn, conn.transaction():
            if not exact:
                try:
                    await conn.execute(sql.SQL("SET LOCAL hnsw.iterative_scan = relaxed_order"))
                except psycopg.errors.ProgrammingError as exc:
                    raise StoreError(
                        f"the database's pgvector has no hnsw.iterative_scan ({exc.sqlstate}); ACL-filtered search"
                        " needs pgvector >= 0.8.0: run ALTER EXTENSION vector UPDATE on the external database"
                    ) from exc
                ef = min(max(int(ef_search), 1), HNSW_MAX_EF_SEARCH)
                await conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(ef)))
            rows = await (await conn.execute(query, params)).fetchall()
        # relaxed_order returns neighbours slightly out of order; an outer ORDER BY in SQL is dropped by the planner
        # (it believes the rows are already sorted by that expression), so sort here
        hits = [Hit(int(r[0]), str(r[1]), float(r[2])) for r in rows]
        return sorted(hits, key=lambda h: (h.score, h.chunk_id))

    async def known_word_share(self, user_id: str, question: str, scope: Scope | None = None) -> KnownWords | None:
        """The share of the question's words the user's chunks (in the scope) hold; see known_words.known_word_share."""
        async with self._db.connection() as conn:
            return await known_word_share(conn, user_id, question, scope)

    async def index_word_share(self, words: Sequence[str]) -> float:
        """The share of a question's words (KnownWords.words) some chunk of the whole index holds; see
        known_words.index_word_share."""
        async with self._db.connection() as conn:
            return await index_word_share(conn, words)

    async def lexical_search(
        self, user_id: str, terms: LexicalTerms, limit: int, scope: Scope | None = None
    ) -> list[LexicalHit]:
        """Full-text matches ('simple' parser: no stemming, any language), best first.

        A chunk qualifies when it contains at least half of the question's informative words (minimum-should-match, so a
        question sharing one common word with a chunk is not a lexical hit; a word in COMMON_WORD_SHARE of the user's
        chunks is not informative, whatever its language; only the MAX_MATCH_WORDS rarest count) or any identifier
        (`trusted_domains`, `files:scan`). Rank: identifiers, then words held, then ts_rank_cd (lexical_query).
        """
        if not terms.words and not terms.identifiers:
            return []
        where, params = chunk_filter(user_id, scope)
        async with self._db.connection() as conn:
            rows = await lexical_rows(conn, where, access_filter(scope), params, terms, limit)
        return [
            LexicalHit(
                row.chunk_id,
                row.source_id,
                row.text_rank,
                row.identifiers,
                row.words,
                row.outside_words,
                row.outside_terms,
            )
            for row in rows
        ]

    async def fetch_chunks(self, user_id: str, chunk_ids: Sequence[int]) -> dict[int, ChunkRow]:
        """Text and title of the given chunks, re-checked against the user's access rows at read time."""
        if not chunk_ids:
            return {}
        query = sql.SQL(
            "SELECT c.id, c.source_id, d.title, c.text, c.start_offset FROM chunks c"
            " JOIN documents d ON d.source_id = c.source_id WHERE c.id = ANY(%(ids)s) AND {where}"
        ).format(where=chunk_filter(user_id, None)[0])
        async with self._db.connection() as conn:
            rows = await (await conn.execute(query, {"ids": list(chunk_ids), "user_id": user_id})).fetchall()
        return {int(r[0]): ChunkRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows}

    async def documents_named(
        self, user_id: str, names: Sequence[str], limit: int, scope: Scope | None = None
    ) -> list[Hit]:
        """The first chunk of each document the user may read whose file name (the title's last path part, any case,
        leading dots dropped) is one of `names`."""
        if not names:
            return []
        where, params = chunk_filter(user_id, scope)
        query = sql.SQL(
            "SELECT DISTINCT ON (c.source_id) c.id, c.source_id FROM documents d JOIN chunks c"
            " ON c.source_id = d.source_id WHERE ltrim(regexp_replace(lower(d.title), '^.*/', ''), '.')"
            " = ANY(%(names)s::text[]) AND {where} ORDER BY c.source_id, c.ordinal LIMIT %(limit)s"
        ).format(where=where)
        async with self._db.connection() as conn:
            rows = await (await conn.execute(query, {**params, "names": text_array(names), "limit": limit})).fetchall()
        return [Hit(int(r[0]), str(r[1]), 0.0) for r in rows]

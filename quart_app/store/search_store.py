"""Retrieval SQL: vector leg (pgvector HNSW or exact) and lexical leg (full-text), both ACL- and scope-filtered."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import psycopg
from psycopg import AsyncConnection, sql

from quart_app.store.errors import StoreError
from quart_app.store.lexical_query import (
    DIRECT_SCAN_BELOW,
    LexicalTerms,
    lexical_rows,
    own_chunks,
    tsquery_literal,
)

log = logging.getLogger(__name__)

ScopeType = Literal["provider", "source"]

# pgvector rejects larger hnsw.ef_search values
HNSW_MAX_EF_SEARCH = 1000


class ConnectionSource(Protocol):
    """Anything that lends out a psycopg async connection (the store's Database, or a test shim)."""

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]: ...


@dataclass(frozen=True, slots=True)
class Scope:
    """A search restricted to some providers or to some source ids (folders arrive already expanded)."""

    kind: ScopeType
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    """One candidate chunk from one leg, in that leg's rank order (score: distance or text rank)."""

    chunk_id: int
    source_id: str
    score: float


@dataclass(frozen=True, slots=True)
class KnownWords:
    """What the cross-lingual gate saw: the share of the question's words the user's chunks hold, and how many of
    those chunks it read (up to DIRECT_SCAN_BELOW: a user of a few chunks holds few words of any language)."""

    share: float
    chunks_read: int


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
# a question word shorter than this says little about the language it is in
KNOWN_WORD_MIN_CHARS = 3
# nor does a single word: a name or identifier (`PackageLoader`, a lexeme of the documents only as part of
# `jinja2.PackageLoader`) is as unknown to them as a foreign word
KNOWN_WORD_MIN_WORDS = 2
# the share is judged on at most this many of the question's words (alphabetically first: a sample unbiased as to
# length)
KNOWN_WORD_SAMPLE = 16
# a bigger user's word that none of their first DIRECT_SCAN_BELOW chunks hold is looked up in the GIN index: known when
# one of the first this many chunks holding it is theirs, unknown when fewer hold it (a bound on what other users'
# chunks cost)
KNOWN_WORD_HOLDERS = 1000
# a word this many chunks of other users hold ahead of the user's is looked for in the user's own first this many
# chunks (a bound on the gate's reads; past it the word counts as unknown)
KNOWN_WORD_SCAN = 50_000


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form; works whether or not the connection registered the vector type."""
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


def text_array(values: Sequence[str]) -> str:
    """A text[] in PostgreSQL's array syntax, sent as one parameter: psycopg dumps a Python list element by element
    in Python, on the event loop (100 ms for a scope of 20,000 source ids, three times per query)."""
    quoted = ('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values)
    return "{" + ",".join(quoted) + "}"


def _filters(user_id: str, scope: Scope | None) -> tuple[sql.Composable, dict[str, Any]]:
    """The WHERE fragment restricting chunk `c` to the user's access rows and the scope, as array parameters."""
    parts: list[sql.Composable] = [
        sql.SQL("EXISTS (SELECT 1 FROM access a WHERE a.user_id = %(user_id)s AND a.source_id = c.source_id)")
    ]
    params: dict[str, Any] = {"user_id": user_id}
    if scope is not None and scope.kind == "provider":
        parts.append(
            sql.SQL(
                "EXISTS (SELECT 1 FROM documents d WHERE d.source_id = c.source_id"
                " AND d.provider = ANY(%(scope)s::text[]))"
            )
        )
        params["scope"] = text_array(scope.values)
    elif scope is not None:
        parts.append(sql.SQL("c.source_id = ANY(%(scope)s::text[])"))
        params["scope"] = text_array(scope.values)
    return sql.SQL(" AND ").join(parts), params


async def _held_words(
    conn: AsyncConnection[Any], scope: Scope | None, params: dict[str, Any], words: Sequence[str], chunks: int
) -> tuple[int, list[bool]]:
    """How many of the user's chunks (in the scope) were read, at most `chunks`, and for each of `words` whether one
    of them holds it; the chunks come through the user's access rows (own_chunks), so no other user's count."""
    lexemes = {f"w{n}": tsquery_literal(word) for n, word in enumerate(words)}
    # each tsvector decompressed once (|| '')
    held = sql.SQL(", ").join(sql.SQL("bool_or(m.tsv @@ {}::tsquery)").format(sql.Placeholder(key)) for key in lexemes)
    cur = await conn.execute(
        sql.SQL(
            "WITH m AS MATERIALIZED (SELECT c.tsv || ''::tsvector AS tsv {own} LIMIT %(chunks)s)"
            " SELECT count(*), {held} FROM m"
        ).format(own=own_chunks(_readable(scope), "c.tsv"), held=held),
        {**params, **lexemes, "chunks": chunks},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), [bool(found) for found in row[1:]]


async def _held_by_holders(
    conn: AsyncConnection[Any], where: sql.Composable, params: dict[str, Any], words: Sequence[str]
) -> list[bool | None]:
    """For each of `words`, from the first KNOWN_WORD_HOLDERS chunks the GIN index gives for it: True when one the user
    may read (`where`) holds it, False when none does and fewer chunks hold it at all, None when that many other
    chunks hold it (undecided: the user's may come later in the index).

    Planned freely, a word no chunk holds was looked for in every chunk (EXISTS makes the planner expect a holder
    within the first rows): the chunks come from the index alone (no other scan allowed)."""
    lexemes = {f"w{n}": tsquery_literal(word) for n, word in enumerate(words)}
    probes = sql.SQL(" UNION ALL ").join(
        sql.SQL(
            "SELECT {n}, count(*), bool_or({where}) FROM"
            " (SELECT c.source_id FROM chunks c WHERE c.tsv @@ {word}::tsquery LIMIT {holders}) c"
        ).format(n=sql.Literal(n), word=sql.Placeholder(key), holders=sql.Literal(KNOWN_WORD_HOLDERS), where=where)
        for n, key in enumerate(lexemes)
    )
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("SET LOCAL enable_indexscan = off")
        rows = await (await conn.execute(probes, {**params, **lexemes})).fetchall()
    found: dict[int, bool | None] = {}
    for n, holders, readable in rows:
        found[n] = True if readable else (False if holders < KNOWN_WORD_HOLDERS else None)
    return [found[n] for n in range(len(words))]


async def _question_words(conn: AsyncConnection[Any], question: str) -> list[str]:
    """The question's distinct words of KNOWN_WORD_MIN_CHARS or more, as the 'simple' parser makes them, at most
    KNOWN_WORD_SAMPLE."""
    cur = await conn.execute(
        "SELECT w FROM unnest(tsvector_to_array(to_tsvector('simple', %s))) AS w WHERE char_length(w) >= %s",
        (question, KNOWN_WORD_MIN_CHARS),
    )
    return sorted(str(row[0]) for row in await cur.fetchall())[:KNOWN_WORD_SAMPLE]


def _readable(scope: Scope | None) -> sql.Composable:
    """The WHERE fragment restricting access row `a` to the user and the scope (parameters as _filters')."""
    if scope is not None and scope.kind == "provider":
        return sql.SQL(
            "a.user_id = %(user_id)s AND EXISTS (SELECT 1 FROM documents d WHERE d.source_id = a.source_id"
            " AND d.provider = ANY(%(scope)s::text[]))"
        )
    if scope is not None:
        return sql.SQL("a.user_id = %(user_id)s AND a.source_id = ANY(%(scope)s::text[])")
    return sql.SQL("a.user_id = %(user_id)s")


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
        _, params = _filters(user_id, scope)
        query = sql.SQL(
            "SELECT count(*) FROM (SELECT 1 FROM access a JOIN chunks c ON c.source_id = a.source_id"
            " WHERE {readable} LIMIT %(cap)s) s"
        ).format(readable=_readable(scope))
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
        where, params = _filters(user_id, scope)
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
        """The share of the question's distinct words (KNOWN_WORD_MIN_CHARS or longer, as the 'simple' parser makes
        them; at most KNOWN_WORD_SAMPLE) that occur in a chunk the user may read (in the scope): near 1 for a question
        in the language of the user's documents, far lower in another. None for a question with fewer than
        KNOWN_WORD_MIN_WORDS such words.

        Only the user's chunks count: whether a word occurs in somebody else's documents must not change what the
        user gets. The user's first DIRECT_SCAN_BELOW chunks are read once for all the words, as the lexical leg reads
        a small user's: exact for most users. A bigger user's words that none of those hold are looked up in the index
        (_held_by_holders, bounded); one that more than KNOWN_WORD_HOLDERS chunks of other users hold ahead of the
        user's is then looked for in the user's own first KNOWN_WORD_SCAN chunks (such a word used to count as unknown:
        other users' documents made the user's question look foreign). Only that scan's time tells that other users
        hold a word often."""
        async with self._db.connection() as conn:
            words = await _question_words(conn, question)
            if len(words) < KNOWN_WORD_MIN_WORDS:
                return None
            where, params = _filters(user_id, scope)
            read, held = await _held_words(conn, scope, params, words, DIRECT_SCAN_BELOW)
            known = [word for word, found in zip(words, held, strict=True) if found]
            missing = [word for word in words if word not in known]
            if read < DIRECT_SCAN_BELOW or not missing:
                return KnownWords(len(known) / len(words), read)
            probed = await _held_by_holders(conn, where, params, missing)
            known += [word for word, found in zip(missing, probed, strict=True) if found]
            undecided = [word for word, found in zip(missing, probed, strict=True) if found is None]
            if undecided:
                _, held = await _held_words(conn, scope, params, undecided, KNOWN_WORD_SCAN)
                known += [word for word, found in zip(undecided, held, strict=True) if found]
        return KnownWords(len(known) / len(words), read)

    async def index_word_share(self, question: str) -> float | None:
        """The share of the question's words (as known_word_share takes them) that some chunk of the whole index holds,
        whoever may read it; None for too few words. It decides only how much of the index the cross-lingual backfill
        fills in, never what a user gets: no answer depends on other users' documents.

        A word among the lexemes ANALYZE found most common is held; any other is looked up in the GIN index (a bitmap of
        every chunk holding it: 20 ms p50 at 50,000 chunks for common words, looked up)."""
        async with self._db.connection() as conn:
            words = await _question_words(conn, question)
            if len(words) < KNOWN_WORD_MIN_WORDS:
                return None
            row = await (
                await conn.execute(
                    "SELECT most_common_elems::text::text[] FROM pg_stats"
                    " WHERE schemaname = current_schema() AND tablename = 'chunks' AND attname = 'tsv'"
                )
            ).fetchone()
            rare = [word for word in words if row is None or row[0] is None or word not in row[0]]
            if not rare:
                return 1.0
            lexemes = {f"w{n}": tsquery_literal(word) for n, word in enumerate(rare)}
            probes = sql.SQL(", ").join(
                sql.SQL("EXISTS (SELECT 1 FROM chunks c WHERE c.tsv @@ {}::tsquery)").format(sql.Placeholder(key))
                for key in lexemes
            )
            async with conn.transaction():
                # as _held_by_holders: the chunks come from the GIN index alone, never from a scan of every chunk
                await conn.execute("SET LOCAL enable_seqscan = off")
                await conn.execute("SET LOCAL enable_indexscan = off")
                held = await (await conn.execute(sql.SQL("SELECT {}").format(probes), lexemes)).fetchone()
        assert held is not None
        return (len(words) - len(rare) + sum(bool(found) for found in held)) / len(words)

    async def lexical_search(
        self, user_id: str, terms: LexicalTerms, limit: int, scope: Scope | None = None
    ) -> list[Hit]:
        """Full-text matches ('simple' parser: no stemming, any language), best first.

        A chunk qualifies when it contains at least half of the question's informative words (minimum-should-match, so a
        question sharing one common word with a chunk is not a lexical hit; a word in COMMON_WORD_SHARE of the user's
        chunks is not informative, whatever its language; only the MAX_MATCH_WORDS rarest count) or any identifier
        (`trusted_domains`, `files:scan`). Rank: identifiers, then words held, then ts_rank_cd (lexical_query).
        """
        if not terms.words and not terms.identifiers:
            return []
        where, params = _filters(user_id, scope)
        async with self._db.connection() as conn:
            rows = await lexical_rows(conn, where, _readable(scope), params, terms, limit)
        return [Hit(chunk_id, source_id, rank) for chunk_id, source_id, rank in rows]

    async def fetch_chunks(self, user_id: str, chunk_ids: Sequence[int]) -> dict[int, ChunkRow]:
        """Text and title of the given chunks, re-checked against the user's access rows at read time."""
        if not chunk_ids:
            return {}
        query = sql.SQL(
            "SELECT c.id, c.source_id, d.title, c.text, c.start_offset FROM chunks c"
            " JOIN documents d ON d.source_id = c.source_id WHERE c.id = ANY(%(ids)s) AND {where}"
        ).format(where=_filters(user_id, None)[0])
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
        where, params = _filters(user_id, scope)
        query = sql.SQL(
            "SELECT DISTINCT ON (c.source_id) c.id, c.source_id FROM documents d JOIN chunks c"
            " ON c.source_id = d.source_id WHERE ltrim(regexp_replace(lower(d.title), '^.*/', ''), '.')"
            " = ANY(%(names)s::text[]) AND {where} ORDER BY c.source_id, c.ordinal LIMIT %(limit)s"
        ).format(where=where)
        async with self._db.connection() as conn:
            rows = await (await conn.execute(query, {**params, "names": text_array(names), "limit": limit})).fetchall()
        return [Hit(int(r[0]), str(r[1]), 0.0) for r in rows]

"""Retrieval SQL: vector leg (pgvector HNSW or exact) and lexical leg (full-text), both ACL- and scope-filtered."""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import re
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import psycopg
from psycopg import AsyncConnection, sql

from quart_app.store.errors import StoreError

log = logging.getLogger(__name__)

ScopeType = Literal["provider", "source"]

# a raw query term that looks like an identifier (trusted_domains, files:scan, config.php, --all)
# identifiers: runs of word characters and _ : . / -, joining word characters with one of those; two linear passes
# (a single pattern with nested quantifiers backtracked quadratically: a 40,000-character word froze the loop 18 s)
_TOKEN = re.compile(r"[\w:./\-]+")
_JOINED = re.compile(r"\w[_:./\-]\w")
_WORD = re.compile(r"\w+")
# added to a chunk's lexical rank per identifier phrase it contains: more than any count of plain words
IDENTIFIER_BONUS = 100.0
# pgvector rejects larger hnsw.ef_search values
HNSW_MAX_EF_SEARCH = 1000
# share of the meaningful query words a chunk must contain to be a lexical hit (Elasticsearch-style 50%)
MIN_SHOULD_MATCH = 0.5
# a word in at least this share of the user's chunks (idf <= ln 4) carries no meaning for OR-matching, in any
# language ("the", "de", "und"): corpus statistics instead of a stopword list
COMMON_WORD_SHARE = 0.25
# the share is measured on at most this many of the user's chunks (bounded cost per question)
WORD_STATS_SAMPLE = 1000
# below this many chunks a share says little: every word counts
WORD_STATS_MIN_CHUNKS = 20
# the GIN index is searched with pairs of the rarest words while there are at most this many pairs (the tsquery grows
# quadratically), else with single words
MAX_INDEX_PAIRS = 120


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
class ChunkRow:
    """The text of a chunk and its document, for prompts and doc search."""

    chunk_id: int
    source_id: str
    title: str
    text: str
    start: int  # character offset in the document's text


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form; works whether or not the connection registered the vector type."""
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


def text_array(values: Sequence[str]) -> str:
    """A text[] in PostgreSQL's array syntax, sent as one parameter: psycopg dumps a Python list element by element
    in Python, on the event loop (100 ms for a scope of 20,000 source ids, three times per query)."""
    quoted = ('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values)
    return "{" + ",".join(quoted) + "}"


@dataclass(frozen=True, slots=True)
class LexicalTerms:
    """What the lexical leg searches for: words for the OR query and identifier phrases, each list capped."""

    words: tuple[str, ...]
    identifiers: tuple[str, ...]


def _longest(terms: list[str], cap: int) -> list[str]:
    """The `cap` longest terms (first occurrence breaks ties), in their question order.

    Before corpus statistics, length is the cheap proxy for information: frequent words are short (Zipf); a first-N
    cut would let a long preamble crowd out the question's subject.
    """
    if len(terms) <= cap:
        return terms
    keep = set(heapq.nsmallest(cap, range(len(terms)), key=lambda n: (-len(terms[n]), n)))
    return [term for n, term in enumerate(terms) if n in keep]


def lexical_terms(query: str, max_terms: int) -> LexicalTerms:
    """Words for the OR query and identifier phrases, at most `max_terms` of each, in any language (which words are
    too common to count is decided per user's corpus at search time). CPU work linear in the question: call it off
    the event loop for long questions."""
    identifiers = list(dict.fromkeys(t.strip(".-:/") for t in _TOKEN.findall(query) if _JOINED.search(t)))
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))
    return LexicalTerms(tuple(_longest(words, max_terms)), tuple(_longest([i for i in identifiers if i], max_terms)))


def _tsquery_lexeme(word: str) -> str:
    """A word quoted as one tsquery lexeme, so user text cannot inject tsquery syntax."""
    return "'" + word.replace("'", "''") + "'"


def informative_words(words: Sequence[str], sampled_chunks: int, chunk_counts: Sequence[int]) -> list[str]:
    """The words worth matching, given how many of `sampled_chunks` contain each: words in COMMON_WORD_SHARE of the
    chunks or more are dropped. All words are kept when the sample is too small to judge or when nothing else would
    be left."""
    if sampled_chunks < WORD_STATS_MIN_CHUNKS:
        return list(words)
    limit = COMMON_WORD_SHARE * sampled_chunks
    kept = [word for word, count in zip(words, chunk_counts, strict=True) if count < limit]
    return kept or list(words)


def index_query(words_rarest_first: Sequence[str], need: int, identifiers: Sequence[str]) -> str:
    """tsquery text for the GIN index: it matches every chunk holding `need` of the words or an identifier phrase
    (to_tsquery of a quoted identifier is its phrase query), and far fewer of the others than any word would.

    A chunk holding `need` of n words holds j of the n - need + j rarest, for any j <= need: the need - j others
    cannot make up the rest. j = 2 (pairs of the rarest) when need >= 2 and there are at most MAX_INDEX_PAIRS pairs,
    else j = 1 (any of the n - need + 1 rarest); either way the commonest words drive nothing.
    """
    lexemes = [_tsquery_lexeme(w) for w in words_rarest_first]
    pick = 2 if need >= 2 and math.comb(len(lexemes) - need + 2, 2) <= MAX_INDEX_PAIRS else 1
    rarest = lexemes[: max(0, len(lexemes) - need + pick)]
    alternatives = [" & ".join(group) for group in itertools.combinations(rarest, pick)]
    return " | ".join(alternatives + [_tsquery_lexeme(i) for i in identifiers])


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

    async def count_accessible_chunks(self, user_id: str, scope: Scope | None, cap: int) -> int:
        """Chunks (embedded or queued) the user may read within the scope, counted up to `cap`.

        Driven from the user's access rows through the (source_id, version) index, so the cost is bounded by `cap`
        and no chunk row (with its vector) is read; it decides between the exact and the HNSW path.
        """
        _, params = _filters(user_id, scope)
        scope_sql: sql.Composable = sql.SQL("")
        if scope is not None and scope.kind == "provider":
            scope_sql = sql.SQL(
                " AND EXISTS (SELECT 1 FROM documents d WHERE d.source_id = a.source_id"
                " AND d.provider = ANY(%(scope)s::text[]))"
            )
        elif scope is not None:
            scope_sql = sql.SQL(" AND a.source_id = ANY(%(scope)s::text[])")
        query = sql.SQL(
            "SELECT count(*) FROM (SELECT 1 FROM access a JOIN chunks c ON c.source_id = a.source_id"
            " WHERE a.user_id = %(user_id)s{scope} LIMIT %(cap)s) s"
        ).format(scope=scope_sql)
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
    ) -> list[Hit]:
        """Nearest chunks by cosine distance; HNSW with iterative scan (the ACL filter cannot starve it) or exact."""
        where, params = _filters(user_id, scope)
        params.update(q=vector_literal(embedding), limit=limit)
        if exact:
            # OFFSET 0 fences the subquery: the sort cannot use the HNSW index, so the user's rows (reached through
            # the access rows and the source_id index) are scanned and ordered exactly
            query = sql.SQL(
                "SELECT id, source_id, distance FROM (SELECT c.id, c.source_id, c.embedding <=> %(q)s::vector AS"
                " distance FROM chunks c WHERE c.embedding IS NOT NULL AND {where} OFFSET 0) s"
                " ORDER BY distance LIMIT %(limit)s"
            ).format(where=where)
        else:
            query = sql.SQL(
                "SELECT c.id, c.source_id, c.embedding <=> %(q)s::vector AS distance FROM chunks c"
                " WHERE c.embedding IS NOT NULL AND {where} ORDER BY c.embedding <=> %(q)s::vector LIMIT %(limit)s"
            ).format(where=where)
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

    async def lexical_search(
        self, user_id: str, terms: LexicalTerms, limit: int, scope: Scope | None = None
    ) -> list[Hit]:
        """Full-text matches ('simple' config: no stemming, any language).

        A chunk qualifies when it contains at least half of the query's informative words (minimum-should-match, so a
        question sharing one common word with a chunk is not a lexical hit; a word in COMMON_WORD_SHARE of the user's
        chunks is not informative, whatever its language) or any identifier phrase verbatim
        (`trusted_domains`, `files:scan`). Rank: identifier phrases, then words matched, then ts_rank_cd. The terms
        travel as two array parameters, so the statement has the same size for any question.
        """
        if not terms.words and not terms.identifiers:
            return []
        where, params = _filters(user_id, scope)
        async with self._db.connection() as conn:
            words = await self._informative(conn, where, params, terms.words)
            rows = await self._lexical_rows(
                conn, where, {**params, "identifiers": list(terms.identifiers)}, words, limit
            )
        return [Hit(int(r[0]), str(r[1]), float(r[2])) for r in rows]

    async def _informative(
        self, conn: AsyncConnection[Any], where: sql.Composable, params: dict[str, Any], words: Sequence[str]
    ) -> list[str]:
        """The question's words minus those too common in a sample of the user's own chunks, rarest first."""
        if not words:
            return []
        # each word's tsquery is built once (q); concatenating an empty tsvector keeps each sampled tsvector
        # decompressed once, where matching the stored value would decompress (or fetch from TOAST) it per word
        query = sql.SQL(
            "WITH sample AS MATERIALIZED (SELECT c.tsv || ''::tsvector AS tsv FROM chunks c WHERE {where}"
            " LIMIT %(sample)s), q AS MATERIALIZED (SELECT to_tsquery('simple', t.w) AS w, t.n"
            " FROM unnest(%(words)s::text[]) WITH ORDINALITY AS t(w, n))"
            " SELECT (SELECT count(*) FROM sample),"
            " ARRAY(SELECT (SELECT count(*) FROM sample s WHERE s.tsv @@ q.w) FROM q ORDER BY q.n)"
        ).format(where=where)
        stats = {**params, "sample": WORD_STATS_SAMPLE, "words": [_tsquery_lexeme(w) for w in words]}
        row = await (await conn.execute(query, stats)).fetchone()
        assert row is not None
        counts = dict(zip(words, (int(count) for count in row[1]), strict=True))
        return sorted(informative_words(words, int(row[0]), list(counts.values())), key=counts.__getitem__)

    async def _lexical_rows(
        self,
        conn: AsyncConnection[Any],
        where: sql.Composable,
        params: dict[str, Any],
        words_rarest_first: list[str],
        limit: int,
    ) -> list[tuple[Any, ...]]:
        lexemes = [_tsquery_lexeme(w) for w in words_rarest_first]
        need = max(1, math.ceil(len(lexemes) * MIN_SHOULD_MATCH))
        params.update(
            words=lexemes,
            # NULL without words: to_tsquery of '' would match nothing and log a notice
            any_word=" | ".join(lexemes) or None,
            index_query=index_query(words_rarest_first, need, params["identifiers"]),
            need=need,
            limit=limit,
        )
        # each term's tsquery is built once (in q), not once per chunk; the index is searched with one tsquery
        # constant (index_query), which the planner can estimate and the GIN index can answer alone; OFFSET 0 keeps
        # the words counted only on the chunks the user may read, each tsvector decompressed once (|| '')
        query = sql.SQL(
            "WITH q AS (SELECT to_tsquery('simple', %(any_word)s) AS any_word,"
            " ARRAY(SELECT to_tsquery('simple', w) FROM unnest(%(words)s::text[]) AS w) AS words,"
            " ARRAY(SELECT phraseto_tsquery('simple', i) FROM unnest(%(identifiers)s::text[]) AS i) AS idents)"
            " SELECT id, source_id, idents * {bonus} + words + text_rank AS rank FROM ("
            "SELECT m.id, m.source_id,"
            " (SELECT count(*) FROM unnest(q.words) AS t WHERE m.tsv @@ t) AS words,"
            " (SELECT count(*) FROM unnest(q.idents) AS t WHERE m.tsv @@ t) AS idents,"
            " coalesce(ts_rank_cd(m.tsv, q.any_word), 0) AS text_rank"
            " FROM q, (SELECT c.id, c.source_id, c.tsv || ''::tsvector AS tsv FROM chunks c"
            " WHERE c.tsv @@ to_tsquery('simple', %(index_query)s) AND {where} OFFSET 0) m) s"
            " WHERE words >= %(need)s OR idents > 0 ORDER BY rank DESC, id LIMIT %(limit)s"
        ).format(bonus=sql.Literal(IDENTIFIER_BONUS), where=where)
        return list(await (await conn.execute(query, params)).fetchall())

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

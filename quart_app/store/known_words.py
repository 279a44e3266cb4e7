"""The cross-lingual gate's SQL: which share of a question's words the user's chunks hold (known_word_share), and
which share the whole index holds (index_word_share), each read within a bounded number of chunks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql

from quart_app.store.lexical_query import DIRECT_SCAN_BELOW, own_chunks, tsquery_literal
from quart_app.store.search_filters import Scope, access_filter, chunk_filter


@dataclass(frozen=True, slots=True)
class KnownWords:
    """What the cross-lingual gate saw: the question's words it judged (_question_words), the share of them the user's
    chunks hold, and how many of those chunks it read (up to DIRECT_SCAN_BELOW: a user of a few chunks holds few words
    of any language)."""

    words: tuple[str, ...]
    share: float
    chunks_read: int


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
        ).format(own=own_chunks(access_filter(scope), "c.tsv"), held=held),
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


async def known_word_share(
    conn: AsyncConnection[Any], user_id: str, question: str, scope: Scope | None
) -> KnownWords | None:
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
    words = await _question_words(conn, question)
    if len(words) < KNOWN_WORD_MIN_WORDS:
        return None
    where, params = chunk_filter(user_id, scope)
    read, held = await _held_words(conn, scope, params, words, DIRECT_SCAN_BELOW)
    known = [word for word, found in zip(words, held, strict=True) if found]
    missing = [word for word in words if word not in known]
    if read < DIRECT_SCAN_BELOW or not missing:
        return KnownWords(tuple(words), len(known) / len(words), read)
    probed = await _held_by_holders(conn, where, params, missing)
    known += [word for word, found in zip(missing, probed, strict=True) if found]
    undecided = [word for word, found in zip(missing, probed, strict=True) if found is None]
    if undecided:
        _, held = await _held_words(conn, scope, params, undecided, KNOWN_WORD_SCAN)
        known += [word for word, found in zip(undecided, held, strict=True) if found]
    return KnownWords(tuple(words), len(known) / len(words), read)


async def index_word_share(conn: AsyncConnection[Any], words: Sequence[str]) -> float:
    """The share of a question's `words` (as known_word_share judged them: KnownWords.words, not parsed again) that
    some chunk of the whole index holds, whoever may read it. It decides only how much of the index the
    cross-lingual backfill fills in, never what a user gets: no answer depends on other users' documents.

    A word among the lexemes ANALYZE found most common is held; any other is looked up in the GIN index (a bitmap of
    every chunk holding it: 20 ms p50 at 50,000 chunks for common words, looked up)."""
    if not words:
        raise ValueError("index_word_share needs the question's words (KnownWords.words), got none")
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

"""The lexical leg's SQL: the question's words as PostgreSQL parses them, which of them are informative for this user,
and the chunks holding enough of them or an identifier, searched tier by tier through the GIN index.

The chunks' full-text column holds what PostgreSQL's 'simple' parser makes of header and text, plus each identifier
(`trusted_domains`, `files:scan`, `config.php`) as one lexeme (migration 0007), and each tail of a qualified name that
is an identifier itself (`Response.iter_content` holds `iter_content`, migration 0010). The question goes through the
same parser and the same identifier rule, so a term matches exactly when the chunk holds it, and every tsquery here is
built from lexemes (cast, never parsed again): an identifier is one index entry, not a phrase whose every holder of
both words must be fetched and rechecked.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from psycopg import AsyncConnection, sql

# raw terms of a question: runs of word characters and _ : . / - (what the parser and the identifier rule read)
_TOKEN = re.compile(r"[\w:./\-]+")
# an identifier joins ASCII letters or digits with _ : . / - (trusted_domains, files:scan, config.php, os.path.join);
# ASCII as migration 0007's regular expression, whose \w would follow the database's locale
_IDENTIFIER = re.compile(r"[A-Za-z0-9_:./\-]+")
_JOINED = re.compile(r"[A-Za-z0-9_][_:./\-][A-Za-z0-9_]")
# longest identifier kept as a lexeme (migration 0007 keeps the same)
IDENTIFIER_MAX_CHARS = 200
# share of the informative words a chunk must contain to be a lexical hit (Elasticsearch-style 50%)
MIN_SHOULD_MATCH = 0.5
# a word in at least this share of the user's chunks (idf <= ln 4) carries no meaning for OR-matching, in any
# language ("the", "de", "und"): corpus statistics instead of a stopword list
COMMON_WORD_SHARE = 0.25
# the share is measured on at most this many of the user's chunks (bounded cost per question)
WORD_STATS_SAMPLE = 500
# below this many chunks a share says little: every word counts
WORD_STATS_MIN_CHUNKS = 20
# the question's rarest informative words that decide a lexical hit: a long question's commoner words would make the
# index query and the per-chunk counting grow with its length, for words the vector leg covers anyway
MAX_MATCH_WORDS = 8
# the index query of a tier is an OR of at most this many groups of words (the GIN index evaluates the whole tsquery
# for every entry it visits, so its size is paid per entry)
MAX_INDEX_GROUPS = 20
# chunks the user may read that one tier's index query may bring in for counting; past it the tier's hits are the
# best of the first ones found (with words common in the user's chunks, thousands would qualify)
LEXICAL_SCAN_CAP = 200
# below this many chunks (in the scope) a user's own chunks are read through the access rows and every word counted
# on each, in one query for all tiers (as the vector leg's exact scan): the GIN index would bring in the chunks of
# every reader that hold the words, to keep the few this user may read; and a capped tier's "first ones found" follow
# the table's physical order, so the same documents ranked differently after another ingest (bench/quality, 3,718
# chunks: held-out English Hit@1 0.79 or 0.82 by ingest; in one pass the same on both, at a 10.5 ms p50, not 4.4)
DIRECT_SCAN_BELOW = 5000


@dataclass(frozen=True, slots=True)
class Candidates:
    """The chunks `c` a tier counts words on: the FROM and WHERE that bring them in, its parameters, and how many
    are read at most."""

    fragment: sql.Composable
    params: dict[str, Any]
    scan_cap: int


class LexicalRow(NamedTuple):
    """A lexical hit: its chunk, how many of the question's identifiers and of its deciding words the chunk holds,
    ts_rank_cd's share below 1 (normalisation 32) for those words, and how many of the words outside the identifiers
    it holds (words_outside; `outside_terms`: those words, the same for every row of a search)."""

    chunk_id: int
    source_id: str
    identifiers: int
    words: int
    text_rank: float
    outside_words: int
    outside_terms: tuple[str, ...] = ()

    def best_first(self) -> tuple[int, int, float, int]:
        """The leg's order: more identifiers first, then more words, then the text rank; chunk id among equals."""
        return -self.identifiers, -self.words, -self.text_rank, self.chunk_id


@dataclass(frozen=True, slots=True)
class LexicalTerms:
    """What the lexical leg searches for: the question's raw terms (parsed into words by the database) and its
    identifiers, each list capped."""

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


def identifiers_in(text: str) -> list[str]:
    """The identifiers of `text`, lower-cased, in order, each once (migration 0007's rule for chunks, which also hold
    the tails of each that are identifiers: migration 0010)."""
    found = (t.strip(".-:/").lower() for t in _IDENTIFIER.findall(text) if _JOINED.search(t))
    return list(dict.fromkeys(t for t in found if t and len(t) <= IDENTIFIER_MAX_CHARS))


def lexical_terms(query: str, max_terms: int) -> LexicalTerms:
    """Raw terms and identifiers, at most `max_terms` of each, in any language (which words are too common to count
    is decided per user's corpus at search time). CPU work linear in the question: call it off the event loop for
    long questions."""
    words = list(dict.fromkeys(t.lower() for t in _TOKEN.findall(query)))
    return LexicalTerms(tuple(_longest(words, max_terms)), tuple(_longest(identifiers_in(query), max_terms)))


def words_outside(words: Sequence[str], identifiers: Sequence[str]) -> list[str]:
    """The words that are no part of an identifier (`iter_content iter_lines stream=True`: stream, true): whether a
    chunk holds `iter` as a word follows how it writes the identifier (`iter_content(` does, `Response.iter_content()`
    parses as `response.iter`), which the identifier count already settles."""
    parts = [re.compile(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])") for word in words]
    return [word for word, part in zip(words, parts, strict=True) if not any(part.search(i) for i in identifiers)]


def tsquery_literal(lexeme: str) -> str:
    """A lexeme as tsquery input (cast, not parsed): quoted, so user text cannot inject tsquery syntax."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def informative_words(words: Sequence[str], sampled_chunks: int, chunk_counts: Sequence[int]) -> list[str]:
    """The words worth matching, given how many of `sampled_chunks` contain each: words in COMMON_WORD_SHARE of the
    chunks or more are dropped. All words are kept when the sample is too small to judge or when nothing else would
    be left."""
    if sampled_chunks < WORD_STATS_MIN_CHUNKS:
        return list(words)
    limit = COMMON_WORD_SHARE * sampled_chunks
    kept = [word for word, count in zip(words, chunk_counts, strict=True) if count < limit]
    return kept or list(words)


def tier_groups(words_rarest_first: Sequence[str], holding: int, identifiers: Sequence[str]) -> list[str]:
    """tsquery inputs whose OR matches every chunk holding `holding` of the words or an identifier, and few others:
    per lead word, the groups of words that must all be there with it (each its own GIN scan, driven by the lead
    word's entries, skipping through the commoner words'), and one of the identifiers.

    A chunk holding t of n words holds j of the n - t + j rarest, for any j <= t: the t - j others cannot make up
    the rest. j is the largest with at most MAX_INDEX_GROUPS groups: all n words for t = n, pairs of the 6 rarest
    for t = 4 of 8; the commonest words drive nothing.
    """
    lexemes = [tsquery_literal(w) for w in words_rarest_first]
    groups: list[str] = []
    if lexemes:
        spare = len(lexemes) - holding
        pick = max(j for j in range(1, holding + 1) if j == 1 or math.comb(spare + j, j) <= MAX_INDEX_GROUPS)
        # one scan per lead word (its rarest): 'a' & ('b' | 'c') is driven by a's entries, where 'a' & 'b' and
        # 'a' & 'c' walked them twice
        by_lead: dict[str, list[str]] = {}
        for lead, *rest in itertools.combinations(lexemes[: spare + pick], pick):
            by_lead.setdefault(lead, []).append(" & ".join(rest))
        groups = [_lead_group(lead, rests) for lead, rests in by_lead.items()]
    if identifiers:
        groups.append(" | ".join(tsquery_literal(i) for i in identifiers))
    return groups


def _lead_group(lead: str, rests: list[str]) -> str:
    if rests == [""]:
        return lead
    return f"{lead} & {rests[0]}" if len(rests) == 1 else f"{lead} & ( {' | '.join(rests)} )"


def match_tiers(words: int) -> list[int]:
    """How many of the words a hit must hold, tier by tier: all of them first, down to MIN_SHOULD_MATCH of them."""
    need = max(1, math.ceil(words * MIN_SHOULD_MATCH))
    return list(range(words, need - 1, -1)) or [1]


@dataclass(frozen=True, slots=True)
class WordSample:
    """The question's words and which of them each sampled chunk of the user holds."""

    words: list[str]  # lexemes, in question order
    chunks: int  # chunks sampled: all of the user's (in the scope) when below WORD_STATS_SAMPLE
    held: list[frozenset[int]]  # per sampled chunk holding any: the indexes of the words it holds
    user_chunks: int  # the user's chunks (in the scope), counted up to DIRECT_SCAN_BELOW

    def deciding_words(self) -> list[str]:
        """The informative words, rarest first, at most MAX_MATCH_WORDS."""
        counts = [sum(n in held for held in self.held) for n in range(len(self.words))]
        kept = informative_words(self.words, self.chunks, counts)
        return sorted(kept, key=lambda word: counts[self.words.index(word)])[:MAX_MATCH_WORDS]

    def tiers(self, deciding: list[str], limit: int) -> list[int]:
        """match_tiers, less those the sample settles. The sample is part of the user's chunks, so a tier with
        `limit` sampled hits has at least that many: only it is searched. Tiers above the first with a sampled hit
        would most likely find nothing and are skipped; when the sample is all of the user's chunks and no tier has
        a hit, none is searched."""
        indexes = {self.words.index(word) for word in deciding}
        holding = [len(held & indexes) for held in self.held]
        tiers = match_tiers(len(deciding))
        sampled = [sum(h >= t for h in holding) for t in tiers]
        enough = [t for t, hits in zip(tiers, sampled, strict=True) if hits >= limit]
        if enough:
            return enough[:1]
        hit = [t for t, hits in zip(tiers, sampled, strict=True) if hits > 0]
        if not hit and self.chunks < WORD_STATS_SAMPLE:
            return []
        return hit or tiers[-1:]


async def sample_words(
    conn: AsyncConnection[Any], readable: sql.Composable, params: dict[str, Any], raw_terms: Sequence[str]
) -> WordSample:
    """The question's words as the 'simple' parser makes them, and which of them each chunk of a sample of the
    user's own holds: the chunks of the user's documents in source id order, up to WORD_STATS_SAMPLE (`readable`
    restricts access row `a` to the user and the scope)."""
    # driven from the access rows through the source_id index (OFFSET 0 keeps the planner from making it a join,
    # which it runs as a sequential scan of chunks): the sampled pages stay cached, where a sequential scan reads
    # through a ring buffer, every question again; each word's tsquery is built once (q); concatenating an empty
    # tsvector keeps each sampled tsvector decompressed once, where matching the stored value would decompress (or
    # fetch from TOAST) it per word
    query = sql.SQL(
        "WITH sample AS MATERIALIZED (SELECT s.tsv || ''::tsvector AS tsv FROM (SELECT a.source_id FROM access a"
        " WHERE {readable} ORDER BY a.source_id) src CROSS JOIN LATERAL (SELECT c.tsv FROM chunks c"
        " WHERE c.source_id = src.source_id OFFSET 0) s LIMIT %(sample)s),"
        " q AS MATERIALIZED (SELECT t.lexeme, row_number() OVER (ORDER BY t.positions[1]) - 1"
        " AS n, ('''' || replace(replace(t.lexeme, '\\', '\\\\'), '''', '''''') || '''')::tsquery AS w"
        " FROM unnest(to_tsvector('simple', %(text)s)) AS t)"
        " SELECT (SELECT count(*) FROM sample), ARRAY(SELECT q.lexeme FROM q ORDER BY q.n),"
        " ARRAY(SELECT h FROM (SELECT array_to_string(ARRAY(SELECT q.n FROM q WHERE s.tsv @@ q.w), ',') AS h"
        " FROM sample s) held WHERE h <> ''), (SELECT count(*) FROM (SELECT 1 {own} LIMIT %(direct)s) n)"
    ).format(readable=readable, own=own_chunks(readable, "1"))
    values = {**params, "sample": WORD_STATS_SAMPLE, "direct": DIRECT_SCAN_BELOW, "text": " ".join(raw_terms)}
    row = await (await conn.execute(query, values)).fetchone()
    assert row is not None
    held = [frozenset(int(n) for n in indexes.split(",")) for indexes in row[2]]
    return WordSample(list(row[1]), int(row[0]), held, int(row[3]))


async def lexical_rows(
    conn: AsyncConnection[Any],
    where: sql.Composable,
    readable: sql.Composable,
    params: dict[str, Any],
    terms: LexicalTerms,
    limit: int,
) -> list[LexicalRow]:
    """The best `limit` lexical hits, best first (LexicalRow.best_first); `where` restricts chunk `c` and `readable`
    access row `a` to the user and the scope.

    The identifiers are searched first, on their own: they rank above any count of words, and in a tier's scan the
    chunks holding its words could fill the scan cap before the ones holding the identifier. Then the word tiers:
    chunks holding all the words first, then one word fewer, down to half (WordSample.tiers skips those a sample of
    the user's chunks settles); a tier with `limit` hits holds the best `limit` of every lower one (they rank by
    words held first). A tier whose index query brings in LEXICAL_SCAN_CAP readable chunks ends the search with the
    best of those. A user with fewer than DIRECT_SCAN_BELOW chunks gets every tier in one exact pass over them.
    """
    sample = await sample_words(conn, readable, params, terms.words)
    words = sample.deciding_words()
    tiers = sample.tiers(words, limit) if words else []
    if sample.user_chunks < DIRECT_SCAN_BELOW:
        if not tiers and not terms.identifiers:
            return []
        # the lowest tier holds every higher one; without a tier no count of words qualifies
        holding = min(tiers, default=len(words) + 1)
        candidates = _direct_candidates(readable, words, terms.identifiers)
        rows, _ = await _tier(conn, candidates, params, words, terms.identifiers, holding, limit)
        return rows
    found: dict[int, LexicalRow] = {}
    if terms.identifiers:
        candidates = _index_candidates(where, tier_groups([], 1, terms.identifiers))
        rows, _ = await _tier(conn, candidates, params, words, terms.identifiers, len(words) + 1, limit)
        found = {row.chunk_id: row for row in rows}
    for holding in tiers:
        if len(found) >= limit:
            break
        candidates = _index_candidates(where, tier_groups(words, holding, []))
        rows, scanned = await _tier(conn, candidates, params, words, terms.identifiers, holding, limit)
        # a capped tier may miss some of the previous tier's hits: those rank above all of its own
        found = {**{row.chunk_id: row for row in rows}, **found}
        if scanned >= LEXICAL_SCAN_CAP:
            break
    return sorted(found.values(), key=LexicalRow.best_first)[:limit]


def _index_candidates(where: sql.Composable, groups: list[str]) -> Candidates:
    """Chunks `c` the GIN index brings in through `groups` (tsquery inputs, OR-ed), those the user may read (`where`),
    at most LEXICAL_SCAN_CAP."""
    # one condition per group: a BitmapOr of GIN scans (one tsquery of all groups was evaluated whole on every entry of
    # every word, twice the time)
    conditions = [sql.SQL("c.tsv @@ {}::tsquery").format(sql.Placeholder(f"group{n}")) for n in range(len(groups))]
    fragment = sql.SQL("FROM chunks c WHERE ({groups}) AND {where}").format(
        groups=sql.SQL(" OR ").join(conditions), where=where
    )
    return Candidates(fragment, {f"group{n}": group for n, group in enumerate(groups)}, LEXICAL_SCAN_CAP)


def own_chunks(readable: sql.Composable, columns: str) -> sql.Composable:
    """FROM and WHERE of the user's own chunks `c` (their `columns`), read through the access rows `a` (`readable`)
    and the source_id index (OFFSET 0: not made a join, which the planner runs as a sequential scan of chunks)."""
    return sql.SQL(
        "FROM access a CROSS JOIN LATERAL (SELECT {columns} FROM chunks c WHERE c.source_id = a.source_id OFFSET 0) c"
        " WHERE {readable}"
    ).format(columns=sql.SQL(columns), readable=readable)


def _direct_candidates(readable: sql.Composable, words: Sequence[str], identifiers: Sequence[str]) -> Candidates:
    """The user's own chunks `c` holding any of the terms (own_chunks)."""
    fragment = sql.SQL("{own} AND c.tsv @@ %(any_term)s::tsquery").format(
        own=own_chunks(readable, "c.id, c.source_id, c.tsv")
    )
    any_term = " | ".join(tsquery_literal(term) for term in [*words, *identifiers])
    return Candidates(fragment, {"any_term": any_term}, DIRECT_SCAN_BELOW)


async def _tier(
    conn: AsyncConnection[Any],
    candidates: Candidates,
    params: dict[str, Any],
    words_rarest_first: list[str],
    identifiers: Sequence[str],
    holding: int,
    limit: int,
) -> tuple[list[LexicalRow], int]:
    """The best `limit` of the `candidates` (_index_candidates or _direct_candidates) holding `holding` of the words
    or an identifier; and how many candidates were read. Every word and identifier is counted."""
    lexemes = [tsquery_literal(w) for w in words_rarest_first]
    outside = tuple(words_outside(words_rarest_first, identifiers))
    tier = {
        **candidates.params,
        **params,
        "words": lexemes,
        "identifiers": [tsquery_literal(i) for i in identifiers],
        "outside": [tsquery_literal(w) for w in outside],
        # NULL without words: an empty tsquery matches nothing and logs a notice
        "any_word": " | ".join(lexemes) or None,
        "holding": holding,
        "scan_cap": candidates.scan_cap,
        "limit": limit,
    }
    # each term's tsquery is built once (q), not once per chunk; lexemes only, no phrase to recheck; the fenced,
    # capped m counts words only on chunks the user may read, each tsvector decompressed once (|| ''); the counts are
    # columns of their own, ranked before ts_rank_cd (normalised below 1, flag 32)
    query = sql.SQL(
        "WITH q AS (SELECT %(any_word)s::tsquery AS any_word,"
        " ARRAY(SELECT w::tsquery FROM unnest(%(words)s::text[]) AS w) AS words,"
        " ARRAY(SELECT i::tsquery FROM unnest(%(identifiers)s::text[]) AS i) AS idents,"
        " ARRAY(SELECT o::tsquery FROM unnest(%(outside)s::text[]) AS o) AS outside),"
        " m AS MATERIALIZED (SELECT c.id, c.source_id, c.tsv || ''::tsvector AS tsv {candidates}"
        " LIMIT %(scan_cap)s)"
        " (SELECT id, source_id, idents, words, text_rank, outside, NULL::bigint FROM ("
        "SELECT m.id, m.source_id,"
        " (SELECT count(*) FROM unnest(q.words) AS t WHERE m.tsv @@ t) AS words,"
        " (SELECT count(*) FROM unnest(q.idents) AS t WHERE m.tsv @@ t) AS idents,"
        " (SELECT count(*) FROM unnest(q.outside) AS t WHERE m.tsv @@ t) AS outside,"
        " coalesce(ts_rank_cd(m.tsv, q.any_word, 32), 0) AS text_rank FROM q, m) s"
        " WHERE words >= %(holding)s OR idents > 0 ORDER BY idents DESC, words DESC, text_rank DESC, id"
        " LIMIT %(limit)s)"
        # one more row, with no chunk: how many candidates were read
        " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, (SELECT count(*) FROM m)"
    ).format(candidates=candidates.fragment)
    rows = await (await conn.execute(query, tier)).fetchall()
    scanned = next(int(r[6]) for r in rows if r[0] is None)
    return [
        LexicalRow(int(r[0]), str(r[1]), int(r[2]), int(r[3]), float(r[4]), int(r[5]), outside)
        for r in rows
        if r[0] is not None
    ], scanned

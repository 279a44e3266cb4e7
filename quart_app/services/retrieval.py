"""Hybrid retrieval: vector and lexical candidates fused by weighted reciprocal rank, capped per document."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from appliance.retrieval_config import RetrievalConfig
from quart_app.runtimes.errors import RuntimeServiceError
from quart_app.services.cross_lingual_gate import CrossLingualGate, CrossLingualVectors
from quart_app.services.document_titles import named_files, question_words, title_match
from quart_app.services.errors import QueryNotEmbeddedError, QuestionTooLongError, ScopeError
from quart_app.services.rank_fusion import Fused, fuse
from quart_app.services.term_span import shortest_span, span_terms
from quart_app.store.lexical_query import LexicalTerms, lexical_terms
from quart_app.store.search_filters import Scope
from quart_app.store.search_store import (
    CHUNK_VECTORS,
    CROSS_LINGUAL_VECTORS,
    HNSW_MAX_EF_SEARCH,
    ChunkRow,
    Hit,
    SearchStore,
    VectorTable,
)

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")
_QUESTION_MARKS = ("?", "\uff1f")  # ASCII and full-width


class QueryEmbedder(Protocol):
    """What retrieval needs from the embedding client (EmbeddingClient satisfies it)."""

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]: ...


class PassageReranker(Protocol):
    """What retrieval needs from the second stage (quart_app.runtimes.reranker.Reranker satisfies it)."""

    async def score(self, question: str, passages: list[str]) -> list[float]: ...


@dataclass(frozen=True, slots=True)
class RetrievedChunk:
    """A fused result: the chunk, its document title, its fused score and the legs that found it."""

    chunk_id: int
    source_id: str
    title: str
    text: str
    score: float
    legs: tuple[str, ...]
    start: int  # character offset in the document's text
    # /docSearch's order for identifier and keyword questions: how many of the question's identifiers the chunk holds,
    # then for a keyword question how many of its deciding words outside them (else zeros)
    held: tuple[int, int] = (0, 0)
    # then the characters of its shortest stretch holding all of the question's terms (term_span); None when one is
    # missing or not measured
    span: int | None = None


def make_scope(scope_type: str | None, scope_list: Sequence[str] | None) -> Scope | None:
    """The upstream (scopeType, scopeList) pair as a Scope; no type means no scope (the list is then ignored)."""
    if scope_type is None:
        return None
    if scope_type not in ("provider", "source"):
        raise ScopeError(f"scopeType {scope_type!r} is not supported; use 'provider' or 'source' (or omit it)")
    values = tuple(dict.fromkeys(v for v in (scope_list or ()) if v))
    return Scope("provider" if scope_type == "provider" else "source", values)


def identifier_share(question: str, identifiers: Sequence[str]) -> float:
    """Share of the question's distinct words that belong to its identifiers (`md.reset().convert`: 2 of 3)."""
    words = {word.lower() for word in _WORD.findall(question)}
    inside = {word.lower() for identifier in identifiers for word in _WORD.findall(identifier)}
    return len(words & inside) / len(words) if words else 0.0


def keyword_question(terms: LexicalTerms, query: str, most_words: int) -> bool:
    """Whether the question is typed as into a search box: at most `most_words` words and no question mark
    (`Registry DeprecationWarning`), where a document holding all of them is what the asker looks for."""
    return 0 < len(terms.words) <= most_words and not any(mark in query for mark in _QUESTION_MARKS)


# retrieval.ef_search auto: the HNSW search widens with the index, as measured on the size bench (recall@10 of the
# vector leg against an exact scan: 200 holds >= 0.95 at 200k chunks, at 1M it takes 500)
AUTO_EF_SEARCH = 200
AUTO_EF_SEARCH_FROM = 250_000
AUTO_EF_SEARCH_PER_CHUNK = (500 - 200) / 750_000
# the chunk estimate is read again after this long
CHUNK_ESTIMATE_TTL_S = 300.0


def auto_ef_search(chunks: int) -> int:
    """hnsw.ef_search for an index of `chunks` chunks: 200 up to 250k, then 200 more per 500k (500 at 1M), at most
    pgvector's 1000."""
    wider = max(0, chunks - AUTO_EF_SEARCH_FROM) * AUTO_EF_SEARCH_PER_CHUNK
    return min(HNSW_MAX_EF_SEARCH, round(AUTO_EF_SEARCH + wider))


class RetrievalService:
    """Finds the chunks a user may read that best answer a query; all filtering happens in SQL."""

    def __init__(
        self,
        store: SearchStore,
        embedder: QueryEmbedder,
        config: RetrievalConfig,
        reranker: PassageReranker | None = None,
        cross_lingual: CrossLingualVectors | None = None,
        main_reads_language_within: float | None = None,
    ) -> None:
        """`main_reads_language_within`: the main model's catalogue reads_language_within (CrossLingualGate)."""
        self._store = store
        self._embedder = embedder
        self._config = config
        # the second stage and the third leg run only when both the model and its settings are there
        self._reranker = reranker if config.reranker is not None else None
        self._cross_lingual = (
            None
            if cross_lingual is None or config.cross_lingual is None
            else CrossLingualGate(store, cross_lingual, config.cross_lingual, main_reads_language_within)
        )
        # (monotonic time read, chunks) of the last estimate, for ef_search auto
        self._chunk_estimate: tuple[float, int] | None = None

    def check_question(self, question: str) -> None:
        """Refuse a question longer than retrieval.max_question_chars before any work is done on it."""
        if len(question) > self._config.max_question_chars:
            raise QuestionTooLongError(len(question), self._config.max_question_chars)

    async def titles(self, user_id: str, source_ids: list[str]) -> dict[str, str]:
        """Titles of documents the user may read, by source id."""
        return await self._store.titles(user_id, source_ids)

    async def _embed(self, query: str) -> tuple[list[float] | None, str]:
        """The question's vector, or None and why it could not be had."""
        try:
            return (await self._embedder.embed([query], "query"))[0], ""
        except Exception as exc:  # the lexical leg still answers while the embedder is down
            log.warning("query embedding failed (%s); answering from the full-text leg only", type(exc).__name__)
            return None, f"{type(exc).__name__}: {exc}"

    async def _vector_leg(
        self,
        user_id: str,
        embedding: list[float],
        limit: int,
        scope: Scope | None,
        table: VectorTable = CHUNK_VECTORS,
    ) -> list[Hit]:
        threshold = self._config.exact_search_below
        exact = threshold > 0 and await self._store.count_accessible_chunks(user_id, scope, threshold) < threshold
        ef_search = 0 if exact else await self._ef_search()
        hits = await self._store.vector_search(
            user_id, embedding, limit, scope, exact=exact, ef_search=max(ef_search, limit), table=table
        )
        if exact or len(hits) >= limit:
            return hits
        # pgvector's iterative scan gives up after hnsw.max_scan_tuples index rows, other users' included: a user who
        # holds a small share of a big index, far from the question, got a handful of chunks instead of `limit`
        log.debug("HNSW path: %d of %d hits above exact_search_below; trying the exact path", len(hits), limit)
        return await self._store.vector_search(user_id, embedding, limit, scope, exact=True, table=table)

    async def _cross_lingual_leg(
        self, user_id: str, query: str, scope: Scope | None, main_hits: Awaitable[list[Hit]] | None
    ) -> list[Hit]:
        """The multilingual vectors' nearest chunks for a question the gate gives the leg (CrossLingualGate); none for
        any other. `main_hits`: the main vector leg's, None without them."""
        gate, config = self._cross_lingual, self._config.cross_lingual
        if gate is None or config is None:
            return []
        vector = await gate.question_vector(user_id, query, scope, main_hits)
        if vector is None:
            return []
        return await self._vector_leg(user_id, vector, config.candidates, scope, CROSS_LINGUAL_VECTORS)

    async def _ef_search(self) -> int:
        """retrieval.ef_search, or for auto the width for the index's size (its estimate read every few minutes)."""
        if self._config.ef_search != "auto":
            return self._config.ef_search
        now = time.monotonic()
        if self._chunk_estimate is None or now - self._chunk_estimate[0] > CHUNK_ESTIMATE_TTL_S:
            self._chunk_estimate = (now, await self._store.estimated_chunks())
        return auto_ef_search(self._chunk_estimate[1])

    async def _lexical_terms(self, query: str) -> LexicalTerms:
        # linear in the question, but a long one would still hold the event loop
        return await asyncio.to_thread(lexical_terms, query, self._config.max_lexical_terms)

    async def _identifier_question(self, query: str, identifiers: Sequence[str]) -> bool:
        """Whether identifiers make up identifier_share of the question's words."""
        if not identifiers:
            return False
        # linear in the question, as lexical_terms
        return await asyncio.to_thread(identifier_share, query, identifiers) >= self._config.identifier_share

    async def _rerank(
        self, user_id: str, query: str, fused: list[Fused], reranker: PassageReranker, candidates: int
    ) -> list[Fused]:
        """The first `candidates` fused chunks in the reranker's order, the rest after them as fused."""
        head = fused[:candidates]
        if len(head) < 2:
            return fused
        rows = await self._store.fetch_chunks(user_id, [item[0] for item in head])
        head = [item for item in head if item[0] in rows]  # deleted or revoked since the search
        try:
            scores = await reranker.score(query, [rows[item[0]].text for item in head])
        except RuntimeServiceError as exc:  # the fused order still answers while the reranker fails
            log.warning("reranking failed (%s); answering in the fused order", type(exc).__name__)
            return fused
        ranked = sorted(range(len(head)), key=lambda i: -scores[i])  # stable: ties keep the fused order
        return [head[i] for i in ranked] + fused[candidates:]

    async def retrieve(
        self,
        user_id: str,
        query: str,
        k: int,
        scope: Scope | None = None,
        *,
        per_document: int | None = None,
        identifier_weight: bool = False,
        terms: LexicalTerms | None = None,
    ) -> list[RetrievedChunk]:
        """The best k chunks, at most `per_document` (default max_chunks_per_document) from any one document;
        `identifier_weight`: an identifier question weights the full-text leg by identifier_lexical_weight, and chunks
        holding more of its identifiers come first (`SUPERSCRIPT_TEXT` itself before a chunk about superscript text);
        for a keyword question (keyword_question_words), then those holding more of its other words; for an identifier
        question, each chunk's span of its terms is measured (/docSearch's next order).
        `terms`: the question's lexical_terms, when the caller has them already.
        QueryNotEmbeddedError when the question could not be embedded and the full-text leg found nothing."""
        if scope is not None and scope.empty:
            return []
        cap = per_document or self._config.max_chunks_per_document
        embedding, embed_failure = await self._embed(query)
        if terms is None:
            terms = await self._lexical_terms(query)
        lexical = self._store.lexical_search(user_id, terms, max(self._config.lexical_candidates, k), scope)
        if embedding is None:
            vector_hits: list[Hit] = []
            lexical_hits, cross_lingual_hits = await asyncio.gather(
                lexical, self._cross_lingual_leg(user_id, query, scope, None)
            )
        else:
            # a task: the cross-lingual leg may await the main leg's hits too
            main = asyncio.ensure_future(
                self._vector_leg(user_id, embedding, max(self._config.vector_candidates, k), scope)
            )
            vector_hits, lexical_hits, cross_lingual_hits = await asyncio.gather(
                main, lexical, self._cross_lingual_leg(user_id, query, scope, main)
            )
        # identifier_lexical_weight 0 turns the full-text leg off for identifier questions, its order included
        identifier_first = (
            identifier_weight
            and self._config.identifier_lexical_weight > 0
            and await self._identifier_question(query, terms.identifiers)
        )
        lexical_weight = self._config.identifier_lexical_weight if identifier_first else self._config.lexical_weight
        cross_lingual_config = self._config.cross_lingual if cross_lingual_hits else None
        # for a question in another language than the documents, the main model's nearest chunks are mostly noise
        vector_weight = (
            self._config.vector_weight if cross_lingual_config is None else cross_lingual_config.main_vector_weight
        )
        legs: dict[str, tuple[float, Sequence[Hit]]] = {}
        if vector_weight > 0:
            legs["vector"] = (vector_weight, vector_hits)
        legs["lexical"] = (lexical_weight, lexical_hits)
        if cross_lingual_config is not None:
            legs["cross_lingual"] = (cross_lingual_config.weight, cross_lingual_hits)
        fused = fuse(legs, self._config.rrf_k)
        held: dict[int, tuple[int, int]] = {}
        # lexical_weight 0 leaves every question to the other legs, keyword questions included
        by_words = (
            identifier_weight
            and self._config.lexical_weight > 0
            and keyword_question(terms, query, self._config.keyword_question_words)
        )
        if identifier_first or by_words:
            # a chunk holding more of the question's identifiers (then of a keyword question's words) comes first;
            # fused order among equals (stable sort)
            held = {hit.chunk_id: (hit.identifiers, hit.outside_words if by_words else 0) for hit in lexical_hits}
            fused.sort(key=lambda item: tuple(-n for n in held.get(item[0], (0, 0))))
        if self._reranker is not None and self._config.reranker is not None:
            fused = await self._rerank(user_id, query, fused, self._reranker, self._config.reranker.candidates)
        per_source: dict[str, int] = {}
        picked: list[Fused] = []
        for item in fused:
            if per_source.get(item[1], 0) >= cap:
                continue
            per_source[item[1]] = per_source.get(item[1], 0) + 1
            picked.append(item)
            if len(picked) == k:
                break
        rows: dict[int, ChunkRow] = await self._store.fetch_chunks(user_id, [item[0] for item in picked])
        log.debug(
            "retrieval: %d vector, %d lexical, %d cross-lingual candidates -> %d chunks",
            len(vector_hits),
            len(lexical_hits),
            len(cross_lingual_hits),
            len(picked),
        )
        # closeness only for a question of identifiers: a keyword question in words is a topic, found anywhere; of a
        # keyword question's other words, those held counts (every lexical hit names the same)
        counted = next((hit.outside_terms for hit in lexical_hits), ()) if by_words else ()
        spanned = span_terms(terms.identifiers, counted) if identifier_first else []
        found = [
            RetrievedChunk(
                cid,
                row.source_id,
                row.title,
                row.text,
                score,
                legs,
                row.start,
                held.get(cid, (0, 0)),
                shortest_span(row.text, spanned) if spanned else None,
            )
            for cid, _source, score, legs in picked
            if (row := rows.get(cid)) is not None  # deleted or revoked between the search and the read
        ]
        if not found and embedding is None and not cross_lingual_hits:
            raise QueryNotEmbeddedError(embed_failure)
        return found

    async def documents(self, user_id: str, query: str, limit: int, scope: Scope | None = None) -> list[RetrievedChunk]:
        """The best `limit` documents, each with its best chunk (/docSearch), identifier questions weighted to the
        full-text leg. A document the question names by its file name (`website.txt`) comes first; the others rank
        by their best chunk's fused score plus title_weight of a first-rank hit times the share of their file name's
        words found in the question; for an identifier or keyword question, first by the identifiers and words their
        best chunk holds, for an identifier question then by how close together it holds its terms (a chunk naming
        `iter_content`, `iter_lines` and `stream=True` in one passage before one naming them in three entries)."""
        return (await self.candidate_documents(user_id, query, limit, scope))[:limit]

    async def candidate_documents(
        self, user_id: str, query: str, limit: int, scope: Scope | None = None
    ) -> list[RetrievedChunk]:
        """All the documents ranked for a search of `limit` (up to 2 * limit and those named), best first as
        `documents` orders them: the next ones fill in for documents Nextcloud says the user can no longer read."""
        terms = await self._lexical_terms(query)
        # upstream fetches 2*limit chunks and keeps the first distinct documents; one chunk per document does that
        try:
            best = await self.retrieve(
                user_id, query, 2 * limit, scope, per_document=1, identifier_weight=True, terms=terms
            )
        except QueryNotEmbeddedError:  # /docSearch answers a list: a file named in the question may still be found
            best = []
        named: dict[str, int] = {}
        if self._config.file_name_first:
            names = named_files(terms.identifiers)
            named = {
                hit.source_id: hit.chunk_id for hit in await self._store.documents_named(user_id, names, limit, scope)
            }
        found = {chunk.source_id for chunk in best}
        rows = await self._store.fetch_chunks(user_id, [cid for source, cid in named.items() if source not in found])
        best += [
            RetrievedChunk(r.chunk_id, r.source_id, r.title, r.text, 0.0, ("title",), r.start) for r in rows.values()
        ]
        bonus = self._config.title_weight / (self._config.rrf_k + 1)
        # once, off the loop: read again per candidate, a long question held the loop for 20 ms per document
        asked = await asyncio.to_thread(question_words, query)
        ranked = sorted(
            best,
            key=lambda c: (
                c.source_id not in named,
                tuple(-n for n in c.held),
                sys.maxsize if c.span is None else c.span,
                -(c.score + bonus * title_match(c.title, asked)),
                c.chunk_id,
            ),
        )
        return ranked

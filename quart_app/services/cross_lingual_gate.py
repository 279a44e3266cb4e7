"""Which questions the cross-lingual leg answers: those whose words the user's documents mostly do not hold (in another
language than theirs), less, for a user of too few chunks to tell a question's language by their words, those a main
model of one language reads close to one of them; and the multilingual question vector the leg searches with."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Protocol

from appliance.retrieval_config import CrossLingualConfig
from quart_app.store.database_failure import loggable_message
from quart_app.store.known_words import KnownWords
from quart_app.store.search_filters import Scope
from quart_app.store.search_store import Hit, SearchStore

log = logging.getLogger(__name__)


class CrossLingualVectors(Protocol):
    """What retrieval needs from the cross-lingual leg (CrossLingualIndex satisfies it)."""

    async def query_vector(self, question: str) -> list[float]: ...

    async def asked(self, user_id: str, *, whole_index: bool = True) -> None: ...

    async def covers(self, user_id: str) -> bool: ...


# a user's own chunks tell a question's language when there are at least this many of them (a few dozen documents);
# a user of fewer, whose chunks lack the question's words, may just have documents about something else
OWN_WORDS_TELL_FROM = 100
# a question a user of fewer chunks asks is foreign to the whole index when fewer than this share of its words occur in
# any chunk: a question in the index's language holds its common words and some others there even in a small index
# (held-out English docstring sentences: 0.4-0.9 of their words in 600 docstring chunks, 17 of 40 below
# known_words_below's 0.8), a foreign one little but its names and cognates (at most 0.43; 0.57 at 2,000-6,000 chunks)
INDEX_KNOWN_WORDS_BELOW = 0.5


def _log_failure(exc: Exception) -> None:
    # a PostgreSQL error's text may quote a chunk (an admin's trigger): the one rule of what may be logged
    log.warning("cross-lingual leg failed (%s: %s); answering without it", type(exc).__name__, loggable_message(exc))


async def _read_close(main_hits: Awaitable[list[Hit]] | None, within: float | None) -> bool:
    """Whether the main model's nearest chunk to the question lies within `within` (never without a bound)."""
    if within is None or main_hits is None:
        return False
    hits = await main_hits
    return bool(hits) and hits[0].score < within


class CrossLingualGate:
    """Decides per question whether the cross-lingual leg answers it, and gives the leg's question vector.
    `main_reads_language_within`: the main model's catalogue reads_language_within (MiniLM's 0.5: within it, a small
    user's question is in their documents' language), None when its distances do not tell (a multilingual model, whose
    English and German questions lie 0.10-0.24 from a small user's chunks alike) or it is unknown (an external one)."""

    def __init__(
        self,
        store: SearchStore,
        leg: CrossLingualVectors,
        config: CrossLingualConfig,
        main_reads_language_within: float | None,
    ) -> None:
        self._store = store
        self._leg = leg
        self._config = config
        self._reads_within = main_reads_language_within

    async def question_vector(
        self, user_id: str, query: str, scope: Scope | None, main_hits: Awaitable[list[Hit]] | None
    ) -> list[float] | None:
        """The leg's vector of a question whose words the documents mostly do not hold (in another language than
        theirs); None for any other question, where the leg costs English ranking, nor for one the main model reads
        close to a chunk of a user of too few chunks to tell its language by their words (OWN_WORDS_TELL_FROM,
        main_reads_language_within). `main_hits`: the main vector leg's, None without them."""
        known = await self._store.known_word_share(user_id, query, scope)
        if known is None or known.share >= self._config.known_words_below:
            return None
        own_words_tell = known.chunks_read >= OWN_WORDS_TELL_FROM
        if not own_words_tell and await _read_close(main_hits, self._reads_within):
            # the main model reading it that close to a chunk tells it is in their documents' language (an English
            # question over a few English files): the leg would be thrown away, so its user's vectors are not wanted
            return None
        try:
            await self._leg.asked(user_id, whole_index=own_words_tell or await self._foreign_to_index(known))
            if not await self._leg.covers(user_id):
                log.debug("cross-lingual leg: some of the user's chunks have no vector yet; answering without it")
                return None
            vector = await self._leg.query_vector(query)
        except Exception as exc:  # the other legs still answer
            _log_failure(exc)
            return None
        log.debug("cross-lingual leg: %.0f %% of the question's words occur in the documents", known.share * 100)
        return vector

    async def _foreign_to_index(self, known: KnownWords) -> bool:
        """Whether a question that the user's chunks mostly lack, fewer than OWN_WORDS_TELL_FROM of them, is foreign to
        the whole index too (INDEX_KNOWN_WORDS_BELOW), which is what filling in every user's vectors is worth hours of
        CPU for (a user of one file asking in the index's language gets the leg over their own chunks only)."""
        return await self._store.index_word_share(known.words) < INDEX_KNOWN_WORDS_BELOW

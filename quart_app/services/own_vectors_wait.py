"""How long a question that needs the cross-lingual leg waits for its user's chunks to get their vectors.

A user of a few files asking in another language for the first time finds the right file when the question is answered
with that user's own vectors (on the real Nextcloud: first in 5 of 5 runs, second in 4 of 4 without), a few seconds
more than a question the LLM answers in many. So the question waits, but only as long as the fill really takes: for at
most FIRST_QUESTION_WAITS_FOR chunks, only while their fill is expected to end within FIRST_QUESTION_WAIT_S at the pace
of this process's fill, and it looks again when a batch ends, not every few hundred ms. A fill that cannot end in time
is not waited for (it used to cost the whole 8 s, and the question was then answered without the leg anyway), nor one
that makes no progress: no batch ending within STUCK_AFTER_BATCHES batches' time at the pace (the model hangs, the loop
has stopped).
"""

from __future__ import annotations

import asyncio
import logging
import time

from quart_app.store import Database
from quart_app.store.cross_lingual_store import user_chunks_waiting

log = logging.getLogger(__name__)

# a question waits for its user's chunks without a vector when there are at most this many (a user of a few files, or
# one who just added some)
FIRST_QUESTION_WAITS_FOR = 16
# and only while their fill is expected to end within this long of the question
FIRST_QUESTION_WAIT_S = 8.0
# the seconds a chunk takes before this process has filled any in (0.33-0.48 s on the real Nextcloud, one thread)
CHUNK_S_GUESS = 0.4
# weight of the newest batch in the pace: one slow batch (the machine busy for a moment) must not end every wait
PACE_WEIGHT = 0.3
# the fill makes no progress when no batch ends within this many batches' time at the pace (2 s at the guessed pace
# and batch_size 1): a slow batch on a busy machine is still waited for, a stuck model or a stopped loop is not
STUCK_AFTER_BATCHES = 5.0


class OwnVectorsWait:
    """The fill's pace (seconds a chunk, from the batches of this process's backfill loop, which tells it of each) and
    the questions that wait for their user's chunks."""

    def __init__(self, db: Database, batch_size: int) -> None:
        self._db = db
        self._batch_size = batch_size
        self._chunk_s = CHUNK_S_GUESS
        # set when a batch ends, then replaced: a question waits for the first batch to end after its count
        self._batch_ended = asyncio.Event()

    def batch_ended(self, chunks: int, seconds: float) -> None:
        """A batch of `chunks` ended after `seconds`, its vectors committed (or the model refused it)."""
        if chunks:
            self._chunk_s += PACE_WEIGHT * (seconds / chunks - self._chunk_s)
        self._batch_ended.set()
        self._batch_ended = asyncio.Event()

    async def _waiting(self, user_id: str) -> int:
        """How many of `user_id`'s chunks have no vector yet, counted up to FIRST_QUESTION_WAITS_FOR + 1."""
        async with self._db.connection() as conn:
            return await user_chunks_waiting(conn, user_id, FIRST_QUESTION_WAITS_FOR + 1)

    async def wait(self, user_id: str) -> None:
        """Until `user_id`'s chunks without a vector have theirs, while they are few, their fill is expected to end
        within FIRST_QUESTION_WAIT_S of the call (the batch under way first, then theirs at the measured pace) and it
        makes progress (a batch ends within STUCK_AFTER_BATCHES batches' time)."""
        started = time.monotonic()
        ended = self._batch_ended
        waiting = await self._waiting(user_id)
        if not 0 < waiting <= FIRST_QUESTION_WAITS_FOR:
            return
        expected = (waiting + self._batch_size) * self._chunk_s
        while waiting and time.monotonic() - started + expected <= FIRST_QUESTION_WAIT_S:
            stuck_after = STUCK_AFTER_BATCHES * self._batch_size * self._chunk_s
            try:
                await asyncio.wait_for(
                    ended.wait(), min(stuck_after, FIRST_QUESTION_WAIT_S - (time.monotonic() - started))
                )
            except TimeoutError:
                break  # the model hangs, the loop stopped, or another replica is filling them in
            ended = self._batch_ended
            waiting = await self._waiting(user_id)
            expected = waiting * self._chunk_s
        if waiting:
            log.info(
                "a question waited %.1f s for the cross-lingual vectors of its user's chunks; the %d still without one"
                " take about %.1f s more (%.2f s a chunk): answered without them, filled in behind it",
                time.monotonic() - started,
                waiting,
                expected,
                self._chunk_s,
            )
        else:
            log.info(
                "a question waited %.1f s for the cross-lingual vectors of its user's chunks",
                time.monotonic() - started,
            )

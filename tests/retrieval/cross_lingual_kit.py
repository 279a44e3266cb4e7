"""What the cross-lingual leg's tests share: its backfill loop running over a database, the fill's progress, a model
that counts what it embeds, alice's English documents and carla's few files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal, Protocol

from async_wait import wait_while_progressing
from corpus_writer import Corpus
from multilingual_questions import ENGLISH_DOCUMENTS
from retrieval_corpus import stdlib_docstrings

from appliance.retrieval_config import CrossLingualConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.runtimes.cross_lingual_model import CrossLingualModel
from quart_app.services.cross_lingual import CrossLingualIndex, MultilingualEmbedder
from quart_app.store.cross_lingual_store import bind_model, read_progress
from quart_app.store.database import Database

CHOIR = "files__default: carla/choir.odt"
# carla's few short English files (too few to tell a question's language by their words); the multilingual model puts
# the theatre's dress rehearsal before her choir
CARLAS_FILES = {
    CHOIR: "St. Paul's Choir. Conductor: Maria Lenz. Tuesdays 19:30-21:30. Fee 10 EUR/month.",
    "files__default: carla/theatre.txt": "Theatre club: dress rehearsal of the spring play on Friday at 6 pm on the"
    " main stage.",
    "files__default: carla/band.txt": "Brass band: practice every Wednesday night in the fire station, bring your"
    " instrument.",
    "files__default: carla/piano.txt": "Piano lessons for Lea with Mrs. Roth, Mondays 16:00, 45 minutes.",
    "files__default: carla/kids.txt": "Football training for Max on Mondays and Wednesdays at 17:00; swimming on"
    " Saturday mornings.",
}
# 2 of its 5 words (the, choir) occur in her files: the gate takes it for foreign to them
QUESTION = "When does the choir rehearse?"
GERMAN_QUESTION = "Wann probt der Chor?"


class BoundModel(MultilingualEmbedder, Protocol):
    """A model the database can be bound to (CrossLingualModel, or a test's wrapper of it)."""

    @property
    def dimension(self) -> int: ...


@asynccontextmanager
async def running_backfill(db: Database, model: BoundModel) -> AsyncIterator[tuple[CrossLingualIndex, BackgroundLoops]]:
    """The database bound to `model`, and a CrossLingualIndex (one thread) whose backfill loop runs until the block
    ends."""
    async with db.connection() as conn:
        await bind_model(conn, model.model_id, model.dimension)
    index = CrossLingualIndex(db, model, CrossLingualConfig(threads=1))
    loops = BackgroundLoops()
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)
    try:
        yield index, loops
    finally:
        await loops.close()


async def vector_progress(db: Database) -> tuple[int, int, bool]:
    async with db.connection() as conn:
        progress = await read_progress(conn)
    return progress.vectors, progress.chunks, progress.wanted


async def all_filled(db: Database) -> bool:
    filled, chunks, _ = await vector_progress(db)
    return filled == chunks > 0


async def fill_progress(db: Database) -> int:
    """The chunks the fill is done with: those with a vector and those the model refused."""
    async with db.connection() as conn:
        progress = await read_progress(conn)
    return progress.vectors + progress.refused


async def wait_for_fill(db: Database, check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Until `check()`, while the fill goes on: fails only once no chunk was filled in (or refused) for a minute, so a
    loaded machine (a chunk took 5 s at load 12) slows the wait without failing it, and a fill that stops still does."""
    await wait_while_progressing(check, lambda: fill_progress(db), what)


async def fill_in(db: Database, index: CrossLingualIndex) -> None:
    """Runs the index's backfill loop until every chunk has its cross-lingual vector."""
    loops = BackgroundLoops()
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)
    try:
        await wait_for_fill(db, lambda: all_filled(db), "every chunk has its cross-lingual vector")
    finally:
        await loops.close()


async def refused_chunks(db: Database) -> int:
    async with db.connection() as conn:
        return (await read_progress(conn)).refused


class CountingModel:
    """A replica's model: the real one, counting the chunks it embeds."""

    def __init__(self, model: CrossLingualModel) -> None:
        self._model = model
        self.passages = 0

    @property
    def model_id(self) -> str:
        return self._model.model_id

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if input_type == "passage":
            self.passages += len(texts)
        return await self._model.embed(texts, input_type)


async def add_alices_documents(corpus: Corpus) -> Corpus:
    """The three targets among 60 English documents (standard-library docstrings), all readable by alice."""
    for name, text in stdlib_docstrings(60):
        await corpus.add(f"files__default: py/{name}", [text], ["alice"], title=f"Python module {name}")
    for source_id, text in ENGLISH_DOCUMENTS.items():
        await corpus.add(source_id, [text], ["alice"], title=source_id)
    return corpus


class FailingAtFirstModel(CountingModel):
    """The real model, but its first `calls` calls of passages fail (as an engine failing for a while would)."""

    def __init__(self, model: CrossLingualModel, calls: int) -> None:
        super().__init__(model)
        self.failures_left = calls

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if input_type == "passage" and self.failures_left:
            self.failures_left -= 1
            raise ValueError("the engine refused this batch")
        return await super().embed(texts, input_type)


class CallOrderModel(CountingModel):
    """The real model, logging in the order they end: each call of passages (its number of chunks), and when a
    question asked for its vector and got it."""

    def __init__(self, model: CrossLingualModel) -> None:
        super().__init__(model)
        self.log: list[int | str] = []

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if input_type == "query":
            self.log.append("asked")
        vectors = await super().embed(texts, input_type)
        self.log.append(len(texts) if input_type == "passage" else "answered")
        return vectors


class RecordingModel(CountingModel):
    """The real model, recording the passages it embeds in order."""

    def __init__(self, model: CrossLingualModel) -> None:
        super().__init__(model)
        self.embedded: list[str] = []

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if input_type == "passage":
            self.embedded += texts
        return await super().embed(texts, input_type)


class RefusingModel(CountingModel):
    """The real model, but the engine refuses every batch holding one of `refused` (as it would a text it cannot
    read)."""

    def __init__(self, model: CrossLingualModel, refused: str) -> None:
        super().__init__(model)
        self._refused = refused

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if input_type == "passage" and any(self._refused in text for text in texts):
            raise ValueError("the engine refused this batch")
        return await super().embed(texts, input_type)


class HeldModel:
    """The real model, whose passages wait until `release` is set (a fill that does not end while a question waits)."""

    def __init__(self, model: CrossLingualModel) -> None:
        self._model = model
        self.release = asyncio.Event()
        self.holding = False

    @property
    def model_id(self) -> str:
        return self._model.model_id

    @property
    def dimension(self) -> int:
        return self._model.dimension

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if input_type == "passage":
            self.holding = True
            await self.release.wait()
        return await self._model.embed(texts, input_type)

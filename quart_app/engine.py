"""The engine under the routes: DB pool, embedding client, parse pool, worker, services; opened and closed in order.

The role (settings.role, appliance/app_role.py) decides which of them run: the parse pool, the embedding worker, the
LLM, the status sampler and each pull poller only in a role with that duty.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from quart import current_app

from appliance.app_role import ANSWER_DUTIES, CLAIM_DUTIES, Duty, has_duty, needs_any
from quart_app.app_settings import AppSettings
from quart_app.background_loops import BackgroundLoops, LoopStatus
from quart_app.cross_lingual_opening import open_cross_lingual
from quart_app.daemon_thread import in_daemon_thread
from quart_app.embedding_identity import main_reads_language_within, model_identity
from quart_app.engine_opening import EMBEDDER_WAIT
from quart_app.nextcloud import NextcloudClient
from quart_app.pull import PullMode
from quart_app.services.answer import AnswerService
from quart_app.services.cross_lingual import CrossLingualIndex
from quart_app.services.embedder_start import EmbedderStartWait
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.services.ingest import IngestService
from quart_app.services.source_order import SourceOrder
from quart_app.services.source_spool import SourceSpool
from quart_app.services.status_history import StatusSampler
from quart_app.stop_deadline import ClosingSteps, StopDeadline
from quart_app.store import Database
from quart_app.store.claim_store import ClaimStore
from quart_app.store.database_outage import DatabaseOutage, DatabaseReachability
from quart_app.store.migration_lock import MIGRATION_WAIT

if TYPE_CHECKING:
    from quart_app.loaders import ParsePool

log = logging.getLogger(__name__)

ENGINE_EXTENSION = "ccb_engine"
# the LoopStatus of the engine's opening (quart_app/engine_opening.py): its step and since when, once start-up ended
OPENING_EXTENSION = "ccb_engine_opening"
# the app's DatabaseReachability: whether the engine that is not open waits for PostgreSQL
REACHABILITY_EXTENSION = "ccb_database_reachability"
MIB = 1024 * 1024
PARSES_AT_STOP_S = 0.05
MIGRATIONS_STEP = "applying the schema migrations"
# what a route's 503 adds while the engine is at that step, or waits for another replica's: why it may take long
MIGRATIONS_TAKE = "one replica at a time; minutes on a large index"


class EngineNotReadyError(Exception):
    """A route ran before the engine was opened (before_serving) or after it was closed."""


class EngineStillOpeningError(EngineNotReadyError):
    """The engine is not open yet and opens by itself (a step under way, a wait for the models or a service): the
    request may be sent again (503 + cc-retry: the PHP app keeps the batch queued without logging an error)."""


class EngineWaitsForServiceError(EngineStillOpeningError):
    """The engine is not open, and a service it needs cannot be reached."""


class EngineWaitsForDatabaseError(EngineWaitsForServiceError):
    """The engine is not open, and PostgreSQL cannot be reached."""


@dataclass
class Engine:
    """What the routes and pollers call; `close()` releases everything in reverse order of opening."""

    db: Database
    # orders ingests against access changes and deletes of the same sources
    order: SourceOrder
    ingest: IngestService
    # None in a role that answers no questions (no LLM loaded): indexing, updatesproc, embedding-worker
    answer: AnswerService | None
    # built in every role (GET /status shows its embedder outage state); started only with the embedding duty
    worker: EmbeddingWorker
    # None when NEXTCLOUD_URL is not set: push only
    pull: PullMode | None
    resources: AsyncExitStack = field(repr=False)
    # None when retrieval.cross_lingual is off, its model could not be loaded, or the role neither answers nor embeds
    cross_lingual: CrossLingualIndex | None = None

    async def close(self) -> None:
        await self.resources.aclose()

    def answers(self) -> AnswerService:
        """The answer service; only routes and loops of an answering role call this."""
        if self.answer is None:
            raise EngineNotReadyError("this replica's APP_ROLE answers no questions: it loaded no LLM")
        return self.answer


def engine() -> Engine:
    found: Engine | None = current_app.extensions.get(ENGINE_EXTENSION)
    if found is None:
        opening = current_app.extensions.get(OPENING_EXTENSION)
        reachability: DatabaseReachability | None = current_app.extensions.get(REACHABILITY_EXTENSION)
        if reachability is not None and reachability.outage is not None:
            raise EngineWaitsForDatabaseError(_waits_for_database(opening, reachability.outage))
        if opening is not None and opening.state == "waiting" and opening.detail.startswith(EMBEDDER_WAIT):
            raise EngineWaitsForServiceError(_not_open(opening))
        if opening is not None and opening.state in ("opening", "waiting"):
            raise EngineStillOpeningError(_not_open(opening))
        raise EngineNotReadyError(_not_open(opening))
    return found


def _waits_for_database(opening: LoopStatus | None, outage: DatabaseOutage) -> str:
    """The engine is not open, and PostgreSQL cannot be reached: since when, why, and what to do."""
    if opening is not None and opening.state == "opening":
        doing = f"still opening ({opening.detail}, for {time.time() - opening.since:.0f} s)"
    elif opening is not None and opening.state == "waiting":
        doing = f"waiting {opening.detail}"
    else:
        doing = "not open"
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(outage.since))
    return (
        f"the engine is {doing}: PostgreSQL cannot be reached since {since} ({outage.reason}); start it (embedded: `ccb"
        " logs postgres`) or check the server EXTERNAL_DB names; the engine opens by itself once PostgreSQL answers;"
        " retry later"
    )


def _not_open(opening: LoopStatus | None) -> str:
    """Why the engine is not open, as far as its opening tells."""
    if opening is not None and opening.state == "opening":
        migrating = opening.detail == MIGRATIONS_STEP or opening.detail.startswith(MIGRATION_WAIT)
        why = f" ({MIGRATIONS_TAKE})" if migrating else ""
        return (
            f"the engine is still opening ({opening.detail}, for {time.time() - opening.since:.0f} s){why}; it opens"
            " by itself, the app answers /heartbeat, /init and /enabled meanwhile; send the request again later (the"
            " app log tells each step)"
        )
    if opening is not None and opening.state == "failed":
        return f"the engine did not open ({opening.detail}); the app log says why"
    if opening is not None and opening.state == "waiting":
        return (
            f"the engine is not open: it is waiting {opening.detail}; it opens by itself once that is done; retry"
            " later (GET /status, the app log says what to do)"
        )
    return (
        "the engine is not open: the app is starting or stopping, or POST /init is still fetching the models;"
        " retry shortly (GET /status, the app log)"
    )


def _parse_pool_closer(pool: ParsePool, deadline: StopDeadline | None) -> Callable[[], Awaitable[None]]:
    """The parse pool's close; at a stop the parses still running are nobody's (their requests and loops were
    cancelled): a moment for the idle workers to come back, then the busy ones are killed."""

    async def close() -> None:
        await (pool.close(PARSES_AT_STOP_S) if deadline is not None and deadline.begun else pool.close())

    return close


async def open_engine(
    settings: AppSettings,
    *,
    nextcloud: NextcloudClient | None = None,
    loops: BackgroundLoops | None = None,
    enabled: Callable[[], bool] = lambda: True,
    stage: Callable[[str], None] = lambda _step: None,
    reachability: DatabaseReachability | None = None,
    stop_deadline: StopDeadline | None = None,
    embedder_start: EmbedderStartWait | None = None,
) -> Engine:
    """Open every resource in order; if one fails, the ones already open are closed again.

    With a Nextcloud client and a loop owner, the pull pollers start too (they idle until the app is enabled and
    the PHP app serves its queues). `stage` is told each slow step as it begins (GET /status shows it);
    `reachability` records since when and why PostgreSQL cannot be reached, across attempts and once open;
    `stop_deadline` bounds the closers at a stop (quart_app/stop_deadline.py); `embedder_start` is the start-up wait
    for a llama.cpp or external embedding service shared by several attempts (a new one, its grace whole, if None).
    """
    from tokenizers import Tokenizer

    from appliance.model_catalogue import chunking_tokenizer_file, load_catalogue
    from quart_app.chunking import ChunkerSpec, default_chunk_tokens, prefix_tokens
    from quart_app.loaders import ParseLimits, ParsePool
    from quart_app.runtimes.embedding_client import EmbeddingClient, service_prefixes
    from quart_app.runtimes.llm_backend import create_llm_backend
    from quart_app.runtimes.reranker import Reranker, load_scorer
    from quart_app.services.answer import build_answer_service

    config = settings.config
    role = settings.role
    async with AsyncExitStack() as stack:
        closing = ClosingSteps(stack, stop_deadline)
        pool = config.pgvector.pool_for(role)
        db = Database(
            settings.db_url,
            pool.pool_min,
            pool.pool_max,
            acquire_timeout_s=pool.acquire_timeout_s,
            statement_timeout_s=pool.statement_timeout_s,
            lock_timeout_s=pool.lock_timeout_s,
            reachability=reachability,
        )
        stage("connecting to PostgreSQL")
        await db.open(config.pgvector.connect_timeout_s)
        closing.add("database pool", db.close)
        # once the pool is open, not before each attempt: during an outage the attempts would repeat it every 30 s
        log.info(
            "database pool for APP_ROLE %s: %d-%d connections, statement timeout %g s",
            pool.role.value,
            pool.pool_min,
            pool.pool_max,
            pool.statement_timeout_s,
        )
        emb = config.embedding
        client = EmbeddingClient(
            emb.base_url,
            api_key=emb.api_key,
            model=emb.model_name,
            basic_auth=(emb.username, emb.password) if emb.username and emb.password else None,
            timeout_s=emb.request_timeout,
            prefixes=service_prefixes(emb, load_catalogue(settings.model_catalogue)),
            send_input_type=emb.workers > 0,
            batch_size=emb.batch_size,
            concurrency=emb.concurrency,
            request_retries=emb.request_retries,
            retry_backoff_s=emb.retry_backoff_s,
        )
        closing.add("embedding client", client.aclose)
        starting = embedder_start or EmbedderStartWait()
        model_id, dimension, entry, reported_model = await model_identity(settings, client, starting, stage)
        # one replica at a time; minutes when a migration or a model change rewrites every chunk of a large index
        stage(MIGRATIONS_STEP)
        await db.migrate(model_id, dimension, reported_model, waiting=lambda wait: stage(wait or MIGRATIONS_STEP))
        pools_step = "starting the parse pool, the embedding worker and the cross-lingual model"
        stage(pools_step)
        tokenizer_file = await asyncio.to_thread(chunking_tokenizer_file, entry, settings.storage.model_dir)
        if tokenizer_file is None:
            raise EngineNotReadyError(
                f"chunking needs a tokenizer file, and catalogue model {entry.id!r} (embedding.onnx.model) has none;"
                " set embedding.onnx.model to a catalogued ONNX model with a tokenizer"
            )
        tokenizer = await asyncio.to_thread(Tokenizer.from_file, str(tokenizer_file))
        # the embedder prepends the passage prefix (e5: "passage: "), so a full chunk must leave room for it
        prefix = prefix_tokens(tokenizer, entry.prefixes.passage)
        chunk_tokens = emb.chunk_tokens or default_chunk_tokens(entry.max_tokens, prefix_tokens=prefix)
        # the parse workers chunk (under their memory cap); the app only receives the chunks
        parse_pool = ParsePool(
            config.ingest.parse_workers,
            ParseLimits(
                timeout_s=config.ingest.parse_timeout_s,
                memory_mb=config.ingest.parse_memory_mb,
                max_file_mb=config.ingest.max_part_mb,
                max_uncompressed_mb=config.ingest.max_uncompressed_mb,
                max_compression_ratio=float(config.ingest.max_compression_ratio),
            ),
            chunker=ChunkerSpec(tokenizer_file, chunk_tokens, emb.chunk_overlap_tokens),
            crash_retries=config.ingest.parse_crash_retries,
        )
        if has_duty(role, Duty.PARSING):
            await parse_pool.open()
            closing.add("parse pool", _parse_pool_closer(parse_pool, stop_deadline))
        worker = EmbeddingWorker(db, client, config.embedding_worker, loops)
        if has_duty(role, Duty.EMBEDDING):
            await worker.start()
            closing.add("embedding worker", worker.close)
        # its model's binding takes the migrations' lock: a wait for another replica shows as the opening's step
        cross_lingual = await open_cross_lingual(settings, db, closing, loops, lambda wait: stage(wait or pools_step))

        def chunks_queued() -> None:
            worker.wake()
            if cross_lingual is not None:
                cross_lingual.wake()

        # claims in the database: app replicas sharing it never ingest one source at once; a role that never
        # claims keeps no claim connection open
        claims = ClaimStore(db, min_size=1 if needs_any(role, CLAIM_DUTIES) else 0)
        await claims.open(config.pgvector.connect_timeout_s)
        closing.add("claim connections", claims.close)
        order = SourceOrder(config.ingest.access_wait_s, claims)
        ingest = IngestService(
            db,
            parse_pool,
            parse_concurrency=config.ingest.parse_workers,
            on_chunks_queued=chunks_queued,
            order=order,
        )
        answer = None
        if needs_any(role, ANSWER_DUTIES):
            stage("loading the LLM")
            load_llm = functools.partial(create_llm_backend, config, settings.storage.model_dir, nextcloud)
            llm = await in_daemon_thread(load_llm, "load-llm")
            closing.add(f"LLM backend {llm.name}", llm.aclose)
            reranker = None
            if config.retrieval.reranker is not None:
                catalogue = load_catalogue(settings.model_catalogue)
                model_dir = settings.storage.model_dir
                load = functools.partial(load_scorer, config.retrieval.reranker, catalogue, model_dir)
                stage("loading the reranker")
                scorer = await in_daemon_thread(load, "load-reranker")
                reranker = Reranker(scorer)
                closing.add(f"reranker {reranker.model_id}", reranker.aclose)
            reads_within = main_reads_language_within(settings, entry)
            answer = build_answer_service(config, db, client, llm, reranker, cross_lingual, reads_within)
        if loops is not None and has_duty(role, Duty.STATUS_HISTORY):
            sampler = StatusSampler(db, config.status_history)
            loops.start(StatusSampler.LOOP_NAME, sampler.run)
            closing.add("status history sampler", functools.partial(loops.stop, [StatusSampler.LOOP_NAME]))
        pull = None
        if nextcloud is not None and loops is not None:
            spool = SourceSpool(settings.storage.spool_dir, config.ingest.max_part_mb * MIB)
            pull = PullMode(nextcloud, config, enabled, db, ingest, answer, spool, settings.storage.run_dir, role)
            closing.add("pull replica slot", pull.close)
            pull.start(loops)
        engine = Engine(
            db=db,
            order=order,
            ingest=ingest,
            answer=answer,
            worker=worker,
            pull=pull,
            resources=stack.pop_all(),
            cross_lingual=cross_lingual,
        )
    return engine

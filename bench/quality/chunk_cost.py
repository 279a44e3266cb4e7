"""What the quality corpus's chunks cost the embedder per token, next to full chunks, and whether every word of every
document is inside a chunk.

    .venv/bin/python bench/quality/chunk_cost.py [--every 3] [--rounds 2]

Chunks the fetched corpus (bench/quality/fetch_corpus.py) with the shipped chunker settings (254 tokens, 32 overlap,
as bench/quality/run.py does), checks that the chunks of each document cover every word of its text, then sends
what the embedding worker would send (header and text) straight to the embedder (MiniLM int8) in the worker's
token-budgeted batches, in turns with full 254-token chunks of made-up prose (bench/ingest_throughput.py's corpus
cut as plain text, the raw embedder's best case). Tokens/s of the corpus's chunks over tokens/s of the full ones is
the share of the raw embedder's speed the chunking leaves to ingest (the pipeline costs a few % more:
bench/results/ingest.txt). `--every N` keeps every N-th document, to keep the run short on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(HERE)]

from bench_services import MODEL, start_embedder, stop  # noqa: E402
from fetch_corpus import DEFAULT_CACHE, fetch, load_manifest  # noqa: E402  # after the sys.path line
from ingest_throughput import budget_batches, make_corpus, tokenizer_path  # noqa: E402

from quart_app.chunking import Chunk, ChunkerSpec, TokenChunker, embedding_text  # noqa: E402
from quart_app.loaders import extract_text  # noqa: E402
from quart_app.runtimes.embedding_client import EmbeddingClient  # noqa: E402

CHUNK_TOKENS = 254  # configs/config.cpu.yaml with MiniLM (256 - [CLS]/[SEP])
OVERLAP_TOKENS = 32
WORKERS = 2


def uncovered_words(text: str, chunks: list[Chunk]) -> int:
    """Words of `text` not wholly inside some chunk."""
    covered = bytearray(len(text))
    for chunk in chunks:
        covered[chunk.start : chunk.start + len(chunk.text)] = b"\x01" * len(chunk.text)
    return sum(1 for m in re.finditer(r"\S+", text) if not all(covered[m.start() : m.end()]))


def corpus_chunks(chunker: TokenChunker, every: int) -> tuple[list[str], list[int], dict[str, float]]:
    """Embedded texts and their tokens for every `every`-th corpus document, with chunk and coverage figures."""
    corpus = fetch(DEFAULT_CACHE)
    documents = load_manifest(corpus)[::every]
    texts: list[str] = []
    tokens: list[int] = []
    body_tokens = words = missed = 0
    for document in documents:
        text = extract_text(corpus / document["path"], document["mimetype"])
        chunks = list(chunker.split(text, document["mimetype"]))
        words += len(text.split())
        missed += uncovered_words(text, chunks)
        for chunk in chunks:
            texts.append(embedding_text(chunk.header, chunk.text))
            tokens.append(chunk.token_count)
            body_tokens += chunker.count_tokens(chunk.text)
    figures = {
        "documents": len(documents),
        "words": words,
        "uncovered_words": missed,
        "chunks": len(texts),
        "mean_tokens": statistics.mean(tokens),
        "under_100": sum(t < 100 for t in tokens),
        "header_share": 1 - body_tokens / sum(tokens),
    }
    return texts, tokens, figures


def full_chunks(chunker: TokenChunker, root: Path, count: int) -> tuple[list[str], list[int]]:
    """About `count` chunks of made-up prose cut as plain text: nearly all of them the full budget."""
    texts: list[str] = []
    tokens: list[int] = []
    for path in make_corpus(root, max(1, count // 4), 4):
        for chunk in chunker.split(path.read_text(encoding="utf-8"), "text/plain"):
            texts.append(chunk.text)
            tokens.append(chunk.token_count)
    return texts[:count], tokens[:count]


async def embed_rate(url: str, texts: list[str], tokens: list[int]) -> float:
    """Tokens/s of the embedder on `texts` in the worker's batches, `WORKERS` requests at a time."""
    queue = list(reversed(budget_batches(texts, tokens)))
    async with EmbeddingClient(url, timeout_s=600) as client:
        await client.embed(texts[:8], "passage")  # warm-up
        started = time.perf_counter()

        async def lane() -> None:
            while queue:
                await client.embed(queue.pop(), "passage")

        await asyncio.gather(*(lane() for _ in range(WORKERS)))
        return sum(tokens) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=1, help="keep every N-th corpus document")
    parser.add_argument("--rounds", type=int, default=2, help="turns of (full chunks, corpus chunks)")
    args = parser.parse_args()
    chunker = ChunkerSpec(tokenizer_path(), CHUNK_TOKENS, OVERLAP_TOKENS).build()
    texts, tokens, figures = corpus_chunks(chunker, args.every)
    print(
        f"{figures['documents']} documents, {figures['words']} words, {figures['uncovered_words']} outside every chunk;"
        f" {figures['chunks']} chunks of {figures['mean_tokens']:.0f} tokens on average ({figures['under_100']} under"
        f" 100), headers {100 * figures['header_share']:.1f} % of the embedded tokens",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="ccb-bench-chunk-cost-") as tmp:
        root = Path(tmp)
        full_texts, full_tokens = full_chunks(chunker, root / "prose", len(texts))
        url, embedder = start_embedder(root)
        try:
            ratios = []
            for _ in range(args.rounds):
                full = asyncio.run(embed_rate(url, full_texts, full_tokens))
                ours = asyncio.run(embed_rate(url, texts, tokens))
                ratios.append(ours / full)
                print(f"full chunks {full:.0f} tokens/s, corpus chunks {ours:.0f} tokens/s: {ours / full:.3f}")
        finally:
            stop(embedder)
    load = os.getloadavg()[0]
    mean = statistics.mean(ratios)
    # header tokens are embedded but are not the document's: the share of the raw speed left for document text
    body = mean * (1 - figures["header_share"])
    print(f"model {MODEL}; corpus/full tokens/s {mean:.3f}, document tokens only {body:.3f}; load average {load:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

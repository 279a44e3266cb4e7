"""The lexical leg at size: tier by tier through the GIN index (all the words first, down to half of them), with the
identifiers as lexemes of their own, and exactly the chunks the minimum-should-match rule keeps."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from corpus_writer import Corpus
from test_question_bounds import RecordingCursor, RecordingSource

from quart_app.store import lexical_query
from quart_app.store.database import Database
from quart_app.store.lexical_query import (
    MAX_INDEX_GROUPS,
    MAX_MATCH_WORDS,
    MIN_SHOULD_MATCH,
    WORD_STATS_SAMPLE,
    LexicalTerms,
    WordSample,
    identifiers_in,
    informative_words,
    lexical_terms,
    match_tiers,
    tier_groups,
)
from quart_app.store.search_store import SearchStore

FRUITS = ["apple", "banana", "cherry", "damson", "elder", "fig", "grape", "huckle", "jujube", "kiwi", "lime", "mango"]


def test_each_tier_searches_the_index_with_groups_of_the_rarest_words() -> None:
    words = ["fig", "kiwi", "lime", "grape", "mango"]
    assert match_tiers(5) == [5, 4, 3] and match_tiers(1) == [1] and match_tiers(0) == [1]
    # all five: one group, which the index drives from the rarest word
    assert tier_groups(words, 5, []) == ["'fig' & 'kiwi' & 'lime' & 'grape' & 'mango'"]
    # three of five: triples of the 5 rarest, one GIN scan per lead word (fig with 6 pairs, kiwi with 3, lime with
    # 1); the identifiers are one group of lexemes of their own, no phrase for the index to recheck on the table
    three = tier_groups(words, 3, ["files:scan", "config.php"])
    assert three[2] == "'lime' & 'grape' & 'mango'" and three[-1] == "'files:scan' | 'config.php'"
    assert three[1] == "'kiwi' & ( 'lime' & 'grape' | 'lime' & 'mango' | 'grape' & 'mango' )" and len(three) == 4
    assert "<->" not in " ".join(three)
    # one word of two: either
    assert tier_groups(["fig", "kiwi"], 1, []) == ["'fig'", "'kiwi'"]
    assert tier_groups([], 1, ["config.php"]) == ["'config.php'"]
    # four of eight: pairs of the 6 rarest (15; triples of the 7 rarest would be 35 > MAX_INDEX_GROUPS) in 5 scans,
    # the 2 commonest drive nothing
    eight = [f"w{n}" for n in range(8)]
    assert tier_groups(eight, 4, [])[0] == "'w0' & ( 'w1' | 'w2' | 'w3' | 'w4' | 'w5' )"
    assert len(tier_groups(eight, 4, [])) == 5 and math.comb(7, 3) > MAX_INDEX_GROUPS >= math.comb(6, 2)
    assert "'w6'" not in " ".join(tier_groups(eight, 4, [])) and "'w7'" not in " ".join(tier_groups(eight, 4, []))
    # quoted for the cast: user text cannot inject tsquery syntax
    assert tier_groups(["it's", "a\\b"], 2, []) == ["'it''s' & 'a\\\\b'"]


def test_identifiers_are_found_by_the_rule_the_migration_applies_to_chunks() -> None:
    text = "Run occ files:scan --all, set Trusted_Domains in config.php (see os.path.join and größe_x)."
    assert identifiers_in(text) == ["files:scan", "trusted_domains", "config.php", "os.path.join", "e_x"]
    assert lexical_terms(text, 64).identifiers == tuple(identifiers_in(text))


async def test_the_database_holds_the_same_identifier_lexemes(db: Database, corpus: Corpus) -> None:
    text = "Run occ files:scan --all, set Trusted_Domains in config.php (see os.path.join and größe_x)."
    await corpus.add("alice: identifiers", [text], ["alice"], embedded=False)
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT tsvector_to_array(tsv) FROM chunks")).fetchone()
    assert row is not None and set(identifiers_in(text)) <= set(row[0])


async def test_an_identifier_is_matched_whole_not_as_its_words(db: Database, corpus: Corpus) -> None:
    await corpus.add("alice: code", ["add the host to trusted_domains in config.php"], ["alice"], embedded=False)
    # the same words with a space instead of the underscore: a phrase query took this for the identifier
    await corpus.add("alice: prose", ["only trusted domains may connect"], ["alice"], embedded=False)
    hits = await SearchStore(db).lexical_search("alice", lexical_terms("trusted_domains", 64), 10)
    identifiers = {hit.source_id: hit.identifiers for hit in hits}
    assert identifiers == {"alice: code": 1, "alice: prose": 0}


async def test_a_qualified_name_is_found_by_its_tails(db: Database, corpus: Corpus) -> None:
    text = "Response.iter_content() streams; edit /var/www/nextcloud/config/config.php; os.path.join since 10.2.3."
    await corpus.add("alice: qualified", [text], ["alice"], embedded=False)
    await corpus.add("alice: bare", ["call path.join on the parts"], ["alice"], embedded=False)
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT tsvector_to_array(tsv) FROM chunks ORDER BY id LIMIT 1")).fetchone()
    assert row is not None
    lexemes = set(row[0])
    assert {"iter_content", "config/config.php", "config.php", "path.join"} <= lexemes
    # only tails that are identifiers themselves and start with a letter: a lone word would change what the question's
    # words count, and version 2.3 is not 10.2.3
    assert not {"php", "join", "iter", "2.3"} & lexemes
    store = SearchStore(db)

    async def holders(question: str) -> list[str]:
        hits = await store.lexical_search("alice", lexical_terms(question, 64), 10)
        return sorted(hit.source_id for hit in hits if hit.identifiers > 0)

    assert await holders("iter_content") == ["alice: qualified"]
    assert await holders("config.php") == ["alice: qualified"]
    assert await holders("path.join") == ["alice: bare", "alice: qualified"]
    # the question's name is asked for whole: a shorter name in a chunk does not hold it
    assert await holders("os.path.join") == ["alice: qualified"]


def most_subplan_loops(plan: dict[str, Any]) -> float:
    """The most times any subplan of the plan ran (the per-chunk word and phrase counts are subplans)."""
    own = plan["Actual Loops"] if plan.get("Parent Relationship") == "SubPlan" else 0
    return max([float(own), *(most_subplan_loops(child) for child in plan.get("Plans", []))])


async def test_words_are_counted_only_in_chunks_holding_two_of_them(
    db: Database, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lexical_query, "DIRECT_SCAN_BELOW", 0)  # the index path, as for a user with many chunks
    words = ["apple", "banana", "cherry", "damson"]
    # each word alone in 150 chunks, two of them together in 3, none in 400: every word is informative (< 25%)
    singles = [f"a note about {words[n % 4]} number {n}" for n in range(600)]
    plain = [f"plain text {n}" for n in range(400)]
    for n in range(10):
        await corpus.add(f"alice: notes {n}", [*singles[n::10], *plain[n::10]], ["alice"], embedded=False)
    await corpus.add("alice: pairs", [f"{words[n]} with {words[n + 1]} number {n}" for n in range(3)], ["alice"])
    store = SearchStore(RecordingSource(db))
    RecordingCursor.sent = []
    assert len(await store.lexical_search("alice", lexical_terms(" ".join(words), 64), 100)) == 3
    statement, params = [sent for sent in RecordingCursor.sent if "holding" in str(sent[1])][-1]
    assert params["holding"] == 2  # the last tier: two of the four words
    async with db.connection() as conn:
        row = await (await conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)).fetchone()
    assert row is not None
    plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
    # words are counted in the 3 chunks holding two of them, never in the 600 holding one: those cannot qualify
    # (2 of 4 words needed), and at size counting them cost seconds
    assert most_subplan_loops(plan) == 3


def deciding_words(texts: dict[int, str], question: list[str]) -> list[str]:
    """The informative words, rarest first, capped: the rule evaluated in Python over all of the user's chunks (the
    sample is all of them here)."""
    holders = {word: sum(word in text.split() for text in texts.values()) for word in question}
    kept = informative_words(question, len(texts), [holders[w] for w in question])
    return sorted(kept, key=holders.__getitem__)[:MAX_MATCH_WORDS]


def qualifying(texts: dict[int, str], question: list[str]) -> set[int]:
    rarest = deciding_words(texts, question)
    need = max(1, math.ceil(len(rarest) * MIN_SHOULD_MATCH))
    return {cid for cid, text in texts.items() if sum(w in text.split() for w in rarest) >= need}


@pytest.mark.parametrize("direct_below", [0, lexical_query.DIRECT_SCAN_BELOW], ids=["index", "direct"])
async def test_the_hits_are_exactly_the_chunks_holding_half_the_informative_words(
    db: Database, corpus: Corpus, monkeypatch: pytest.MonkeyPatch, direct_below: int
) -> None:
    # through the GIN index tier by tier, and in one pass over the user's own chunks: the same rule
    monkeypatch.setattr(lexical_query, "DIRECT_SCAN_BELOW", direct_below)
    rng = random.Random(11)
    # word n is in a chunk with probability 0.02 .. 0.5: rare, informative and common words
    texts = [" ".join(w for n, w in enumerate(FRUITS) if rng.random() < 0.02 + 0.04 * n) or "empty" for _ in range(300)]
    ids = await corpus.add("alice: fruit", texts, ["alice"], embedded=False)
    await corpus.add("bob: fruit", texts[:50], ["bob"], embedded=False)
    by_id = dict(zip(ids, texts, strict=True))
    store = SearchStore(db)
    for _ in range(25):
        question = rng.sample(FRUITS, rng.randint(2, 11))
        hits = await store.lexical_search("alice", LexicalTerms(tuple(question), ()), 1000)
        assert {h.chunk_id for h in hits} == qualifying(by_id, question), question
        # best first: more of the deciding words held ranks higher
        rarest = deciding_words(by_id, question)
        held = [sum(w in by_id[h.chunk_id].split() for w in rarest) for h in hits]
        assert held == sorted(held, reverse=True), question


async def test_a_tier_past_the_scan_cap_keeps_the_better_hits_of_the_tier_before(
    db: Database, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lexical_query, "DIRECT_SCAN_BELOW", 0)  # the index path, as for a user with many chunks
    # 40 chunks hold "fig" alone, written first, so a capped scan of "fig" sees only them; 3 hold "fig kiwi"; 200
    # hold neither, so "fig" stays informative
    await corpus.add("alice: figs", [f"fig number {n}" for n in range(40)], ["alice"], embedded=False)
    await corpus.add("alice: plain", [f"plain text {n}" for n in range(200)], ["alice"], embedded=False)
    pairs = await corpus.add("alice: pairs", [f"fig and kiwi {n}" for n in range(3)], ["alice"], embedded=False)
    store = SearchStore(db)
    everything = await store.lexical_search("alice", lexical_terms("fig kiwi", 64), 100)
    assert len(everything) == 43 and {h.chunk_id for h in everything[:3]} == set(pairs)
    monkeypatch.setattr(lexical_query, "LEXICAL_SCAN_CAP", 5)
    capped = await store.lexical_search("alice", lexical_terms("fig kiwi", 64), 100)
    # the both-words tier (3 hits) is complete; the one-word tier stops after 5 chunks
    assert {h.chunk_id for h in capped[:3]} == set(pairs) and len(capped) <= 3 + 5


def test_the_sample_picks_the_tiers_to_search() -> None:
    words = ["fig", "kiwi", "lime", "pear"]
    # 110 sampled chunks hold fig and kiwi, 5 hold fig alone, the whole sample taken (a big user)
    sample = WordSample(words, WORD_STATS_SAMPLE, [frozenset({0, 1})] * 110 + [frozenset({0})] * 5, 9000)
    # rarest first: no sampled chunk holds lime or pear
    assert sample.deciding_words() == ["lime", "pear", "kiwi", "fig"]
    # the two-word tier has 110 >= 100 sampled hits: at least that many chunks, so it alone is searched
    assert sample.tiers(["kiwi", "fig"], 100) == [2]
    # with 200 wanted, from the first tier with a sampled hit down
    assert sample.tiers(["kiwi", "fig"], 200) == [2, 1]
    # the four- and three-word tiers have no sampled hit: skipped
    assert sample.tiers(words, 200) == [2]
    # a small user: every chunk sampled and none holds half the words, so no tier is searched
    small = WordSample(words, 40, [frozenset({0})] * 3, 40)
    assert small.tiers(words, 100) == []


async def test_a_small_user_whose_chunks_hold_too_few_of_the_words_costs_no_index_scan(
    db: Database, corpus: Corpus
) -> None:
    await corpus.add("alice: notes", [f"a fig note {n}" for n in range(30)], ["alice"], embedded=False)
    store = SearchStore(RecordingSource(db))
    RecordingCursor.sent = []
    assert await store.lexical_search("alice", lexical_terms("fig kiwi lime pear", 64), 100) == []
    assert [params for _, params in RecordingCursor.sent if "holding" in str(params)] == []
    # an identifier is still looked for
    RecordingCursor.sent = []
    await store.lexical_search("alice", lexical_terms("fig kiwi lime pear files:scan", 64), 100)
    assert len([params for _, params in RecordingCursor.sent if "holding" in str(params)]) == 1


async def test_chunks_holding_the_words_cannot_crowd_the_identifier_out_of_a_capped_scan(
    db: Database, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lexical_query, "DIRECT_SCAN_BELOW", 0)  # the index path, as for a user with many chunks
    # 30 chunks hold "publish" and "string" as words, written first; one holds the identifier publish_string
    await corpus.add("alice: words", [f"publish the string {n}" for n in range(30)], ["alice"], embedded=False)
    await corpus.add("alice: plain", [f"plain text {n}" for n in range(200)], ["alice"], embedded=False)
    await corpus.add("alice: api", ["call publish_string() for string I/O"], ["alice"], embedded=False)
    monkeypatch.setattr(lexical_query, "LEXICAL_SCAN_CAP", 5)
    hits = await SearchStore(db).lexical_search("alice", lexical_terms("publish_string()", 64), 100)
    assert hits[0].source_id == "alice: api" and hits[0].identifiers == 1


def chunk_rows_read(plan: dict[str, Any]) -> float:
    """Rows the plan read from the chunks table's heap, kept or filtered out, over all loops."""
    own = 0.0
    if plan.get("Relation Name") == "chunks" and plan["Node Type"] != "Index Only Scan":
        own = (plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)) * plan["Actual Loops"]
    return own + sum(chunk_rows_read(child) for child in plan.get("Plans", []))


async def test_the_word_sample_reads_only_the_users_own_chunks(db: Database, corpus: Corpus) -> None:
    # alice and bob own every other document: a sample taken in the table's order (a sequential scan, as the planner
    # chose at size) read bob's chunks between alice's; at 1M chunks that cost 300 ms for a user of 50 documents
    for n in range(40):
        owner = ("alice", "bob")[n % 2]
        await corpus.add(f"{owner}: notes {n}", [f"a fig note {n}.{m}" for m in range(50)], [owner], embedded=False)
    async with db.connection() as conn:
        await conn.execute("VACUUM ANALYZE chunks, access")  # the count of her chunks reads only the index
    store = SearchStore(RecordingSource(db))
    RecordingCursor.sent = []
    await store.lexical_search("alice", lexical_terms("fig note", 64), 100)
    statement, params = next(sent for sent in RecordingCursor.sent if "sample" in str(sent[1]))
    async with db.connection() as conn:
        row = await (await conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)).fetchone()
    assert row is not None
    plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
    assert chunk_rows_read(plan) == WORD_STATS_SAMPLE


async def test_a_user_with_few_chunks_is_searched_in_them_not_through_the_index(
    db: Database, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bob's 5,000 chunks all hold "fig"; alice reads 1,500 chunks in 150 documents, 10 of them with "fig"
    for n in range(50):
        await corpus.add(f"bob: figs {n}", [f"fig tree {n}.{m}" for m in range(100)], ["bob"], embedded=False)
    for n in range(150):
        notes = [f"a {'fig' if n % 15 == 0 and m == 0 else 'plum'} note {n}.{m}" for m in range(10)]
        await corpus.add(f"alice: notes {n}", notes, ["alice"], embedded=False)
    async with db.connection() as conn:
        await conn.execute("ANALYZE chunks, access")
    read: dict[int, float] = {}
    for direct_below in (0, lexical_query.DIRECT_SCAN_BELOW):
        monkeypatch.setattr(lexical_query, "DIRECT_SCAN_BELOW", direct_below)
        store = SearchStore(RecordingSource(db))
        RecordingCursor.sent = []
        hits = await store.lexical_search("alice", lexical_terms("fig", 64), 100)
        assert {h.source_id.split(" ")[0] for h in hits} == {"alice:"} and len(hits) == 10
        statement, params = next(sent for sent in RecordingCursor.sent if "holding" in str(sent[1]))
        async with db.connection() as conn:
            row = await (await conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)).fetchone()
        assert row is not None
        read[direct_below] = chunk_rows_read((row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"])
    # through the index, bob's chunks holding "fig" are read to be dropped; directly, alice's own only
    assert read[lexical_query.DIRECT_SCAN_BELOW] <= 1500 < read[0]

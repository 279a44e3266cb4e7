"""Search quality on real text and the real MiniLM model: exact identifiers and paraphrases among >= 100 documents."""

from __future__ import annotations

import time

import pytest
from corpus_writer import Corpus
from retrieval_corpus import BACKUPS, FILES_SCAN, TRUSTED_DOMAINS, URLAUB, stdlib_docstrings
from retrieval_embedder import MiniLmEmbedder

from appliance.retrieval_config import RetrievalConfig
from quart_app.services.retrieval import RetrievalService
from quart_app.store.database import Database
from quart_app.store.lexical_query import lexical_terms
from quart_app.store.search_store import SearchStore

TARGETS = {"nc: trusted": TRUSTED_DOMAINS, "nc: scan": FILES_SCAN, "hr: urlaub": URLAUB, "ops: backups": BACKUPS}


@pytest.fixture
async def big_corpus(corpus: Corpus) -> Corpus:
    for name, text in stdlib_docstrings(120):
        await corpus.add(f"files__default: py/{name}", [text], ["alice"], title=f"Python module {name}")
    for source_id, (title, text) in TARGETS.items():
        await corpus.add(source_id, [text], ["alice"], title=title)
    return corpus


def test_identifier_terms_are_kept_whole() -> None:
    terms = lexical_terms("How do I set trusted_domains and run occ files:scan --all?", 64)
    assert terms.identifiers == ("trusted_domains", "files:scan")
    # raw terms, which the database's parser turns into words as it does for the chunks; no word list decides what
    # counts: which words are too common is judged on the user's chunks at search time
    assert terms.words == ("how", "do", "i", "set", "trusted_domains", "and", "run", "occ", "files:scan", "--all")
    assert lexical_terms("see /apps/files/ and config.php.", 64).identifiers == ("apps/files", "config.php")


def test_a_huge_one_word_question_is_tokenised_in_linear_time() -> None:
    # the old single pattern backtracked quadratically: 40,000 characters blocked the event loop for ~18 s
    started = time.perf_counter()
    terms = lexical_terms("a" * 200_000 + " b.c", 64)
    assert terms.identifiers == ("b.c",) and len(terms.words) == 2
    assert time.perf_counter() - started < 2.0  # a hang guard (minutes before), not a speed measure


@pytest.mark.parametrize("exact_below", [0, 10**6])
@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("trusted_domains", "nc: trusted"),
        ("occ files:scan", "nc: scan"),
        ("Urlaub beantragen", "hr: urlaub"),
        ("pg_dump", "ops: backups"),
    ],
)
async def test_exact_identifier_finds_its_document(
    db: Database, big_corpus: Corpus, embedder: MiniLmEmbedder, question: str, expected: str, exact_below: int
) -> None:
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(exact_search_below=exact_below))
    chunks = await service.retrieve("alice", question, 5)
    assert chunks[0].source_id == expected
    assert "lexical" in chunks[0].legs


PARAPHRASES = [
    ("Which hostnames is my cloud server allowed to answer requests for?", "nc: trusted"),
    ("I copied documents straight onto the disk; how do I make them show up?", "nc: scan"),
    ("How long are database archives retained and where are they stored?", "ops: backups"),
]


async def test_paraphrase_finds_the_document_among_many(
    db: Database, big_corpus: Corpus, embedder: MiniLmEmbedder
) -> None:
    store = SearchStore(db)
    assert await store.count_accessible_chunks("alice", None, 10**6) == 124
    service = RetrievalService(store, embedder, RetrievalConfig(exact_search_below=0))
    ranks = []
    for question, expected in PARAPHRASES:
        found = [c.source_id for c in await service.retrieve("alice", question, 10)]
        ranks.append(found.index(expected) + 1 if expected in found else None)
    assert ranks == [1] * len(PARAPHRASES)


async def test_a_question_sharing_one_common_word_is_no_lexical_hit(db: Database, big_corpus: Corpus) -> None:
    hits = await SearchStore(db).lexical_search(
        "alice", lexical_terms("I copied documents straight onto the disk", 64), 10
    )
    assert hits == []
    hits = await SearchStore(db).lexical_search("alice", lexical_terms("copied into the data directory", 64), 10)
    assert hits[0].source_id == "nc: scan"

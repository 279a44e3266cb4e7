"""A keyword question of several identifiers: a chunk's words inside them count once (real MiniLM, real PostgreSQL)."""

from __future__ import annotations

from corpus_writer import Corpus
from retrieval_embedder import MiniLmEmbedder

from appliance.retrieval_config import RetrievalConfig
from quart_app.services.retrieval import RetrievalService
from quart_app.store.database import Database
from quart_app.store.lexical_query import lexical_terms, words_outside
from quart_app.store.search_store import SearchStore

QUESTION = "fetch_page fetch_rows lazy=True"


def test_the_words_of_identifiers_are_not_counted_again() -> None:
    assert words_outside(["fetch", "page", "rows", "lazy", "true"], ["fetch_page", "fetch_rows"]) == ["lazy", "true"]
    assert words_outside(["md.reset", "convert"], ["md.reset"]) == ["convert"]
    assert words_outside(["pages"], ["fetch_page"]) == ["pages"]  # a longer word is no part of it


async def test_a_method_written_as_an_attribute_holds_as_many_words(
    db: Database, corpus: Corpus, embedder: MiniLmEmbedder
) -> None:
    # `Client.fetch_page()` parses as the word `client.fetch`, `fetch_page(` as `fetch`: a spelling, no more words held
    attribute = "Client.fetch_page() and Client.fetch_rows() with lazy=True read a page."
    await corpus.add("attribute", [attribute], ["alice"])
    await corpus.add("call", ["fetch_page(size=1) and fetch_rows(size=1) with lazy=True read a page."], ["alice"])
    hits = await SearchStore(db).lexical_search("alice", lexical_terms(QUESTION, 64), 10)
    assert {hit.source_id: (hit.identifiers, hit.outside_words) for hit in hits} == {
        "attribute": (2, 2),
        "call": (2, 2),
    }
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(exact_search_below=10**6))
    found = await service.documents("alice", QUESTION, 2)
    assert {c.source_id: c.held for c in found} == {"attribute": (2, 2), "call": (2, 2)}

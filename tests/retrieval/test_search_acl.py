"""Access control and scopes on the real database: both legs filter by the user's access rows and the scope in SQL."""

from __future__ import annotations

import pytest
from corpus_writer import Corpus
from retrieval_embedder import MiniLmEmbedder

from appliance.retrieval_config import RetrievalConfig
from quart_app.services.retrieval import RetrievalService, make_scope
from quart_app.store.database import Database
from quart_app.store.lexical_query import lexical_terms
from quart_app.store.search_filters import Scope
from quart_app.store.search_store import SearchStore

SECRET = "The quarterly merger plan with Globex is confidential and must not leave the board room."
PUBLIC = "The cafeteria serves vegetable soup on Mondays and pasta on Thursdays."
SHARED = "The merger plan timeline: due diligence in March, signing in June, announcement in July."


async def both_legs(
    store: SearchStore, embedder: MiniLmEmbedder, user: str, text: str, scope: Scope | None = None
) -> set[str]:
    vector = (await embedder.embed([text], "query"))[0]
    found = set()
    for exact in (False, True):
        found |= {h.source_id for h in await store.vector_search(user, vector, 50, scope, exact=exact)}
    found |= {h.source_id for h in await store.lexical_search(user, lexical_terms(text, 64), 50, scope)}
    return found


async def test_user_b_never_sees_a_s_chunks(db: Database, corpus: Corpus, embedder: MiniLmEmbedder) -> None:
    await corpus.add("files__default: 1", [SECRET], ["alice"])
    await corpus.add("files__default: 2", [PUBLIC], ["bob"])
    store = SearchStore(db)
    assert await both_legs(store, embedder, "bob", "confidential merger plan Globex") == {"files__default: 2"}
    assert "files__default: 1" in await both_legs(store, embedder, "alice", "confidential merger plan Globex")
    assert await both_legs(store, embedder, "carol", "confidential merger plan Globex") == set()


async def test_shared_document_then_revoked(db: Database, corpus: Corpus, embedder: MiniLmEmbedder) -> None:
    await corpus.add("files__default: 3", [SHARED], ["alice", "bob"])
    await corpus.add("files__default: 1", [SECRET], ["alice"])
    store = SearchStore(db)
    assert await both_legs(store, embedder, "bob", "merger plan") == {"files__default: 3"}
    await corpus.revoke("alice", "files__default: 3")
    assert await both_legs(store, embedder, "alice", "merger plan timeline") == {"files__default: 1"}
    assert await both_legs(store, embedder, "bob", "merger plan timeline") == {"files__default: 3"}


async def test_retrieval_service_filters_too(db: Database, corpus: Corpus, embedder: MiniLmEmbedder) -> None:
    await corpus.add("files__default: 1", [SECRET, SECRET + " Appendix."], ["alice"])
    await corpus.add("files__default: 2", [PUBLIC], ["bob"])
    # exact_search_below=0 forces the HNSW path, a huge value the exact path
    for threshold in (0, 10**6):
        service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(exact_search_below=threshold))
        chunks = await service.retrieve("bob", "confidential merger plan", 10)
        assert {c.source_id for c in chunks} == {"files__default: 2"}
        chunks = await service.retrieve("alice", "confidential merger plan", 10)
        assert [c.source_id for c in chunks] == ["files__default: 1"] * 2
        assert all(c.title == "files__default: 1" for c in chunks)


@pytest.mark.parametrize("exact_below", [0, 10**6])
async def test_scope_by_provider_and_by_source(
    db: Database, corpus: Corpus, embedder: MiniLmEmbedder, exact_below: int
) -> None:
    await corpus.add("files__default: 10", ["Invoice 10 for the printer repair."], ["alice"])
    await corpus.add("files__default: 11", ["Invoice 11 for the printer toner."], ["alice"])
    await corpus.add("mail__mails: 12", ["Mail: the printer invoice is attached."], ["alice"], provider="mail__mails")
    await corpus.add("files__default: 13", ["Invoice 13 for the printer, for bob."], ["bob"])
    store = SearchStore(db)
    mail = Scope("provider", ("mail__mails",))
    assert await both_legs(store, embedder, "alice", "printer invoice", mail) == {"mail__mails: 12"}
    files = Scope("provider", ("files__default",))
    assert await both_legs(store, embedder, "alice", "printer invoice", files) == {
        "files__default: 10",
        "files__default: 11",
    }
    sources = Scope("source", ("files__default: 11", "mail__mails: 12", "files__default: 13"))
    assert await both_legs(store, embedder, "alice", "printer invoice", sources) == {
        "files__default: 11",
        "mail__mails: 12",
    }
    service = RetrievalService(store, embedder, RetrievalConfig(exact_search_below=exact_below))
    chunks = await service.retrieve("alice", "printer invoice", 10, make_scope("source", ["files__default: 10"]))
    assert [c.source_id for c in chunks] == ["files__default: 10"]
    assert await service.retrieve("alice", "printer invoice", 10, make_scope("provider", [])) == []


async def test_scope_values_are_matched_verbatim_in_a_long_list(
    db: Database, corpus: Corpus, embedder: MiniLmEmbedder
) -> None:
    # the scope goes to SQL as one text[] literal: quotes, backslashes, commas, braces and NULL stay plain text
    await corpus.add("files__default: 10", ["Invoice 10 for the printer repair."], ["alice"])
    await corpus.add("files__default: 11", ["Invoice 11 for the printer toner."], ["alice"])
    store = SearchStore(db)
    odd = ('x"y', "back\\slash", "a,b", "{}", "NULL", " ", "files__default: 1")
    many = tuple(f"files__default: {n}" for n in range(1000, 21_000))
    sources = Scope("source", (*odd, *many, "files__default: 10"))
    assert await both_legs(store, embedder, "alice", "printer invoice", sources) == {"files__default: 10"}
    providers = Scope("provider", ('files__default"', "files\\", "NULL"))
    assert await both_legs(store, embedder, "alice", "printer invoice", providers) == set()


async def test_queued_chunks_are_found_by_the_lexical_leg(
    db: Database, corpus: Corpus, embedder: MiniLmEmbedder
) -> None:
    await corpus.add("files__default: 20", ["The zeppelin hangar opens at dawn."], ["alice"], embedded=False)
    await corpus.add("files__default: 21", ["Boats are stored in the harbour shed."], ["alice"])
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig())
    chunks = await service.retrieve("alice", "when does the zeppelin hangar open?", 5)
    assert chunks[0].source_id == "files__default: 20"
    assert chunks[0].legs == ("lexical",)
    assert await service.retrieve("bob", "zeppelin hangar", 5) == []


async def test_per_document_cap(db: Database, corpus: Corpus, embedder: MiniLmEmbedder) -> None:
    await corpus.add("files__default: 30", [f"Kayak rental price list, page {n}." for n in range(8)], ["alice"])
    await corpus.add("files__default: 31", ["Canoe and kayak rental opening hours."], ["alice"])
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(max_chunks_per_document=3))
    chunks = await service.retrieve("alice", "kayak rental", 10)
    assert [c.source_id for c in chunks].count("files__default: 30") == 3
    assert "files__default: 31" in {c.source_id for c in chunks}

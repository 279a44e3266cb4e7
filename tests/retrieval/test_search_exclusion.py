"""Documents excluded from a search (those Nextcloud no longer shows the user) never come back from any leg, with or
without a scope, and a search that excludes nothing is the scope's own."""

from __future__ import annotations

import pytest
from corpus_writer import Corpus
from retrieval_embedder import MiniLmEmbedder

from appliance.retrieval_config import RetrievalConfig
from quart_app.services.retrieval import RetrievalService
from quart_app.store import lexical_query
from quart_app.store.database import Database
from quart_app.store.lexical_query import lexical_terms
from quart_app.store.search_filters import Scope, chunk_filter, excluding
from quart_app.store.search_store import SearchStore

LOST = "files__default: 1"
OWN = "files__default: 2"
MAIL = "mail__mails: 3"
# the lost file's six chunks are all nearer the question than the user's own file
LOST_TEXTS = [f"Sourdough starter feeding log, day {n}: flour and water, the starter doubled." for n in range(6)]
QUESTION = "sourdough starter feeding flour water"
SCOPES = [None, Scope("provider", ("files__default", "mail__mails")), Scope("source", (LOST, OWN, MAIL))]


@pytest.fixture
async def bakery(corpus: Corpus) -> Corpus:
    await corpus.add(LOST, LOST_TEXTS, ["bert"], title="files/starter-log.md")
    await corpus.add(OWN, ["Bakery visit: they feed the sourdough starter with rye flour."], ["bert"])
    await corpus.add(MAIL, ["Mail: sourdough starter for sale, fed with water."], ["bert"], provider="mail__mails")
    return corpus


async def found_by_each_leg(store: SearchStore, embedder: MiniLmEmbedder, scope: Scope | None) -> dict[str, set[str]]:
    vector = (await embedder.embed([QUESTION], "query"))[0]
    terms = lexical_terms(QUESTION, 64)
    return {
        "hnsw": {h.source_id for h in await store.vector_search("bert", vector, 50, scope, exact=False)},
        "exact": {h.source_id for h in await store.vector_search("bert", vector, 50, scope, exact=True)},
        "lexical": {h.source_id for h in await store.lexical_search("bert", terms, 50, scope)},
        "named": {h.source_id for h in await store.documents_named("bert", ["starter-log.md"], 10, scope)},
    }


@pytest.mark.parametrize("scope", SCOPES, ids=["unscoped", "provider", "source"])
@pytest.mark.parametrize("direct", [True, False], ids=["small-user", "gin-index"])
async def test_an_excluded_document_comes_back_from_no_leg(
    db: Database,
    bakery: Corpus,
    embedder: MiniLmEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    scope: Scope | None,
    direct: bool,
) -> None:
    if not direct:  # the lexical leg's tiers through the GIN index instead of the user's own chunks read directly
        monkeypatch.setattr(lexical_query, "DIRECT_SCAN_BELOW", 0)
    store = SearchStore(db)
    before = await found_by_each_leg(store, embedder, scope)
    assert all(LOST in found for found in before.values()), before
    after = await found_by_each_leg(store, embedder, excluding(scope, {LOST}))
    assert after == {leg: found - {LOST} for leg, found in before.items()}
    assert OWN in after["hnsw"] and OWN in after["lexical"]
    # the exact/HNSW choice and the cross-lingual gate's word share count the remaining chunks only
    assert await store.count_accessible_chunks("bert", scope, 100) == 8
    assert await store.count_accessible_chunks("bert", excluding(scope, {LOST}), 100) == 2
    known = await store.known_word_share("bert", QUESTION, excluding(scope, {LOST}))
    assert known is not None and known.chunks_read == 2


@pytest.mark.parametrize("exact_below", [0, 10**6])
async def test_candidate_documents_rank_among_the_documents_not_excluded(
    db: Database, bakery: Corpus, embedder: MiniLmEmbedder, exact_below: int
) -> None:
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(exact_search_below=exact_below))
    named = "starter-log.md: " + QUESTION
    assert (await service.candidate_documents("bert", named, 1))[0].source_id == LOST
    candidates = await service.candidate_documents("bert", named, 1, excluding(None, {LOST}))
    assert {c.source_id for c in candidates} == {OWN, MAIL}
    scoped = await service.candidate_documents("bert", named, 1, excluding(Scope("source", (LOST, OWN)), {LOST}))
    assert [c.source_id for c in scoped] == [OWN]
    # everything excluded: nothing, not an error
    assert await service.retrieve("bert", QUESTION, 5, excluding(None, {LOST, OWN, MAIL})) == []


def test_excluding_nothing_keeps_the_scope_and_its_sql() -> None:
    for scope in SCOPES:
        assert excluding(scope, set()) is scope
    excluded = excluding(SCOPES[2], {"b", "a"})
    assert excluded == Scope("source", (LOST, OWN, MAIL), ("a", "b"))
    assert excluding(excluded, {"c", "a"}) == Scope("source", (LOST, OWN, MAIL), ("a", "b", "c"))
    where, params = chunk_filter("bert", excluding(None, {'x"y'}))
    assert params == {"user_id": "bert", "excluded": '{"x\\"y"}'}
    assert "NOT (c.source_id = ANY(%(excluded)s::text[]))" in where.as_string(None)

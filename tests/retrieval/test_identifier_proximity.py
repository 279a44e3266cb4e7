"""A keyword question of several identifiers: a chunk's words inside them count once, and among chunks holding as many
of its terms /docSearch puts first the one holding them closest together (real MiniLM, real PostgreSQL)."""

from __future__ import annotations

from corpus_writer import Corpus
from retrieval_embedder import MiniLmEmbedder

from appliance.retrieval_config import RetrievalConfig
from quart_app.services.retrieval import RetrievalService
from quart_app.services.term_span import shortest_span, span_terms
from quart_app.store.database import Database
from quart_app.store.lexical_query import lexical_terms, words_outside
from quart_app.store.search_store import SearchStore

QUESTION = "fetch_page fetch_rows lazy=True"

# an API reference: each method its own entry, lazy=True said often (the full-text leg's first), the two methods apart
APART = (
    "fetch_page(size=1, strict=False)\n\nReads one page. When lazy=True is set on the client, the page is read as it"
    " arrives; lazy=True keeps memory flat, and lazy=True is the default for large tables. If lazy=False, the page is"
    " read at once. The size is the number of rows per page; a size of None reads the table's own page size. Pages"
    " are numbered from one, and a page past the end is empty rather than an error.\n\nfetch_rows(size=512)"
)
# a guide: both methods named together, then lazy=True once
TOGETHER = (
    "You can further control the reading by use of the fetch_page() and fetch_rows() methods with lazy=True,"
    " which keeps the connection open until everything is read."
)


def test_the_words_of_identifiers_are_not_counted_again() -> None:
    assert words_outside(["fetch", "page", "rows", "lazy", "true"], ["fetch_page", "fetch_rows"]) == ["lazy", "true"]
    assert words_outside(["md.reset", "convert"], ["md.reset"]) == ["convert"]
    assert words_outside(["pages"], ["fetch_page"]) == ["pages"]  # a longer word is no part of it


def test_the_shortest_stretch_holding_every_term() -> None:
    terms = span_terms(["fetch_page", "fetch_rows"], ["lazy", "true"])
    assert terms == ["fetch_page", "fetch_rows", "lazy", "true"]
    assert shortest_span("fetch_page() and fetch_rows() with lazy=True", terms) == len(
        "fetch_page() and fetch_rows() with lazy=true"
    )
    assert shortest_span("fetch_page() and fetch_rows() with lazy=False", terms) is None
    assert shortest_span("Fetch_Page fetch_rows lazy TRUE; later fetch_page again", terms) == len(
        "fetch_page fetch_rows lazy true"
    )
    assert shortest_span("prefetch_page fetch_rows lazy true", terms) is None  # not inside a longer word
    # one term is as close as it gets: not measured
    assert span_terms(["attrs.evolve"], []) == []
    assert span_terms(["config.php"], ["config.php."]) == []  # a word that is the identifier with its full stop


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


async def test_a_keyword_question_s_terms_held_close_together_come_first(
    db: Database, corpus: Corpus, embedder: MiniLmEmbedder
) -> None:
    await corpus.add("apart", [APART], ["alice"])
    await corpus.add("together", [TOGETHER], ["alice"])
    await corpus.add("other", ["Tables are read page by page; each page holds rows."], ["alice"])
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(exact_search_below=10**6))
    # the fused order: the full-text leg (weighted for an identifier question) ranks `apart` first
    fused = await service.retrieve("alice", QUESTION, 3, per_document=1, identifier_weight=True)
    assert [c.source_id for c in fused][:2] == ["apart", "together"]
    assert fused[0].held == fused[1].held == (2, 2)
    found = await service.documents("alice", QUESTION, 3)
    assert [(c.source_id, c.span is not None) for c in found] == [
        ("together", True),
        ("apart", True),
        ("other", False),
    ]
    assert found[0].span is not None and found[1].span is not None and found[0].span < found[1].span
    # asked as a question in words, the fused order stays
    asked = "How do fetch_page and fetch_rows behave with lazy=True set on the client?"
    assert (await service.documents("alice", asked, 1))[0].source_id == (
        await service.retrieve("alice", asked, 1, per_document=1, identifier_weight=True)
    )[0].source_id


async def test_a_word_too_common_to_count_is_no_term_a_close_chunk_must_hold(
    db: Database, corpus: Corpus, embedder: MiniLmEmbedder
) -> None:
    # "in" is in most of alice's chunks: the lexical leg does not count it, so neither is it a term of the closeness
    for n in range(24):
        await corpus.add(f"filler-{n}", [f"Notes number {n} in the archive about gardening in spring."], ["alice"])
    await corpus.add("together", ["Under docker, fetch_page() and fetch_rows() read lazily."], ["alice"])
    apart = (
        "fetch_page(size=1) reads one page in order. "
        + "Pages are numbered from one; a page past the end is empty. " * 6
        + "fetch_rows(size=512) reads rows in batches. "
        + "Rows come back as tuples of their columns. " * 6
        + "It also runs under docker."
    )
    await corpus.add("apart", [apart], ["alice"])
    question = "fetch_page fetch_rows in docker"
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(exact_search_below=10**6))
    found = await service.documents("alice", question, 2)
    assert [(c.source_id, c.held) for c in found] == [("together", (2, 1)), ("apart", (2, 1))]
    assert found[0].span is not None and found[1].span is not None and found[0].span < found[1].span

"""A question made of identifiers leans on the full-text leg, the only one that matches them verbatim (real MiniLM)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from corpus_writer import Corpus
from retrieval_embedder import MiniLmEmbedder

from appliance.retrieval_config import RetrievalConfig
from quart_app.services.rank_fusion import tied_ranks
from quart_app.services.retrieval import RetrievalService, identifier_share, keyword_question
from quart_app.store.database import Database
from quart_app.store.lexical_query import lexical_terms
from quart_app.store.search_store import SearchStore

# defines the setting (three mentions: the full-text leg ranks it first) in text about something else
DEFINES = (
    "Connection pools keep sockets open per host. Settings of the pool: retry_backoff_factor is the base of the"
    " exponential wait; retry_backoff_factor 0 disables waiting; retry_backoff_factor above 10 is clamped."
)
# reads like the setting's name (the vector leg ranks it first) and names it once
MENTIONS = "Retry, back off, factor: how retries back off. See also retry_backoff_factor."
# reads like it too, without naming it: fills the vector leg's second place
NEAR = "Retrying with backoff: each retry waits longer by a constant factor than the one before it."


@pytest.fixture
async def service_for(db: Database, corpus: Corpus, embedder: MiniLmEmbedder) -> Callable[..., RetrievalService]:
    for source_id, text in (("defines", DEFINES), ("mentions", MENTIONS), ("near", NEAR)):
        await corpus.add(source_id, [text], ["alice"])

    def make(**settings: float) -> RetrievalService:
        # rrf_k 1: the fused order depends on the legs' ranks and weights, not on how many candidates there are
        config = RetrievalConfig(exact_search_below=10**6, rrf_k=1, **settings)
        return RetrievalService(SearchStore(db), embedder, config)

    return make


def test_identifier_share_counts_words_inside_identifiers() -> None:
    assert identifier_share("retry_backoff_factor", ["retry_backoff_factor"]) == 1.0
    assert identifier_share("md.reset().convert", ["md.reset"]) == pytest.approx(2 / 3)
    assert identifier_share("iter_content iter_lines stream=True", ["iter_content", "iter_lines"]) == 0.5
    assert identifier_share("How do I set the retry backoff factor?", []) == 0.0
    assert identifier_share("", []) == 0.0


def test_a_keyword_question_is_a_few_words_without_a_question_mark() -> None:
    def asked(question: str) -> bool:
        return keyword_question(lexical_terms(question, 64), question, 4)

    assert asked("Registry DeprecationWarning")
    assert asked("md.reset().convert")
    assert asked("pip list --outdated")
    assert not asked("what does Registry DeprecationWarning mean")  # five words
    assert not asked("Registry DeprecationWarning?")
    assert not asked("Registry DeprecationWarning\uff1f")
    assert not asked("")
    assert not keyword_question(lexical_terms("Registry DeprecationWarning", 64), "Registry DeprecationWarning", 0)


async def test_an_identifier_question_ranks_the_document_that_uses_it_most_first(
    service_for: Callable[..., RetrievalService],
) -> None:
    vector_only = service_for(lexical_weight=0, identifier_lexical_weight=0)
    # the vector leg ranks the document that defines the setting last
    assert [c.source_id for c in await vector_only.retrieve("alice", "retry_backoff_factor", 3)] == [
        "mentions",
        "near",
        "defines",
    ]
    # and /docSearch ranks as the vector leg does: no full-text order (`near` does not hold it) creeps back in
    assert [c.source_id for c in await vector_only.documents("alice", "retry_backoff_factor", 3)] == [
        "mentions",
        "near",
        "defines",
    ]
    # equal weights (the old fusion): the passing mention found first by the vector leg wins
    even = await service_for(identifier_lexical_weight=1.0).documents("alice", "retry_backoff_factor", 2)
    assert [c.source_id for c in even] == ["mentions", "defines"]
    # the default identifier weight: the full-text leg's first place wins /docSearch
    found = await service_for().documents("alice", "retry_backoff_factor", 2)
    assert [c.source_id for c in found] == ["defines", "mentions"]
    # /query's chunks keep the even weights
    chunks = await service_for().retrieve("alice", "retry_backoff_factor", 2)
    assert [c.source_id for c in chunks] == ["mentions", "defines"]


async def test_a_question_in_words_keeps_the_even_weights(service_for: Callable[..., RetrievalService]) -> None:
    question = "Which retry_backoff_factor should my connection pool use when the server is slow to answer?"
    assert identifier_share(question, ["retry_backoff_factor"]) < 0.5
    default = await service_for().documents("alice", question, 3)
    even = await service_for(identifier_lexical_weight=1.0).documents("alice", question, 3)
    assert [c.source_id for c in default] == [c.source_id for c in even]


async def test_a_chunk_holding_the_identifier_outranks_one_holding_only_its_words(
    db: Database, corpus: Corpus, embedder: MiniLmEmbedder
) -> None:
    # spell the identifier's words out: the vector leg's two candidates, and full-text hits on its words
    await corpus.add("spelled", ["Superscript text: how text is set as a superscript above the line."], ["alice"])
    await corpus.add("raised", ["Superscript text is raised above the baseline, as in x squared."], ["alice"])
    # names it once, among other things: found by the full-text leg alone
    await corpus.add("named", ["Footnote options: BACKLINK_TEXT, SUPERSCRIPT_TEXT and SEPARATOR."], ["alice"])
    config = RetrievalConfig(exact_search_below=10**6, vector_candidates=1)
    vector_only = RetrievalService(SearchStore(db), embedder, config.model_copy(update={"lexical_weight": 0}))
    assert [c.source_id for c in await vector_only.retrieve("alice", "SUPERSCRIPT_TEXT", 3)][2] == "named"
    service = RetrievalService(SearchStore(db), embedder, config)
    # one document asked for: the vector leg brings 2 candidates, and "named" is not among them; the full-text leg's
    # first place alone would lose to the votes of both legs for a chunk that only spells the words out
    found = await service.documents("alice", "SUPERSCRIPT_TEXT", 1)
    # its words are the identifier's: counted in it, not again
    assert [(c.source_id, c.held) for c in found] == [("named", (1, 0))]


async def test_a_keyword_question_ranks_the_document_holding_all_its_words_first(
    db: Database, corpus: Corpus, embedder: MiniLmEmbedder
) -> None:
    # all about one of the two words: the vector leg's first places
    await corpus.add("about", ["The Scheduler class keeps jobs in a priority-sorted scheduler queue."], ["alice"])
    await corpus.add("runs", ["Scheduler: how the scheduler runs each queued job in priority order."], ["alice"])
    await corpus.add("tuning", ["Tuning the Scheduler: the scheduler queue size."], ["alice"])
    await corpus.add("limits", ["Scheduler limits: how many jobs the scheduler starts at once."], ["alice"])
    # both words, in release notes about something else: the full-text leg's first
    notes = (
        "Changelog 2.0: image resizing fixed, new colour themes, faster PDF export, translations updated, the mail"
        " client retries on timeouts, and the old Scheduler alias raises a DeprecationWarning."
    )
    await corpus.add("notes", [notes], ["alice"])
    await corpus.add("other", ["Logging: every warning is written to the journal of the host."], ["alice"])
    # rrf_k 1: the fused order depends on the legs' ranks, not on how many candidates there are
    config = RetrievalConfig(exact_search_below=10**6, rrf_k=1)
    fused = RetrievalService(SearchStore(db), embedder, config.model_copy(update={"keyword_question_words": 0}))
    # the vector leg's first (tuning) outvotes the full-text leg's (notes) in the fusion
    first = (await fused.documents("alice", "Scheduler DeprecationWarning", 1))[0].source_id
    assert first != "notes"
    service = RetrievalService(SearchStore(db), embedder, config)
    found = await service.documents("alice", "Scheduler DeprecationWarning", 2)
    assert [(c.source_id, c.held) for c in found] == [("notes", (0, 2)), (first, (0, 1))]
    # the same words asked as a question keep the fused order
    assert (await service.documents("alice", "Scheduler DeprecationWarning?", 1))[0].source_id == first
    # /query's chunks keep the fused order
    assert (await service.retrieve("alice", "Scheduler DeprecationWarning", 2))[0].source_id != "notes"


async def test_a_keyword_question_s_order_is_pinned_ties_included(
    db: Database, corpus: Corpus, embedder: MiniLmEmbedder
) -> None:
    notes = "Changelog 2.0: faster PDF export, and the old Scheduler alias raises a DeprecationWarning."
    # the same text twice: the same words held and the same text rank, a tie in the full-text leg
    await corpus.add("notes1", [notes], ["alice"])
    await corpus.add("notes2", [notes], ["alice"])
    await corpus.add("about", ["The Scheduler class keeps jobs in a priority-sorted scheduler queue."], ["alice"])
    await corpus.add("runs", ["Scheduler: how the scheduler runs each queued job in priority order."], ["alice"])
    await corpus.add("warns", ["Every DeprecationWarning is printed once per call site."], ["alice"])
    await corpus.add("other", ["Logging: every warning is written to the journal of the host."], ["alice"])
    question = "Scheduler DeprecationWarning"
    hits = await SearchStore(db).lexical_search("alice", lexical_terms(question, 64), 10)
    ranks = dict(zip((hit.source_id for hit in hits), tied_ranks(hits), strict=True))
    assert ranks == {"notes1": 1.5, "notes2": 1.5, "about": 3.5, "runs": 3.5, "warns": 5.0}
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(exact_search_below=10**6, rrf_k=1))
    found = await service.documents("alice", question, 6)
    # both words first (the tie in chunk id order), then one word in the fused order, then none
    assert [(c.source_id, c.held) for c in found] == [
        ("notes1", (0, 2)),
        ("notes2", (0, 2)),
        ("warns", (0, 1)),
        ("about", (0, 1)),
        ("runs", (0, 1)),
        ("other", (0, 0)),
    ]

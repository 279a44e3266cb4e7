"""Context assembly: the chosen chunks reach the prompt per source, in document order, overlaps said once, within
the configured context budget, and never with text of a document the user may not read."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from corpus_writer import Corpus
from fake_nextcloud import FakeNextcloud, TaskScript
from retrieval_corpus import stdlib_docstrings
from retrieval_embedder import MiniLmEmbedder

from appliance.config import parse_config
from appliance.llm_config import NcTextToTextConfig
from appliance.retrieval_config import RetrievalConfig
from quart_app.nextcloud import NextcloudClient
from quart_app.runtimes.llm_backend import approximate_token_count
from quart_app.runtimes.llm_nc_texttotext import NcTextToTextBackend
from quart_app.services.answer import AnswerService, Templates, build_answer_service
from quart_app.services.context_assembly import GAP_MARK, ContextPiece, assemble
from quart_app.services.prompt_packing import render
from quart_app.services.retrieval import RetrievalService
from quart_app.store.database import Database
from quart_app.store.search_store import SearchStore

TEMPLATE = "CONTEXT START\n{context}\nCONTEXT END\nQ: {question}\n"
QUESTION = "What does the module do?"
DOCUMENT = "\n\n".join(text for _name, text in stdlib_docstrings(4))
# three chunks as the chunker cuts them: the first two overlap by 50 characters, a gap before the third
SPANS = [(0, 400), (350, 800), (1200, 1500)]


def piece(source_id: str, start: int, end: int) -> ContextPiece:
    return ContextPiece(source_id, f"Title of {source_id}", DOCUMENT[start:end], start)


def test_chunks_are_put_back_in_document_order_with_the_overlap_once() -> None:
    # best first: the third chunk, then one of another document, then the first two in reverse order
    blocks = assemble([piece("a", 1200, 1500), piece("b", 0, 300), piece("a", 350, 800), piece("a", 0, 400)])
    assert [b.source_id for b in blocks] == ["a", "b"]
    assert blocks[0].text == DOCUMENT[0:800] + GAP_MARK + DOCUMENT[1200:1500]
    assert blocks[1].text == DOCUMENT[0:300]
    # a chunk inside another adds nothing; touching chunks (whitespace between) join without a gap mark
    assert assemble([piece("a", 0, 800), piece("a", 100, 300)])[0].text == DOCUMENT[0:800]
    end = DOCUMENT.index(" ", 300)
    touching = assemble([piece("a", 0, end), ContextPiece("a", "Title of a", DOCUMENT[end + 1 : 900], end + 1)])
    assert touching[0].text == DOCUMENT[0:end] + "\n\n" + DOCUMENT[end + 1 : 900]


@pytest.fixture
def nextcloud() -> Iterator[FakeNextcloud]:
    with FakeNextcloud() as server:
        server.task = TaskScript(output="answer")
        yield server


@pytest.fixture
async def nc(nextcloud: FakeNextcloud) -> AsyncIterator[NextcloudClient]:
    client = NextcloudClient(nextcloud.url, app_id="context_chat_backend", app_version="4.0.0", app_secret="s")
    yield client
    await client.aclose()


@pytest.fixture
async def manuals(corpus: Corpus) -> Corpus:
    await corpus.add(
        "alice: manual", [DOCUMENT[s:e] for s, e in SPANS], ["alice"], title="Manual", starts=[s for s, _ in SPANS]
    )
    # bob's copy of the same text sits between alice's chunks in the document: it must never fill her gap
    await corpus.add("bob: notes", [DOCUMENT[800:1200]], ["bob"], title="Bob's notes", starts=[800])
    return corpus


def sent_prompt(nextcloud: FakeNextcloud) -> str:
    bodies = [r.body for r in nextcloud.requests if r.path.endswith("/schedule")]
    return str(bodies[-1]["input"]["input"])


def backend(nc: NextcloudClient) -> NcTextToTextBackend:
    return NcTextToTextBackend(NcTextToTextConfig(n_ctx=8192, max_tokens=64, poll_interval_s=0.05), nc)


async def test_the_prompt_holds_each_document_once_in_its_own_order(
    db: Database, manuals: Corpus, embedder: MiniLmEmbedder, nextcloud: FakeNextcloud, nc: NextcloudClient
) -> None:
    retrieval = RetrievalService(SearchStore(db), embedder, RetrievalConfig())
    answers = AnswerService(retrieval, backend(nc), Templates(TEMPLATE, "{question}", in_document_order=True))
    result = await answers.query("alice", QUESTION)
    prompt = sent_prompt(nextcloud)
    assert result["sources"] == ["alice: manual"]
    assert prompt.count("Manual:\n\n") == 1
    assert "Manual:\n\n" + DOCUMENT[0:800] + GAP_MARK + DOCUMENT[1200:1500] in prompt
    assert DOCUMENT[800:1200] not in prompt
    assert "Bob's notes" not in prompt


async def test_the_context_budget_from_config_is_honoured(
    db: Database, manuals: Corpus, embedder: MiniLmEmbedder, nextcloud: FakeNextcloud, nc: NextcloudClient
) -> None:
    config = parse_config({"llm": {"nc_texttotext": {"context_tokens": 200, "template": TEMPLATE}}})
    answers = build_answer_service(config, db, embedder, backend(nc))
    result = await answers.query("alice", QUESTION)
    prompt = sent_prompt(nextcloud)
    empty = approximate_token_count(render(TEMPLATE, "", QUESTION))
    assert approximate_token_count(prompt) <= empty + 200
    assert result["sources"] == ["alice: manual"]  # one chunk (~180 approximate tokens) fits, the others not
    assert prompt.count(GAP_MARK) == 0 and len(prompt) < len(TEMPLATE) + len(QUESTION) + 600
    # without the budget the same question gets all three chunks
    unbounded = parse_config({"llm": {"nc_texttotext": {"context_tokens": 0, "template": TEMPLATE}}})
    await build_answer_service(unbounded, db, embedder, backend(nc)).query("alice", QUESTION)
    assert GAP_MARK in sent_prompt(nextcloud)

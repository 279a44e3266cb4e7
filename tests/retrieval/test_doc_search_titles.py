"""/docSearch matches the question against file names: a named file comes first, name words break near-ties (real
MiniLM, real PostgreSQL)."""

from __future__ import annotations

import pytest
from corpus_writer import Corpus
from retrieval_corpus import BACKUPS, TRUSTED_DOMAINS, stdlib_docstrings
from retrieval_embedder import MiniLmEmbedder

from appliance.llm_config import ExtractiveConfig
from appliance.retrieval_config import RetrievalConfig
from quart_app.runtimes.llm_extractive import ExtractiveBackend
from quart_app.services.answer import AnswerService, Templates
from quart_app.services.document_titles import file_name_words, named_files, question_words, title_match
from quart_app.services.retrieval import RetrievalService
from quart_app.store.database import Database
from quart_app.store.search_store import SearchStore

TEMPLATES = Templates("{context}\n{question}\n", "{question}\n")
# the file a question names by its file name alone; its text never says "website"
RELEASE_STEPS = "Tag the release, build the wheels, upload them, then announce the new version on the mailing list."
WEBSITE_PAGE = "Our website lists every page of the documentation site, built with Sphinx and uploaded nightly."
SAME_TEXT = "Each change to the resolver is described here with the reasons for it and the issues it closes."


def answers(db: Database, embedder: MiniLmEmbedder, **settings: float | bool) -> AnswerService:
    config = RetrievalConfig(exact_search_below=10**6, **settings)
    return AnswerService(
        RetrievalService(SearchStore(db), embedder, config), ExtractiveBackend(ExtractiveConfig()), TEMPLATES
    )


def test_file_name_words_and_the_share_a_question_covers() -> None:
    assert file_name_words("pip/topics/dependency-resolution.md") == ["dependency", "resolution"]
    assert file_name_words("docs/v2/faq.html") == ["faq"]
    assert file_name_words(".pre-commit-config.yaml") == ["pre", "commit", "config"]
    assert file_name_words("Urlaubsantrag_2024.docx") == ["urlaubsantrag"]
    asked = question_words("reducing backtracking in dependency resolution")
    assert title_match("topics/dependency-resolution.md", asked) == 1.0
    assert title_match(
        "topics/more-dependency-resolution.md", question_words("dependency resolution")
    ) == pytest.approx(2 / 3)
    assert title_match("notes/a1.txt", question_words("a1")) == 0.0
    assert named_files(["dev/website.txt", "pre-commit-config.yaml", "md.reset", "trusted_domains"]) == [
        "website.txt",
        "pre-commit-config.yaml",
        "md.reset",
    ]


@pytest.fixture
async def files(corpus: Corpus) -> Corpus:
    for name, text in stdlib_docstrings(40):
        await corpus.add(f"files__default: py/{name}", [text], ["alice"], title=f"python/{name}.txt")
    await corpus.add("files__default: web", [WEBSITE_PAGE], ["alice", "bob"], title="docs/about.txt")
    await corpus.add("files__default: trusted", [TRUSTED_DOMAINS[1]], ["alice"], title="admin/config.md")
    await corpus.add("files__default: backups", [BACKUPS[1]], ["alice"], title="ops/backups.md")
    await corpus.add("files__default: release", [RELEASE_STEPS], ["alice"], title="dev/website.txt")
    # the same text twice: only the file name tells them apart (the first written wins a tie)
    await corpus.add("files__default: history", [SAME_TEXT], ["alice"], title="docs/history.md")
    await corpus.add("files__default: resolver", [SAME_TEXT], ["alice"], title="docs/resolver-changes.md")
    return corpus


async def test_a_question_that_is_only_a_file_name_finds_that_file(
    db: Database, files: Corpus, embedder: MiniLmEmbedder
) -> None:
    found = await answers(db, embedder).doc_search("alice", "website.txt", 5)
    assert found[0] == {"source_id": "files__default: release", "title": "dev/website.txt"}
    # the content alone ranks the page about the website first
    untitled = await answers(db, embedder).doc_search("alice", "website", 5)
    assert untitled[0]["source_id"] == "files__default: web"
    off = await answers(db, embedder, file_name_first=False).doc_search("alice", "website.txt", 5)
    assert off[0]["source_id"] == "files__default: web"
    # any case, with a leading dot dropped, and with its passage for `ccb search`
    shouted = await answers(db, embedder).doc_search("alice", "WEBSITE.TXT", 5, with_passages=True)
    assert shouted[0]["source_id"] == "files__default: release" and shouted[0]["passage"] == RELEASE_STEPS


async def test_a_named_file_stays_behind_access_rights_and_scope(
    db: Database, files: Corpus, embedder: MiniLmEmbedder
) -> None:
    service = answers(db, embedder)
    assert "files__default: release" not in [d["source_id"] for d in await service.doc_search("bob", "website.txt", 5)]
    scoped = await service.doc_search(
        "alice", "website.txt", 5, scope_type="source", scope_list=["files__default: web"]
    )
    assert [d["source_id"] for d in scoped] == ["files__default: web"]


async def test_file_name_words_break_a_near_tie_between_documents(
    db: Database, files: Corpus, embedder: MiniLmEmbedder
) -> None:
    question = "Why was each resolver change made?"
    plain = await answers(db, embedder, title_weight=0).doc_search("alice", question, 5)
    assert [d["source_id"] for d in plain][:2] == ["files__default: history", "files__default: resolver"]
    titled = await answers(db, embedder).doc_search("alice", question, 5)
    assert [d["source_id"] for d in titled][:2] == ["files__default: resolver", "files__default: history"]

"""The cross-lingual leg's word gate on the embedded PostgreSQL: the share of a question's words the user's own chunks
hold (known_words.known_word_share), for users of a few chunks and of more than its first read."""

from __future__ import annotations

import psycopg
import pytest
from corpus_writer import Corpus

from quart_app.services.retrieval import make_scope
from quart_app.store import known_words
from quart_app.store.database import Database
from quart_app.store.lexical_query import DIRECT_SCAN_BELOW
from quart_app.store.search_filters import Scope
from quart_app.store.search_store import SearchStore


async def _share(store: SearchStore, user: str, question: str, scope: Scope | None = None) -> float | None:
    known = await store.known_word_share(user, question, scope)
    return None if known is None else known.share


@pytest.mark.parametrize("read_whole_below", [None, 1], ids=["user-chunks-read", "index-probes"])
async def test_the_gate_is_the_share_of_question_words_the_documents_hold(
    db: Database, corpus: Corpus, read_whole_below: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if read_whole_below is not None:  # a bigger user: words their first chunks lack are looked up in the index
        monkeypatch.setattr(known_words, "DIRECT_SCAN_BELOW", read_whole_below)
    await corpus.add("files__default: 1", ["The backup of the database runs every night at two o'clock."], ["alice"])
    await corpus.add("files__default: 2", ["jinja2.PackageLoader loads templates from a package."], ["bob"])
    store = SearchStore(db)
    assert await _share(store, "alice", "the backup of the database every night") == 1.0
    # words of three letters or more, each counted once: when, does, the, database, backup, run
    assert await _share(store, "alice", "When does the database backup run? The backup!") == 3 / 6
    assert await _share(store, "alice", "Wann wird die Datensicherung gemacht?") == 0.0
    # only the user's own chunks count: bob's word `templates` is unknown to alice, and alice's to bob
    assert await _share(store, "alice", "the database templates") == 2 / 3
    assert await _share(store, "bob", "the database templates") == 1 / 3
    # and only those in the scope
    scope = make_scope("source", ["files__default: 2"])
    assert await _share(store, "alice", "the backup of the database", scope) == 0.0
    # one word says nothing about the language: an identifier is as unknown as a foreign word
    assert await _share(store, "alice", "PackageLoader") is None
    assert await _share(store, "alice", "Datensicherung in 2 h") is None


def _add_chunks(dsn: str, source_id: str, user: str, texts: list[str]) -> None:
    """A document of `user` with these chunks, written with COPY (thousands in a second), then ANALYZE."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO documents (source_id, provider, title, mimetype, modified, content_hash, size, state)"
            " VALUES (%s, 'files__default', %s, 'text/plain', 0, '\\x00', 1, 'indexed')",
            (source_id, source_id),
        )
        conn.execute("INSERT INTO access (user_id, source_id) VALUES (%s, %s)", (user, source_id))
        columns = "source_id, version, ordinal, text, start_offset, token_count, text_hash, embed_state"
        with conn.cursor().copy(f"COPY chunks ({columns}) FROM STDIN") as copy:
            for ordinal, text in enumerate(texts):
                copy.write_row((source_id, 1, ordinal, text, 0, 2, b"h", "queued"))
        conn.execute("ANALYZE")


async def test_other_users_chunks_holding_the_words_do_not_make_a_big_users_own_words_unknown(
    db: Database, fresh_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = "glacier harbour timetable"
    # bob's 1,200 chunks hold the question's words and come first in the index: the gate took the first 1,000 chunks
    # holding each word, found none of alice's among them, and took her question for a foreign one (share 0.0); now
    # such a word is looked for in alice's own chunks
    _add_chunks(fresh_dsn, "files__default: 1", "bob", [question] * 1200)
    # alice: more chunks than the gate reads at first (DIRECT_SCAN_BELOW), then the one that holds the words
    _add_chunks(fresh_dsn, "files__default: 2", "alice", [f"filler{n} text" for n in range(DIRECT_SCAN_BELOW)])
    _add_chunks(fresh_dsn, "files__default: 3", "alice", ["glacier harbour timetable for the ferry"])
    store = SearchStore(db)
    assert await _share(store, "alice", question) == 1.0
    assert await _share(store, "alice", "glacier Fahrplan Hafen") == 1 / 3
    # past her first KNOWN_WORD_SCAN chunks such a word counts as unknown: the gate's reads stay bounded
    monkeypatch.setattr(known_words, "KNOWN_WORD_SCAN", DIRECT_SCAN_BELOW)
    assert await _share(store, "alice", question) == 0.0

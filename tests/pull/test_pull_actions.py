"""The actions queue (PHP app 5.4+): all six action types, per-item validation, bare provider ids, replays."""

from __future__ import annotations

import logging
import secrets

import psycopg
import pytest
from async_wait import until
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import BUDGET, HIKING, LABEL, PullApp, acked

from quart_app.services import access
from quart_app.services.source_order import SourceOrder
from quart_app.store import Database


async def _index(pull_app: PullApp, nextcloud: FakePullNextcloud) -> dict[str, str]:
    ids = {
        "budget": nextcloud.add_file(["alice"], "files/budget.txt", BUDGET),
        "label": nextcloud.add_file(["alice", "bob"], "files/label.txt", LABEL),
        "hiking": nextcloud.add_file(["bob"], "files/hiking.txt", HIKING),
    }
    nextcloud.add_content_item(["alice", "bob"], provider="mail__mail", item_id="42", content="Mail about green label")
    nextcloud.add_content_item(["alice"], provider="notes__notes", item_id="7", content="Note: Berlin budget travel")
    await until(lambda: len(acked(nextcloud, "files")) == 3 and len(acked(nextcloud, "content_providers")) == 2)
    await pull_app.drain_embeddings()
    return {name: f"files__default: {file_id}" for name, file_id in ids.items()}


async def _counts(pull_app: PullApp) -> dict[str, int]:
    status, body = await pull_app.post("/countIndexedDocuments", None)
    assert status == 200
    counts: dict[str, int] = body
    return counts


async def _apply(
    pull_app: PullApp, nextcloud: FakePullNextcloud, actions: list[tuple[str, dict[str, object]]]
) -> set[int]:
    ids = {nextcloud.add_action(kind, payload) for kind, payload in actions}
    await until(lambda: ids <= acked(nextcloud, "actions"), what="actions acknowledged")
    await pull_app.actions_applied()
    return ids


async def test_access_actions_change_what_each_user_finds(pull_app: PullApp, nextcloud: FakePullNextcloud) -> None:
    docs = await _index(pull_app, nextcloud)
    assert docs["budget"] not in await pull_app.search("bob", "travel budget Berlin office")
    await _apply(
        pull_app,
        nextcloud,
        [("update_access_source_id", {"op": "allow", "userIds": ["bob"], "sourceId": docs["budget"]})],
    )
    assert docs["budget"] in await pull_app.search("bob", "travel budget Berlin office")
    await _apply(
        pull_app, nextcloud, [("update_access_decl_source_id", {"userIds": ["alice"], "sourceId": docs["label"]})]
    )
    assert docs["label"] not in await pull_app.search("bob", "green label ethical AI")
    assert docs["label"] in await pull_app.search("alice", "green label ethical AI")
    await _apply(
        pull_app,
        nextcloud,
        [("update_access_provider_id", {"op": "deny", "userIds": ["bob"], "providerId": "mail__mail"})],
    )
    assert "mail__mail: 42" not in await pull_app.search("bob", "mail about green label")
    assert "mail__mail: 42" in await pull_app.search("alice", "mail about green label")
    await _apply(
        pull_app,
        nextcloud,
        [("update_access_source_id", {"op": "deny", "userIds": ["alice"], "sourceId": docs["budget"]})],
    )
    assert docs["budget"] not in await pull_app.search("alice", "travel budget Berlin office")


async def test_delete_actions_and_a_replay_change_nothing_more(pull_app: PullApp, nextcloud: FakePullNextcloud) -> None:
    docs = await _index(pull_app, nextcloud)
    assert await _counts(pull_app) == {"files__default": 3, "mail__mail": 1, "notes__notes": 1}
    deletes: list[tuple[str, dict[str, object]]] = [
        ("delete_source_ids", {"sourceIds": [docs["budget"], "files__default: 999999"]}),
        ("delete_provider_id", {"providerId": "notes__notes"}),
        ("delete_user_id", {"userId": "bob"}),  # hiking was only bob's; label and mail stay for alice
    ]
    await _apply(pull_app, nextcloud, deletes)
    after = {"files__default": 1, "mail__mail": 1}
    assert await _counts(pull_app) == after
    assert docs["label"] in await pull_app.search("alice", "green label")
    assert await pull_app.search("bob", "green label hiking Alps") == []
    await _apply(pull_app, nextcloud, deletes)  # the PHP app re-serves actions whose acknowledgement was lost
    assert await _counts(pull_app) == after


async def test_one_bad_action_never_blocks_the_others_and_bare_provider_ids_work(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    docs = await _index(pull_app, nextcloud)
    ids = await _apply(
        pull_app,
        nextcloud,
        [
            ("delete_provider_id", {"providerId": "mail"}),  # PHP < 5.5 on an app disable (context_chat#258)
            ("update_access_source_id", {"op": "maybe", "userIds": ["bob"], "sourceId": docs["budget"]}),
            ("no_such_action", {}),
            ("delete_user_id", {"userId": ""}),
            ("delete_source_ids", {"sourceIds": [docs["hiking"]]}),
        ],
    )
    assert len(ids) == 5
    counts = await _counts(pull_app)
    assert counts == {"files__default": 2, "notes__notes": 1}  # mail__mail gone, files__default kept
    counters = (await pull_app.status())["loops"]["actions"]["counters"]
    assert counters["invalid"] == 3 and counters["applied"] == 2


async def test_actions_postgresql_cannot_store_are_dropped_with_their_reason_and_never_block_the_queue(
    pull_app: PullApp, nextcloud: FakePullNextcloud, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="quart_app.pull")
    docs = await _index(pull_app, nextcloud)
    # a NUL failed in the database, was retried, and then held back every later action for 24 h
    bad: list[tuple[str, dict[str, object]]] = [
        ("update_access_source_id", {"op": "allow", "userIds": ["b\x00ob"], "sourceId": docs["budget"]}),
        ("delete_user_id", {"userId": "al\x00ice"}),
        ("update_access_decl_source_id", {"userIds": ["alice", "b\x00ob"], "sourceId": docs["label"]}),
        ("update_access_provider_id", {"op": "deny", "userIds": ["bob\x07"], "providerId": "mail__mail"}),
        ("update_access_provider_id", {"op": "deny", "userIds": ["bob"], "providerId": "mail__mail\n"}),
        # valid JSON that UTF-8 cannot encode: it crashed the loop, and the batch stayed locked for 24 h
        ("delete_user_id", {"userId": "bob\ud800"}),
        # too long for PostgreSQL's index (random hex does not compress): retried, then it held back the rest
        ("update_access_source_id", {"op": "allow", "userIds": [secrets.token_hex(1500)], "sourceId": docs["budget"]}),
        ("update_access_decl_source_id", {"userIds": ["bob"], "sourceId": "files__default: " + "7" * 600}),
        ("update_access_provider_id", {"op": "allow", "userIds": ["bob"], "providerId": "notes__" + "n" * 600}),
    ]
    ids = await _apply(pull_app, nextcloud, [*bad, ("delete_source_ids", {"sourceIds": [docs["hiking"]]})])
    assert len(ids) == len(bad) + 1
    counters = (await pull_app.status())["loops"]["actions"]["counters"]
    assert counters["invalid"] == len(bad) and counters["applied"] == 1 and "retries" not in counters
    dropped = [r.getMessage() for r in caplog.records if "is invalid and dropped" in r.getMessage()]
    assert len(dropped) == len(bad)
    assert sum("must not contain NUL characters" in m for m in dropped) == 3
    assert sum("must not contain control characters" in m for m in dropped) == 1
    assert sum("must not contain lone UTF-16 surrogates" in m for m in dropped) == 1
    assert sum("payload.providerId 'mail__mail\\n' is not" in m for m in dropped) == 1
    assert sum("payload.userIds '" in m and "is 3000 characters long; the limit is 255" in m for m in dropped) == 1
    assert sum("payload.sourceId '" in m and "is 616 characters long; the limit is 512" in m for m in dropped) == 1
    assert sum("payload.providerId '" in m and "is 607 characters long; the limit is 512" in m for m in dropped) == 1
    assert await _counts(pull_app) == {"files__default": 2, "mail__mail": 1, "notes__notes": 1}
    assert docs["label"] in await pull_app.search("bob", "green label ethical AI")  # the declaration was refused
    assert docs["budget"] not in await pull_app.search("bob", "travel budget Berlin office")
    assert "mail__mail: 42" in await pull_app.search("bob", "mail about green label")


async def test_an_action_the_database_refuses_for_good_is_dropped_and_the_next_one_applied(
    pull_app: PullApp, nextcloud: FakePullNextcloud, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="quart_app.pull")
    docs = await _index(pull_app, nextcloud)
    update_access = access.update_access

    async def refused_for_mallory(db: Database, order: SourceOrder, op: str, users: list[str], source: str) -> bool:
        if "mallory" in users:  # what PostgreSQL answers for a value its index cannot hold
            raise psycopg.errors.ProgramLimitExceeded("index row size 3032 exceeds btree version 4 maximum 2704")
        return await update_access(db, order, op, users, source)

    monkeypatch.setattr(access, "update_access", refused_for_mallory)
    # retried as if transient, it was then left locked with the deny behind it: bob kept reading the label for 24 h
    await _apply(
        pull_app,
        nextcloud,
        [
            ("update_access_source_id", {"op": "allow", "userIds": ["mallory"], "sourceId": docs["budget"]}),
            ("update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": docs["label"]}),
        ],
    )
    counters = (await pull_app.status())["loops"]["actions"]["counters"]
    assert counters["invalid"] == 1 and counters["applied"] == 1 and "retries" not in counters
    assert docs["label"] not in await pull_app.search("bob", "green label ethical AI")
    dropped = [r.getMessage() for r in caplog.records if "the database refuses it" in r.getMessage()]
    assert len(dropped) == 1 and "update_access_source_id" in dropped[0] and "index row size 3032" in dropped[0]

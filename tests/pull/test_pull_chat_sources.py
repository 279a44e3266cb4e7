"""A pull-mode chat task names its sources from the enrich_sources call that checked its context: one call per
answer, the output as a second call on the answer's sources would give it, and no answer from documents whose call
failed."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import pytest
from async_wait import until
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import BUDGET, LABEL, PullApp, acked, chat, sources, task_done

from quart_app.lifecycle import STATE_EXTENSION
from quart_app.pull.enriched_sources import as_task_output, enriched_entries
from quart_app.pull.task_types import CHAT_TASK_TYPE
from quart_app.services.answer import FILL_ROUNDS, AnswerService, QueryResult, titled_sources

BERLIN = b"Berlin office notes: the budget review for the Berlin office happens in March."
LOST = b"Berlin budget draft: the Berlin office travel budget was once 9000 euros."
QUESTION = "What is the Berlin office travel budget in euros? Check the budget mail."


async def _corpus(pull_app: PullApp, nextcloud: FakePullNextcloud) -> int:
    """Files and two mails alice reads, and the id of a file she lost in an unshare the PHP app did not queue."""
    nextcloud.add_file(["alice"], "files/Documents/budget.txt", BUDGET)
    nextcloud.add_file(["alice", "bob"], "files/label.txt", LABEL)
    nextcloud.add_file(["alice"], "files/Documents/berlin.txt", BERLIN)
    lost = nextcloud.add_file(["alice"], "files/draft.txt", LOST)
    nextcloud.add_content_item(["alice"], item_id="42", title="Budget", content="Berlin budget mail: 12000 euros")
    nextcloud.add_content_item(["alice"], item_id="43", title="Hotel", content="Berlin budget mail: hotel 300 euros")
    await until(lambda: len(acked(nextcloud, "files")) == 4 and len(acked(nextcloud, "content_providers")) == 2)
    await pull_app.drain_embeddings()
    nextcloud.set_file_users(lost, ["bob"])
    return lost


def _enrich_calls(nextcloud: FakePullNextcloud, since: int) -> list[dict[str, Any]]:
    return [r.json for r in nextcloud.requests[since:] if r.path.endswith("/enrich_sources")]


async def test_a_chat_task_asks_enrich_sources_once_and_names_its_sources_as_a_call_on_them_would(
    pull_app: PullApp, nextcloud: FakePullNextcloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = await _corpus(pull_app, nextcloud)
    answers: list[QueryResult] = []
    query = AnswerService.query

    async def kept(service: AnswerService, *args: Any, **kwargs: Any) -> QueryResult:
        answers.append(await query(service, *args, **kwargs))
        return answers[-1]

    monkeypatch.setattr(AnswerService, "query", kept)
    asked_before = len(nextcloud.requests)
    task = nextcloud.schedule_task(CHAT_TASK_TYPE, "alice", chat(QUESTION))
    found = sources(await task_done(nextcloud, task))
    calls = _enrich_calls(nextcloud, asked_before)
    # the check before the answer named every context document, the lost file among them; before: a second call
    assert len(calls) == 1, calls
    assert f"files__default: {lost}" in {s["source_id"] for s in calls[0]["sources"]}
    assert f"files__default: {lost}" not in {s["id"] for s in found}
    # both mails reached the answer, each under its own entry though they share the provider key as id
    mails = sorted(s["url"] for s in found if s["id"] == "mail__mail")
    assert mails == [f"{nextcloud.url}/apps/mail/42", f"{nextcloud.url}/apps/mail/43"], found
    # the output is what the second call on the answer's sources gave: its entries, in its order
    answered = titled_sources(answers[-1])
    nc = pull_app.app.extensions[STATE_EXTENSION].nextcloud
    assert nc is not None
    second_call = await enriched_entries(nc, "alice", answered)
    assert second_call is not None and len(second_call) == len(found) > 2
    assert [json.loads(text) for text in as_task_output(second_call)] == found


async def test_a_chat_task_whose_enrich_sources_calls_fail_is_not_answered_from_unconfirmed_documents(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    await _corpus(pull_app, nextcloud)
    # every call of the task fails: every round's candidates stay out, so nothing is left to answer from
    nextcloud.endpoint_faults["enrich"] = deque([500] * 2 * FILL_ROUNDS)
    asked_before = len(nextcloud.requests)
    done = await task_done(nextcloud, nextcloud.schedule_task(CHAT_TASK_TYPE, "alice", chat(QUESTION)))
    # before: answered from every candidate ("12000"), its sources plain, the lost draft among what the LLM read;
    # now: failed, naming Nextcloud's silence rather than "No documents retrieved"
    assert done["status"] == "STATUS_FAILED" and done["output"] is None, done
    message = done["userFacingErrorMessage"]
    assert message.startswith("Nextcloud did not say whether the user can still read the "), message
    assert message.endswith("nothing was answered from them: ask again once Nextcloud answers enrich_sources requests")
    assert 1 <= len(_enrich_calls(nextcloud, asked_before)) <= FILL_ROUNDS


async def test_a_chat_answered_again_for_a_source_lost_meanwhile_names_the_second_answers_sources(
    pull_app: PullApp, nextcloud: FakePullNextcloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _corpus(pull_app, nextcloud)
    revoked: list[str] = []
    answers: list[QueryResult] = []
    draft_of = AnswerService._answer_from_context
    query = AnswerService.query

    async def unshared_while_written(service: AnswerService, user_id: str, *args: Any) -> tuple[str, list[str]]:
        output, used = await draft_of(service, user_id, *args)
        if not revoked:
            # an unshare the PHP app queues while the first answer is written
            revoked.append(next(sid for sid in used if sid.startswith("files__default: ")))
            nextcloud.set_file_users(int(revoked[0].partition(": ")[2]), [])
            unshare = nextcloud.add_action(
                "update_access_source_id", {"op": "deny", "userIds": [user_id], "sourceId": revoked[0]}
            )
            await until(lambda: unshare in acked(nextcloud, "actions"), what="the unshare stored")
            await pull_app.actions_applied()
        return output, used

    async def kept(service: AnswerService, *args: Any, **kwargs: Any) -> QueryResult:
        answers.append(await query(service, *args, **kwargs))
        return answers[-1]

    monkeypatch.setattr(AnswerService, "_answer_from_context", unshared_while_written)
    monkeypatch.setattr(AnswerService, "query", kept)
    asked_before = len(nextcloud.requests)
    found = sources(await task_done(nextcloud, nextcloud.schedule_task(CHAT_TASK_TYPE, "alice", chat(QUESTION))))
    # one check per answer written (before: a third call for the labels)
    assert len(_enrich_calls(nextcloud, asked_before)) == 2
    assert revoked and revoked[0] not in {s["id"] for s in found}
    answered = titled_sources(answers[-1])
    nc = pull_app.app.extensions[STATE_EXTENSION].nextcloud
    assert nc is not None
    second_call = await enriched_entries(nc, "alice", answered)
    assert [json.loads(text) for text in as_task_output(second_call)] == found

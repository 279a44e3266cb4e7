"""Push mode (PHP app <= 5.3): a file the user can no longer read in Nextcloud is left out of /query and /docSearch.

The PHP app <= 5.3 on Nextcloud 30+ never sends an unshare, so the index still lists bert among the readers of the
file anna unshared from him. Before answering, the app asks Nextcloud (WebDAV SEARCH by file id, one request per
question) which candidate files bert still reads; the fake Nextcloud answers as the real one does.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from contract_kit import (
    APP_ID,
    APP_SECRET,
    APP_VERSION,
    SourcePart,
    all_embedded,
    contract_config,
    make_settings,
    put_sources,
    running_app,
    signed_headers,
    status_when,
)
from crowding_files import LOGS, LOST_CHUNKS_AT_LEAST, OWN_BREAD, starter_log
from crowding_files import QUESTION as FEEDING_QUESTION
from nextcloud_ocs_fake import FakeAppApiNextcloud
from orchard_gate_notes import BERTS_LIST, gate_notes
from quart.typing import TestClientProtocol as Client
from timeout_recording_transport import TimeoutRecordingTransport

from quart_app import create_app
from quart_app.nextcloud import NextcloudAuthError, NextcloudClient
from quart_app.nextcloud.readable_check_wait import ReadableCheckWait
from quart_app.nextcloud.readable_files import UnreadableFilesByDav, readable_file_ids
from quart_app.services.answer import DocSearchResult

ANNA_SECRET = "The orchard gate code is 4711 and the tulips go in every March."
SHARED = SourcePart("files__default: 11", ANNA_SECRET.encode(), user_ids=["anna", "bert"], title="anna/orchard.md")
OWN = SourcePart(
    "files__default: 12", b"Bert plants tulips in March next to the orchard gate.", user_ids=["bert"], title="tulips.md"
)
MAIL = SourcePart(
    "mail__mail: 7",
    b"Mail: the orchard tulips arrive in March.",
    user_ids=["bert"],
    title="Tulips",
    provider="mail__mail",
)
QUESTION = "When do the orchard tulips go in, and what is the gate code?"
# the shipped nextcloud.readable_check_timeout_s
SEARCH_WAIT_S = 15.0


@asynccontextmanager
async def push_app(
    tmp_path: Path,
    dsn: str,
    embedder_url: str,
    nextcloud: FakeAppApiNextcloud,
    more: Sequence[SourcePart] = (),
    config: dict[str, Any] | None = None,
) -> AsyncIterator[Client]:
    raw_config = contract_config(embedder_url, **(config or {}))
    app = create_app(make_settings(tmp_path / "storage", dsn, raw_config, nextcloud.url))
    async with running_app(app) as test_app:
        http = test_app.test_client()
        await http.put("/enabled?enabled=1", headers=signed_headers())
        parts = [SHARED, OWN, MAIL, *more]
        loaded = await (await put_sources(http, parts)).get_json()
        assert sorted(loaded["loaded_sources"]) == sorted(p.source_id for p in parts), loaded
        # a file whose chunks wait for their vectors ranks by the full-text leg alone, below the embedded ones
        await status_when(http, all_embedded, "every chunk embedded")
        yield http


async def _ask(http: Client, route: str, user: str) -> tuple[int, object]:
    response = await http.post(route, json={"userId": user, "query": QUESTION}, headers=signed_headers(user))
    return response.status_code, await response.get_json()


async def test_a_file_unshared_in_nextcloud_is_neither_cited_nor_quoted(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    with FakeAppApiNextcloud() as nextcloud:
        async with push_app(tmp_path, fresh_dsn, embedder_url, nextcloud) as http:
            status, shared = await _ask(http, "/query", "bert")
            assert status == 200 and isinstance(shared, dict)
            assert SHARED.source_id in shared["sources"]  # still shared: cited
            nextcloud.dav.revoke("bert", 11)  # anna unshares; the PHP app tells the backend nothing
            status, answer = await _ask(http, "/query", "bert")
            status_search, hits = await _ask(http, "/docSearch", "bert")
            status_anna, annas = await _ask(http, "/query", "anna")
    assert status == 200 and isinstance(answer, dict), answer
    assert SHARED.source_id not in answer["sources"] and "4711" not in answer["output"], answer
    assert answer["sources"] and set(answer["sources"]) <= {OWN.source_id, MAIL.source_id}  # from what bert reads
    # /docSearch: the next candidates fill in; the mail (not a file) is not asked about and stays
    assert status_search == 200 and isinstance(hits, list)
    assert [hit["source_id"] for hit in hits if hit["source_id"] == SHARED.source_id] == []
    assert {hit["source_id"] for hit in hits} == {OWN.source_id, MAIL.source_id}
    # anna still reads her own file
    assert status_anna == 200 and isinstance(annas, dict) and SHARED.source_id in annas["sources"]
    # one SEARCH per question, asking only about files, in the asking user's folder
    assert [user for user, _ in nextcloud.dav.searches] == ["bert", "bert", "bert", "anna"]
    assert all(11 in ids and set(ids) <= {11, 12} for _, ids in nextcloud.dav.searches), nextcloud.dav.searches


async def test_without_an_answer_from_nextcloud_nothing_is_answered(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    with FakeAppApiNextcloud() as nextcloud:
        async with push_app(tmp_path, fresh_dsn, embedder_url, nextcloud) as http:
            nextcloud.dav.faults.extend([503, 500])
            status, answer = await _ask(http, "/query", "bert")
            status_search, hits = await _ask(http, "/docSearch", "bert")
    expected = (
        r"Error: Nextcloud did not say whether the user can still read the [12] file\(s\) the answer would draw on"
        r" \(SEARCH /remote\.php/dav/: Nextcloud answered {status}\); nothing was answered from them: ask again once"
        r" Nextcloud answers WebDAV requests"
    )
    assert status == 503 and isinstance(answer, dict) and re.fullmatch(expected.format(status=503), answer["error"])
    assert status_search == 503 and isinstance(hits, dict) and re.fullmatch(expected.format(status=500), hits["error"])


async def test_more_candidate_files_than_one_search_may_hold_are_asked_in_searches_of_100() -> None:
    with FakeAppApiNextcloud() as nextcloud:
        nextcloud.dav.revoke("bert", 5, 150)
        nc = NextcloudClient(nextcloud.url, app_id=APP_ID, app_version=APP_VERSION, app_secret=APP_SECRET)
        try:
            readable = await readable_file_ids(nc, "bert", list(range(1, 151)), ReadableCheckWait(SEARCH_WAIT_S))
        finally:
            await nc.aclose()
    assert readable == set(range(1, 151)) - {5, 150}
    assert sorted(len(ids) for _, ids in nextcloud.dav.searches) == [50, 100]  # Nextcloud refuses more than 100


@pytest.mark.parametrize("user", ["ann smith@x", "lee+kim@x", "o'brien-jürgen.b_2"])
async def test_a_users_own_files_are_found_whatever_her_user_id_holds(user: str) -> None:
    # Nextcloud urldecodes the user's name in the search scope: a raw "+" named "lee kim@x", and lee's search failed
    with FakeAppApiNextcloud() as nextcloud:
        nextcloud.dav.users = {user, "lee kim@x"}
        nextcloud.dav.revoke(user, 2)
        nc = NextcloudClient(nextcloud.url, app_id=APP_ID, app_version=APP_VERSION, app_secret=APP_SECRET)
        try:
            readable = await readable_file_ids(nc, user, [1, 2], ReadableCheckWait(SEARCH_WAIT_S))
        finally:
            await nc.aclose()
    assert readable == {1}
    assert nextcloud.dav.searches == [(user, [1, 2])]  # asked as her (AUTHORIZATION-APP-API names her)


async def test_a_user_nextcloud_does_not_know_is_named_not_blamed_on_the_secret() -> None:
    with FakeAppApiNextcloud() as nextcloud:
        nextcloud.dav.users = {"anna", "bert"}
        nc = NextcloudClient(nextcloud.url, app_id=APP_ID, app_version=APP_VERSION, app_secret=APP_SECRET)
        try:
            with pytest.raises(NextcloudAuthError) as refused:
                await readable_file_ids(nc, "me", [1], ReadableCheckWait(SEARCH_WAIT_S))
        finally:
            await nc.aclose()
    assert str(refused.value) == (
        "SEARCH /remote.php/dav/: Nextcloud answered 401: user 'me' is not a Nextcloud user, or AppAPI did not accept"
        " APP_ID/APP_SECRET (re-register the ExApp or check its secret)"
    )


async def test_a_user_who_never_logged_in_is_answered_from_the_files_shared_with_him(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    # Nextcloud 34 answers his SEARCH 500 "/bert/files" not found until a PROPFIND of his root sets his home up
    # (bench/results/push_never_logged_in_realnc.txt); that was a 503 "Nextcloud answered 500" to his every question
    with FakeAppApiNextcloud() as nextcloud:
        async with push_app(tmp_path, fresh_dsn, embedder_url, nextcloud) as http:
            nextcloud.dav.never_logged_in.add("bert")
            status_search, hits = await _ask(http, "/docSearch", "bert")
            status, answer = await _ask(http, "/query", "bert")
    assert status_search == 200 and isinstance(hits, list), hits
    assert SHARED.source_id in {hit["source_id"] for hit in hits}, hits
    assert status == 200 and isinstance(answer, dict) and SHARED.source_id in answer["sources"], answer
    assert nextcloud.dav.homes_set_up == ["bert"]  # once: his second question found his home set up
    assert [user for user, _ in nextcloud.dav.searches] == ["bert", "bert"]


@pytest.mark.parametrize(
    ("search_faults", "propfind_faults", "failed"),
    [([503], [], "SEARCH /remote.php/dav/"), ([], [503], "PROPFIND /remote.php/dav/files/bert/")],
)
async def test_nextcloud_in_trouble_still_gets_the_503_for_a_user_who_never_logged_in(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, search_faults: list[int], propfind_faults: list[int], failed: str
) -> None:
    # a 503 (maintenance) is an outage, not a home to set up; so is a PROPFIND Nextcloud fails
    with FakeAppApiNextcloud() as nextcloud:
        async with push_app(tmp_path, fresh_dsn, embedder_url, nextcloud) as http:
            nextcloud.dav.never_logged_in.add("bert")
            nextcloud.dav.faults.extend(search_faults)
            nextcloud.dav.propfind_faults.extend(propfind_faults)
            status, hits = await _ask(http, "/docSearch", "bert")
    assert status == 503 and isinstance(hits, dict), hits
    assert re.search(rf"\({re.escape(failed)}: Nextcloud answered 503\); nothing was answered", hits["error"]), hits
    assert nextcloud.dav.homes_set_up == [] and nextcloud.dav.searches == []
    propfinds = [r.path for r in nextcloud.requests if r.method == "PROPFIND"]
    assert propfinds == ([] if search_faults else ["/remote.php/dav/files/bert/"]), propfinds


@pytest.mark.parametrize("user", ["lee+kim@x", "o'brien-jürgen.b_2"])
async def test_the_home_of_a_user_who_never_logged_in_is_set_up_whatever_his_user_id_holds(user: str) -> None:
    with FakeAppApiNextcloud() as nextcloud:
        nextcloud.dav.users = {user, "lee kim@x"}
        nextcloud.dav.never_logged_in = {user, "lee kim@x"}
        nextcloud.dav.revoke(user, 2)
        nc = NextcloudClient(nextcloud.url, app_id=APP_ID, app_version=APP_VERSION, app_secret=APP_SECRET)
        try:
            readable = await readable_file_ids(nc, user, [1, 2], ReadableCheckWait(SEARCH_WAIT_S))
        finally:
            await nc.aclose()
    assert readable == {1} and nextcloud.dav.searches == [(user, [1, 2])]
    assert nextcloud.dav.homes_set_up == [user]  # his, as him: not "lee kim@x"'s


async def test_a_search_fills_the_place_of_an_unshared_file_from_its_next_candidates(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    body = {"userId": "bert", "query": "orchard gate code", "ctxLimit": 1}
    with FakeAppApiNextcloud() as nextcloud:
        async with push_app(tmp_path, fresh_dsn, embedder_url, nextcloud) as http:
            before = await (await http.post("/docSearch", json=body, headers=signed_headers("bert"))).get_json()
            nextcloud.dav.revoke("bert", 11)
            after = await (await http.post("/docSearch", json=body, headers=signed_headers("bert"))).get_json()
    assert [hit["source_id"] for hit in before] == [SHARED.source_id]
    assert len(after) == 1 and after[0]["source_id"] in (OWN.source_id, MAIL.source_id), after


async def test_a_search_nextcloud_leaves_unanswered_ends_after_the_configured_wait(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    with FakeAppApiNextcloud() as nextcloud:
        settings = {"nextcloud": {"readable_check_timeout_s": 1}}
        async with push_app(tmp_path, fresh_dsn, embedder_url, nextcloud, config=settings) as http:
            nextcloud.dav.stall()
            try:
                status, hits = await _ask(http, "/docSearch", "bert")
            finally:
                nextcloud.dav.resume()
    assert nextcloud.dav.stalled.is_set()  # asked, and answered only once the app had given up
    assert status == 503 and isinstance(hits, dict), hits
    assert re.fullmatch(
        r"Error: Nextcloud did not say whether the user can still read the [12] file\(s\) the answer would draw on"
        r" \(SEARCH /remote\.php/dav/: Nextcloud did not answer within 1 s, the config's"
        r" nextcloud\.readable_check_timeout_s\); nothing was answered from them: ask again once Nextcloud answers"
        r" WebDAV requests",
        hits["error"],
    ), hits


async def test_each_search_is_sent_with_the_configured_wait() -> None:
    recording = TimeoutRecordingTransport()
    with FakeAppApiNextcloud() as nextcloud:
        nc = NextcloudClient(
            nextcloud.url, app_id=APP_ID, app_version=APP_VERSION, app_secret=APP_SECRET, transport=recording
        )
        candidates: list[DocSearchResult] = [{"source_id": "files__default: 3", "title": "a.md"}]
        try:
            gone = await UnreadableFilesByDav(nc, 2.5)("bert", candidates)
        finally:
            await nc.aclose()
    assert gone == set() and nextcloud.dav.searches == [("bert", [3])]
    # the client's own default (30 s) is not what a SEARCH waits
    assert recording.timeouts == [{"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}]


# anna's notes on the question's topic, shared with bert: they rank above everything bert keeps
GATE_NOTES = gate_notes(8)


async def test_a_user_who_lost_most_top_ranked_files_still_gets_the_number_asked_for(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    body = {"userId": "bert", "query": "orchard gate code", "ctxLimit": 2}
    lost = [SHARED, *GATE_NOTES]
    with FakeAppApiNextcloud() as nextcloud:
        async with push_app(tmp_path, fresh_dsn, embedder_url, nextcloud, more=[*GATE_NOTES, BERTS_LIST]) as http:
            top = await http.post("/docSearch", json={**body, "ctxLimit": 4}, headers=signed_headers("bert"))
            top_ids = [hit["source_id"] for hit in await top.get_json()]
            # anna unshares every note; the PHP app tells the backend nothing
            nextcloud.dav.revoke("bert", *(int(part.source_id.removeprefix("files__default: ")) for part in lost))
            del nextcloud.dav.searches[:]
            response = await http.post("/docSearch", json=body, headers=signed_headers("bert"))
            hits = await response.get_json()
    # the first round's 4 candidates are all files bert lost: one round alone found nothing for him
    assert set(top_ids) <= {part.source_id for part in lost}, top_ids
    assert response.status_code == 200 and len(hits) == 2, hits
    assert {hit["source_id"] for hit in hits} <= {OWN.source_id, MAIL.source_id, BERTS_LIST.source_id}, hits
    # more candidates each round, each file asked about once
    asked = [file_id for _, ids in nextcloud.dav.searches for file_id in ids]
    assert len(asked) == len(set(asked)) and 2 <= len(nextcloud.dav.searches) <= 4, nextcloud.dav.searches


STARTER_LOGS = [
    SourcePart(f"files__default: {200 + n}", starter_log(n), user_ids=["anna", "bert"], title=f"anna/log-{n}.md")
    for n in range(LOGS)
]
BERTS_BREAD = [
    SourcePart(f"files__default: {300 + n}", text, user_ids=["bert"], title=name)
    for n, (name, text) in enumerate(OWN_BREAD.items())
]


@pytest.mark.parametrize("route", ["/docSearch", "/query"])
async def test_the_users_files_below_lost_files_of_many_chunks_are_found(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, route: str
) -> None:
    # the lost logs fill every leg's chunk candidates of each round: the rounds reach bert's own files only when the
    # files found lost are left out of the next round's search (a search listed nothing, an answer was a 400)
    body = {"userId": "bert", "query": FEEDING_QUESTION, "ctxLimit": 3}
    lost = [int(part.source_id.removeprefix("files__default: ")) for part in STARTER_LOGS]
    with FakeAppApiNextcloud() as nextcloud:
        async with push_app(tmp_path, fresh_dsn, embedder_url, nextcloud, more=[*STARTER_LOGS, *BERTS_BREAD]) as http:
            await status_when(http, all_embedded, "the starter logs embedded")
            nextcloud.dav.revoke("bert", *lost)  # anna unshares every log; the PHP app tells the backend nothing
            response = await http.post(route, json=body, headers=signed_headers("bert"))
            found = await response.get_json()
    async with await psycopg.AsyncConnection.connect(fresh_dsn) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM chunks WHERE source_id = ANY(%s)", ([p.source_id for p in STARTER_LOGS],)
        )
        row = await cursor.fetchone()
    assert row is not None and row[0] >= LOST_CHUNKS_AT_LEAST, row  # the scenario holds
    assert response.status_code == 200, found
    berts = {part.source_id for part in BERTS_BREAD}
    if route == "/docSearch":
        assert {hit["source_id"] for hit in found} == berts, found
    else:
        assert found["sources"] and set(found["sources"]) <= berts, found
    asked = [file_id for _, ids in nextcloud.dav.searches for file_id in ids]
    assert len(asked) == len(set(asked)), nextcloud.dav.searches
    assert route == "/query" or set(lost) <= set(asked), nextcloud.dav.searches


async def test_an_answer_whose_user_lost_the_top_ranked_files_draws_on_his_own_further_down(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    body = {"userId": "bert", "query": "orchard gate code", "ctxLimit": 2}
    lost = [SHARED, *GATE_NOTES]
    lost_ids = [int(part.source_id.removeprefix("files__default: ")) for part in lost]
    with FakeAppApiNextcloud() as nextcloud:
        async with push_app(tmp_path, fresh_dsn, embedder_url, nextcloud, more=[*GATE_NOTES, BERTS_LIST]) as http:
            shared = await (await http.post("/query", json=body, headers=signed_headers("bert"))).get_json()
            searched_while_shared = list(nextcloud.dav.searches)
            # anna unshares every note; the PHP app tells the backend nothing
            nextcloud.dav.revoke("bert", *lost_ids)
            del nextcloud.dav.searches[:]
            response = await http.post("/query", json=body, headers=signed_headers("bert"))
            answer = await response.get_json()
    # nothing lost: one SEARCH, about the context's 2 chunks' files only; they were anna's, so one round alone left
    # bert nothing ("No documents retrieved", 400)
    assert len(searched_while_shared) == 1 and shared["sources"], (searched_while_shared, shared)
    assert set(searched_while_shared[0][1]) <= set(lost_ids), searched_while_shared
    assert response.status_code == 200, answer
    assert answer["sources"] and set(answer["sources"]) <= {OWN.source_id, MAIL.source_id, BERTS_LIST.source_id}
    assert not re.search(r"47\d\d", answer["output"]), answer
    # more candidates each round, each file asked about once
    asked = [file_id for _, ids in nextcloud.dav.searches for file_id in ids]
    assert len(asked) == len(set(asked)) and 2 <= len(nextcloud.dav.searches) <= 4, nextcloud.dav.searches

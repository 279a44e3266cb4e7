"""Pull mode: one task's enrich_sources calls, one per fill round, share the wait nextcloud.readable_check_timeout_s
(a Nextcloud that hangs costs a task one timeout, not one per round); a round it runs out in fails as a failed
call does."""

from __future__ import annotations

import time

import httpx
import pytest
from nextcloud_pull_fake import FakePullNextcloud, RecordedRequest

from quart_app.nextcloud import NextcloudClient
from quart_app.pull.enriched_sources import EnrichedCandidates
from quart_app.services.answer import DocSearchResult
from quart_app.services.errors import ReadabilityUnknownError

WAIT_S = 2.0


async def test_a_round_whose_enrich_sources_hangs_gets_what_the_earlier_rounds_left_of_the_wait(
    nextcloud: FakePullNextcloud,
) -> None:
    read_timeouts: list[float] = []
    # how long each call took on the wire: within the time the check counts as waited on Nextcloud
    on_the_wire_s: list[float] = []

    class Recording(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            read_timeouts.append(request.extensions["timeout"]["read"])
            started = time.monotonic()
            try:
                return await super().handle_async_request(request)
            finally:
                on_the_wire_s.append(time.monotonic() - started)

    def hang_from_the_second_call(request: RecordedRequest) -> None:
        if request.path.endswith("/enrich_sources") and len(read_timeouts) > 1:
            nextcloud.delay_s["enrich"] = 2 * WAIT_S  # Nextcloud hangs from the second round on

    rounds: list[list[DocSearchResult]] = [
        [
            {
                "source_id": f"files__default: {nextcloud.add_file(['alice'], f'files/{n}.md', b'notes')}",
                "title": f"{n}.md",
            }
        ]
        for n in range(3)
    ]
    nextcloud.on_request = hang_from_the_second_call
    nc = NextcloudClient(
        nextcloud.url, app_id="context_chat_backend", app_version="5.4.0", app_secret=nextcloud.secret,
        transport=Recording(),
    )  # fmt: skip
    # one task's check, asked once per fill round
    check = EnrichedCandidates(nc, WAIT_S)
    try:
        assert await check("alice", rounds[0]) == set()
        # a round the wait ran out in leaves its candidates out, as a failed call does
        assert await check("alice", rounds[1]) == {rounds[1][0]["source_id"]}
        assert await check("alice", rounds[2]) == {rounds[2][0]["source_id"]}
    finally:
        await nc.aclose()
    # the first call waited the whole setting; the second only what the first left (before: each call the client's
    # own 30 s, so a task of four rounds waited up to four times that); the third was never sent
    assert len(read_timeouts) == 2, read_timeouts
    assert read_timeouts[0] == WAIT_S and read_timeouts[1] <= WAIT_S - on_the_wire_s[0], (read_timeouts, on_the_wire_s)
    # the first round keeps its label
    assert [entry["label"] for entry in check.entries_of(rounds[0] + rounds[1])] == ["0.md"]
    with pytest.raises(ReadabilityUnknownError) as left_out:
        check.raise_if_left_out()
    assert str(left_out.value) == (
        "Nextcloud did not say whether the user can still read the 2 file(s) the answer would draw on (POST"
        " /ocs/v2.php/apps/context_chat/enrich_sources: Nextcloud did not answer within 2 s, the config's"
        " nextcloud.readable_check_timeout_s); nothing was answered from them: ask again once Nextcloud answers"
        " enrich_sources requests"
    )

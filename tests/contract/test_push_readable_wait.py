"""Push mode: one question's WebDAV SEARCHes, one per fill round, share the wait nextcloud.readable_check_timeout_s
(a Nextcloud that hangs costs a question one timeout, not one per round)."""

from __future__ import annotations

import time

import httpx
import pytest
from contract_kit import APP_ID, APP_SECRET, APP_VERSION
from nextcloud_ocs_fake import FakeAppApiNextcloud

from quart_app.nextcloud import NextcloudClient
from quart_app.nextcloud.readable_files import UnreadableFilesByDav
from quart_app.services.answer import DocSearchResult
from quart_app.services.errors import ReadabilityUnknownError

WAIT_S = 2.0


def _file(file_id: int) -> list[DocSearchResult]:
    return [{"source_id": f"files__default: {file_id}", "title": f"{file_id}.md"}]


async def test_a_round_whose_search_hangs_gets_what_the_earlier_rounds_left_of_the_wait() -> None:
    read_timeouts: list[float] = []
    # how long each SEARCH took on the wire: within the time the check counts as waited on Nextcloud
    on_the_wire_s: list[float] = []

    class Recording(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            read_timeouts.append(request.extensions["timeout"]["read"])
            started = time.monotonic()
            try:
                return await super().handle_async_request(request)
            finally:
                on_the_wire_s.append(time.monotonic() - started)

    with FakeAppApiNextcloud() as nextcloud:
        nc = NextcloudClient(
            nextcloud.url, app_id=APP_ID, app_version=APP_VERSION, app_secret=APP_SECRET, transport=Recording()
        )
        # one question's check, asked once per fill round
        check = UnreadableFilesByDav(nc, WAIT_S)
        try:
            assert await check("bert", _file(1)) == set()
            nextcloud.dav.stall()  # Nextcloud hangs from the second round on
            try:
                with pytest.raises(ReadabilityUnknownError) as second:
                    await check("bert", _file(2))
                with pytest.raises(ReadabilityUnknownError) as third:
                    await check("bert", _file(3))
            finally:
                nextcloud.dav.resume()
        finally:
            await nc.aclose()
    # the first round's SEARCH waited the whole setting; the second only what the first left (before: the whole
    # setting again, so a question of four rounds waited four times it); the third was never sent
    assert len(read_timeouts) == 2, read_timeouts
    assert read_timeouts[0] == WAIT_S and read_timeouts[1] <= WAIT_S - on_the_wire_s[0], (read_timeouts, on_the_wire_s)
    # the same message as when a question's single SEARCH times out
    expected = (
        "Nextcloud did not say whether the user can still read the 1 file(s) the answer would draw on (SEARCH"
        " /remote.php/dav/: Nextcloud did not answer within 2 s, the config's nextcloud.readable_check_timeout_s);"
        " nothing was answered from them: ask again once Nextcloud answers WebDAV requests"
    )
    assert str(second.value) == str(third.value) == expected

"""Push mode: one question's WebDAV SEARCHes, one per fill round, share the wait nextcloud.readable_check_timeout_s
(a Nextcloud that hangs costs a question one timeout, not one per round)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from contract_kit import (
    APP_ID,
    APP_SECRET,
    APP_VERSION,
    all_embedded,
    contract_config,
    make_settings,
    put_sources,
    running_app,
    signed_headers,
    status_when,
)
from nextcloud_ocs_fake import FakeAppApiNextcloud
from orchard_gate_notes import BERTS_LIST, gate_notes
from timeout_recording_transport import TimeoutRecordingTransport

from quart_app import create_app
from quart_app.nextcloud import NextcloudClient
from quart_app.nextcloud.readable_files import UnreadableFilesByDav
from quart_app.services.answer import DocSearchResult
from quart_app.services.errors import ReadabilityUnknownError

WAIT_S = 2.0


def _file(file_id: int) -> list[DocSearchResult]:
    return [{"source_id": f"files__default: {file_id}", "title": f"{file_id}.md"}]


async def test_a_round_whose_search_hangs_gets_what_the_earlier_rounds_left_of_the_wait() -> None:
    # each SEARCH's read timeout, and how long it took on the wire (within the time the check counts as waited)
    recording = TimeoutRecordingTransport()
    with FakeAppApiNextcloud() as nextcloud:
        nc = NextcloudClient(
            nextcloud.url, app_id=APP_ID, app_version=APP_VERSION, app_secret=APP_SECRET, transport=recording
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
    read_timeouts, on_the_wire_s = recording.read_timeouts, recording.on_the_wire_s
    assert len(read_timeouts) == 2, read_timeouts
    assert read_timeouts[0] == WAIT_S and read_timeouts[1] <= WAIT_S - on_the_wire_s[0], (read_timeouts, on_the_wire_s)
    # the same message as when a question's single SEARCH times out
    expected = (
        "Nextcloud did not say whether the user can still read the 1 file(s) the answer would draw on (SEARCH"
        " /remote.php/dav/: Nextcloud did not answer within 2 s, the config's nextcloud.readable_check_timeout_s);"
        " nothing was answered from them: ask again once Nextcloud answers WebDAV requests"
    )
    assert str(second.value) == str(third.value) == expected


# notes anna shared with bert and then unshared (the PHP app told the backend nothing): they rank first
LOST_NOTES = gate_notes(6)


async def test_a_search_that_needs_a_second_round_ends_within_one_wait_when_nextcloud_hangs_after_the_first(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    # how long each SEARCH took: within the time the question counts as waited on Nextcloud
    took_s: list[float] = []
    dav = NextcloudClient.dav

    async def recorded(nc: NextcloudClient, *args: object, timeout_s: float | None = None, **kwargs: object) -> bytes:
        assert timeout_s is not None
        waits.append(timeout_s)
        started = time.monotonic()
        try:
            return await dav(nc, *args, timeout_s=timeout_s, **kwargs)  # type: ignore[arg-type]
        finally:
            took_s.append(time.monotonic() - started)

    monkeypatch.setattr(NextcloudClient, "dav", recorded)
    body = {"userId": "bert", "query": "orchard gate code", "ctxLimit": 1}
    config = contract_config(embedder_url, nextcloud={"readable_check_timeout_s": WAIT_S})
    with FakeAppApiNextcloud() as nextcloud:
        nextcloud.dav.revoke("bert", *(100 + n for n in range(len(LOST_NOTES))))
        answer: Callable[[str, bytes], tuple[int, bytes]] = nextcloud.dav.answer

        def answer_then_hang(user: str, search: bytes) -> tuple[int, bytes]:
            reply = answer(user, search)
            nextcloud.dav.stall()  # the first round is answered; Nextcloud hangs from the second on
            return reply

        monkeypatch.setattr(nextcloud.dav, "answer", answer_then_hang)
        app = create_app(make_settings(tmp_path / "storage", fresh_dsn, config, nextcloud.url))
        try:
            async with running_app(app) as test_app:
                http = test_app.test_client()
                await http.put("/enabled?enabled=1", headers=signed_headers())
                await put_sources(http, [*LOST_NOTES, BERTS_LIST])
                await status_when(http, all_embedded, "every chunk embedded")
                response = await http.post("/docSearch", json=body, headers=signed_headers("bert"))
                error = await response.get_json()
        finally:
            nextcloud.dav.resume()
    # round 1 (2 candidates, both lost) answered, round 2 given only what round 1 left (before: the whole wait again)
    assert nextcloud.dav.stalled.is_set() and len(waits) == 2, waits
    assert waits[0] == WAIT_S and waits[1] <= WAIT_S - took_s[0], (waits, took_s)
    assert response.status_code == 503, error
    assert re.fullmatch(
        r"Error: Nextcloud did not say whether the user can still read the \d file\(s\) the answer would draw on"
        r" \(SEARCH /remote\.php/dav/: Nextcloud did not answer within 2 s, the config's"
        r" nextcloud\.readable_check_timeout_s\); nothing was answered from them: ask again once Nextcloud answers"
        r" WebDAV requests",
        error["error"],
    ), error

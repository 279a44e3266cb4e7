"""Pull mode, a parse worker dying under a claimed file: killed from outside once, the file is parsed again and
acknowledged indexed (never acknowledged as done while lost); killing its worker on every attempt, it is acknowledged
as failed with the reason the parser crashed repeatedly, like any other file that cannot be parsed."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from async_wait import until
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import PullApp, acked

import quart_app.loaders
from quart_app.app_settings import AppSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "loaders"))

from faulty_loaders import FAULTY_LOADERS, AttemptGate

# three attempts (the shipped crash_retries) with a worker start after each death: seconds on a loaded machine
PARSES_S = 120.0
MIMETYPE = "text/markdown"


@pytest.fixture
async def crashing_app(
    monkeypatch: pytest.MonkeyPatch, pull_settings: AppSettings, nextcloud: FakePullNextcloud
) -> AsyncIterator[PullApp]:
    """The real app in pull mode; its parse workers read markdown with `test/attempt` (records each try at a file;
    the PHP app's queue only carries supported mimetypes)."""
    pool = functools.partial(quart_app.loaders.ParsePool, extra_loaders={MIMETYPE: FAULTY_LOADERS["test/attempt"]})
    monkeypatch.setattr(quart_app.loaders, "ParsePool", pool)
    async with PullApp(pull_settings, nextcloud) as running:
        await running.enable()
        yield running


async def _document(pull_app: PullApp, source_id: str) -> tuple[str, str | None]:
    async with pull_app.engine.db.connection() as conn:
        cursor = await conn.execute("SELECT state, error FROM documents WHERE source_id = %s", (source_id,))
        row = await cursor.fetchone()
    assert row is not None, f"no document row for {source_id}"
    return row[0], row[1]


async def test_a_file_whose_worker_is_killed_mid_parse_is_parsed_again_then_acknowledged(
    crashing_app: PullApp, nextcloud: FakePullNextcloud, parser_gates: Path
) -> None:
    gate = AttemptGate(parser_gates / "killed")
    text = "The wombat77x project budget is on track."
    file_id = nextcloud.add_file(["alice"], "files/killed.txt", gate.content("wait", text), mimetype=MIMETYPE)
    row = nextcloud.file_row_id(file_id)
    await until(lambda: len(gate.worker_pids()) == 1, PARSES_S, "the first parse to start")
    (killed,) = gate.worker_pids()
    os.kill(killed, signal.SIGKILL)  # as the host's out-of-memory killer or an administrator would
    await until(lambda: len(gate.worker_pids()) == 2, PARSES_S, "the file to be parsed again")
    assert row not in acked(nextcloud, "files")
    gate.release()
    await until(lambda: row in acked(nextcloud, "files"), PARSES_S, "the acknowledgement")
    assert await _document(crashing_app, f"files__default: {file_id}") == ("indexed", None)
    await crashing_app.drain_embeddings()
    assert (await crashing_app.search("alice", "wombat77x project budget"))[0] == f"files__default: {file_id}"


async def test_a_file_that_kills_its_worker_every_time_is_acknowledged_as_failed(
    crashing_app: PullApp, nextcloud: FakePullNextcloud, parser_gates: Path
) -> None:
    gate = AttemptGate(parser_gates / "doomed")
    file_id = nextcloud.add_file(["alice"], "files/doomed.txt", gate.content("sigkill", "never"), mimetype=MIMETYPE)
    row = nextcloud.file_row_id(file_id)
    await until(lambda: row in acked(nextcloud, "files"), PARSES_S, "the acknowledgement")
    assert len(gate.worker_pids()) == 3
    state, error = await _document(crashing_app, f"files__default: {file_id}")
    assert state == "failed"
    assert error is not None and error.startswith("ParserCrashedError: ")
    assert "the parser crashed repeatedly, on all 3 attempts (signal SIGKILL, signal SIGKILL, signal SIGKILL)" in error

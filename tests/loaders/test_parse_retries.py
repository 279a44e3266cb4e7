"""A file whose parse worker dies under it is parsed again in another worker when the pool did not kill that worker
itself: killed from outside (the host's out-of-memory killer, an administrator) or crashed. A worker the pool stopped
at the file's time or memory limit is reported as today, without a second try; a file that kills its worker on every
attempt ends as ParserCrashedError after `crash_retries` more tries."""

import asyncio
import os
import pwd
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from async_wait import until
from faulty_loaders import FAULTY_LOADERS, AttemptGate
from pool_kit import text_of

from quart_app.chunking import ChunkerSpec
from quart_app.loaders import ParseLimits, ParseMemoryError, ParsePool, ParserCrashedError, ParseTimeoutError

LIMITS = ParseLimits(timeout_s=3.0, memory_mb=256)
RETRIES = 2
TEXT = "parsed at last"


@pytest.fixture(scope="module")
async def pool(chunker_spec: ChunkerSpec, parser_user: pwd.struct_passwd | None) -> AsyncIterator[ParsePool]:
    # one pool for the module: every test also proves the pool keeps serving after its deaths
    async with ParsePool(
        2, LIMITS, chunker=chunker_spec, crash_retries=RETRIES, extra_loaders=FAULTY_LOADERS
    ) as parse_pool:
        yield parse_pool


class AttemptedFile:
    """A `test/attempt` file that does `action` on every try."""

    def __init__(self, gates: Path, tmp_path: Path, action: str) -> None:
        self.gate = AttemptGate(gates / action)
        self.path = tmp_path / f"{action}.attempt"
        self.path.write_bytes(self.gate.content(action, TEXT))

    def worker_pids(self) -> set[int]:
        pids: set[int] = self.gate.worker_pids()
        return pids

    async def parse(self, pool: ParsePool) -> str:
        text: str = text_of(await pool.parse_and_chunk(self.path, "test/attempt"))
        return text


async def _still_serves(pool: ParsePool, tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("still serving", encoding="utf-8")
    texts = await asyncio.gather(*(pool.parse_and_chunk(plain, "text/plain") for _ in range(2)))
    assert [text_of(chunks) for chunks in texts] == ["still serving", "still serving"]


async def test_a_worker_killed_from_outside_mid_parse_has_its_file_parsed_again(
    pool: ParsePool, parser_gates: Path, tmp_path: Path
) -> None:
    file = AttemptedFile(parser_gates, tmp_path, "wait")
    parse = asyncio.create_task(file.parse(pool))
    await until(lambda: len(file.worker_pids()) == 1, what="the first attempt to start")
    (killed,) = file.worker_pids()
    os.kill(killed, signal.SIGKILL)  # as the host's out-of-memory killer or an administrator would
    await until(lambda: len(file.worker_pids()) == 2, what="the file to be tried again")
    file.gate.release()
    assert await parse == TEXT
    assert killed in file.worker_pids()
    await _still_serves(pool, tmp_path)


@pytest.mark.parametrize(
    ("action", "deaths", "why"),
    [
        (
            "sigkill",
            "signal SIGKILL, signal SIGKILL, signal SIGKILL",
            "something outside the app killed it each time (an administrator, or the system when short of memory)",
        ),
        (
            "segfault",
            "signal SIGSEGV, signal SIGSEGV, signal SIGSEGV",
            "the file is probably damaged: check or re-save it",
        ),
    ],
)
async def test_a_file_that_kills_its_worker_every_time_fails_after_the_retries(
    pool: ParsePool, parser_gates: Path, tmp_path: Path, action: str, deaths: str, why: str
) -> None:
    file = AttemptedFile(parser_gates, tmp_path, action)
    with pytest.raises(ParserCrashedError) as failure:
        await file.parse(pool)
    assert str(failure.value) == (
        f"{action}.attempt (test/attempt): the parser crashed repeatedly, on all {RETRIES + 1} attempts ({deaths}); "
        + why
    )
    assert len(file.worker_pids()) == RETRIES + 1, "each attempt in a worker of its own"
    await _still_serves(pool, tmp_path)


@pytest.mark.parametrize(("action", "error"), [("eat-memory", ParseMemoryError), ("hang", ParseTimeoutError)])
async def test_a_worker_stopped_at_the_files_own_limit_is_not_tried_again(
    pool: ParsePool, parser_gates: Path, tmp_path: Path, action: str, error: type[Exception]
) -> None:
    file = AttemptedFile(parser_gates, tmp_path, action)
    with pytest.raises(error):
        await file.parse(pool)
    assert len(file.worker_pids()) == 1
    await _still_serves(pool, tmp_path)


async def test_without_retries_the_first_death_fails_the_file(
    chunker_spec: ChunkerSpec, parser_gates: Path, tmp_path: Path
) -> None:
    file = AttemptedFile(parser_gates, tmp_path, "sigkill")
    async with ParsePool(1, LIMITS, chunker=chunker_spec, crash_retries=0, extra_loaders=FAULTY_LOADERS) as pool:
        with pytest.raises(ParserCrashedError, match=r"on all 1 attempts \(signal SIGKILL\)"):
            await file.parse(pool)
    assert len(file.worker_pids()) == 1


def test_crash_retries_cannot_be_negative(chunker_spec: ChunkerSpec) -> None:
    with pytest.raises(ValueError, match="crash_retries must be >= 0, got -1"):
        ParsePool(1, chunker=chunker_spec, crash_retries=-1)

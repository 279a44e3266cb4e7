"""The parse pool: real files parsed and chunked in worker processes; hangs, memory blow-ups and crashes cost only
their own file."""

import asyncio
import pwd
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from faulty_loaders import FAULTY_LOADERS
from loader_fixture_files import FIXTURES, write_pdf
from pool_kit import text_of
from secret_documents import xlsx_with_text_in_a_number_cell

from quart_app.chunking import ChunkerSpec
from quart_app.loaders import (
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    ParseLimits,
    ParseMemoryError,
    ParsePool,
    ParsePoolClosedError,
    ParserCrashedError,
    ParseTimeoutError,
)

LIMITS = ParseLimits(timeout_s=3.0, memory_mb=256)


@pytest.fixture(scope="module")
async def pool(chunker_spec: ChunkerSpec, parser_user: pwd.struct_passwd | None) -> AsyncIterator[ParsePool]:
    # one pool for the module on purpose: every fault test also proves the pool keeps serving afterwards; as root
    # its workers run as the parser user, as in the appliance
    async with ParsePool(2, LIMITS, chunker=chunker_spec, extra_loaders=FAULTY_LOADERS) as parse_pool:
        yield parse_pool


@pytest.fixture
def probe_file(tmp_path: Path) -> Path:
    path = tmp_path / "probe"
    path.write_text("x", encoding="utf-8")
    return path


@pytest.fixture
def active() -> Iterator[Path]:
    """Where the concurrency probe marks running parses: writable by the workers, whatever user they run as."""
    with tempfile.TemporaryDirectory(prefix="parse-probe-") as name:
        Path(name).chmod(0o1777)
        yield Path(name)


async def _text(pool: ParsePool, path: Path, mimetype: str) -> str:
    text: str = text_of(await pool.parse_and_chunk(path, mimetype))
    return text


async def _pid(pool: ParsePool, path: Path) -> str:
    return await _text(pool, path, "test/pid")


async def test_parses_every_fixture_in_workers(pool: ParsePool, tmp_path: Path) -> None:
    files = {mimetype: writer(tmp_path) for mimetype, (writer, _, _) in FIXTURES.items()}
    texts = await asyncio.gather(*(_text(pool, path, mimetype) for mimetype, path in files.items()))
    for mimetype, text in zip(files, texts, strict=True):
        assert FIXTURES[mimetype][1][0] in text


async def test_per_file_loader_errors_pass_through(pool: ParsePool, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    results = await asyncio.gather(
        _text(pool, write_pdf(tmp_path, "locked", password="pw"), "application/pdf"),
        _text(pool, empty, "text/plain"),
        _text(pool, write_pdf(tmp_path), "application/pdf"),
        return_exceptions=True,
    )
    assert isinstance(results[0], EncryptedDocumentError)
    assert isinstance(results[1], EmptyDocumentError)
    assert results[2] == "Invoice number 4711\n\nTotal amount due"


async def test_glyphs_the_tokenizer_drops_do_not_fail_the_document(pool: ParsePool, tmp_path: Path) -> None:
    # a run of private-use glyphs (a PDF symbol font) made a 0-token chunk: the file failed as "the parser misbehaved"
    # and its words were never indexed
    path = tmp_path / "glyphs.txt"
    path.write_text("Hello world.\n\n" + "\ue000 " * 3000 + "\n\nend words here", encoding="utf-8")
    text = await _text(pool, path, "text/plain")
    assert text.startswith("Hello world.") and text.endswith("end words here")
    only_glyphs = tmp_path / "only-glyphs.txt"
    only_glyphs.write_text("\ue000\ue001 \ue002", encoding="utf-8")
    assert await pool.parse_and_chunk(only_glyphs, "text/plain") == []


async def test_timeout_kills_only_that_worker(pool: ParsePool, probe_file: Path) -> None:
    before = {await _pid(pool, probe_file) for _ in range(4)}
    hang = asyncio.create_task(_text(pool, probe_file, "test/hang"))
    # the other worker keeps serving while one hangs
    assert (await _text(pool, probe_file, "text/plain")) == "x"
    with pytest.raises(ParseTimeoutError) as info:
        await hang
    assert str(info.value) == (
        "probe (test/hang): parsing took longer than timeout_s=3s and was stopped; "
        "raise the parse timeout if such files are expected"
    )
    after = {await _pid(pool, probe_file) for _ in range(4)}
    assert len(after) == 2 and len(after & before) == 1


async def test_memory_cap_gives_parse_memory_error(pool: ParsePool, probe_file: Path) -> None:
    with pytest.raises(
        ParseMemoryError, match=r"^probe \(test/eat-memory\): parsing needed more than memory_mb=256 MB"
    ):
        await _text(pool, probe_file, "test/eat-memory")
    assert (await _text(pool, probe_file, "text/plain")) == "x"


@pytest.mark.parametrize(("mimetype", "how"), [("test/segfault", "signal SIGSEGV"), ("test/exit", "exit code 3")])
async def test_crashing_worker_is_replaced(pool: ParsePool, probe_file: Path, mimetype: str, how: str) -> None:
    results = await asyncio.gather(
        _text(pool, probe_file, mimetype), _text(pool, probe_file, "text/plain"), return_exceptions=True
    )
    assert isinstance(results[0], ParserCrashedError)
    # tried again twice (the default crash_retries), each time in a fresh worker
    assert str(results[0]) == (
        f"probe ({mimetype}): the parser crashed repeatedly, on all 3 attempts ({how}, {how}, {how}); "
        "the file is probably damaged: check or re-save it"
    )
    assert results[1] == "x"
    assert {await _pid(pool, probe_file) for _ in range(4)}.__len__() == 2


async def test_at_most_workers_files_parse_at_once(pool: ParsePool, tmp_path: Path, active: Path) -> None:
    path = tmp_path / "probe"
    path.write_text(str(active), encoding="utf-8")
    seen = await asyncio.gather(*(_text(pool, path, "test/concurrency") for _ in range(6)))
    assert max(int(n) for n in seen) <= 2


async def test_cancelled_caller_does_not_lose_the_worker(pool: ParsePool, tmp_path: Path, active: Path) -> None:
    path = tmp_path / "probe"
    path.write_text(str(active), encoding="utf-8")
    task = asyncio.create_task(_text(pool, path, "test/concurrency"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # both slots come back: two more parses run side by side and then the pool is still usable
    results = await asyncio.gather(*(_text(pool, path, "test/concurrency") for _ in range(3)))
    assert all(1 <= int(n) <= 2 for n in results)


async def test_closed_and_unopened_pool_refuse_work(probe_file: Path, chunker_spec: ChunkerSpec) -> None:
    pool = ParsePool(1, LIMITS, chunker=chunker_spec)
    with pytest.raises(ParsePoolClosedError, match=re.escape("not open; use 'async with' or await open()")):
        await _text(pool, probe_file, "text/plain")
    async with pool:
        assert await _text(pool, probe_file, "text/plain") == "x"
    await pool.close()  # idempotent
    with pytest.raises(ParsePoolClosedError, match=r"^the parse pool is closed$"):
        await _text(pool, probe_file, "text/plain")
    with pytest.raises(ParsePoolClosedError, match="create a new ParsePool instead of reopening it"):
        await pool.open()


async def test_waiters_are_released_on_close(probe_file: Path, chunker_spec: ChunkerSpec) -> None:
    pool = ParsePool(1, LIMITS, chunker=chunker_spec, extra_loaders=FAULTY_LOADERS)
    await pool.open()
    running = asyncio.create_task(_text(pool, probe_file, "test/pid"))
    waiting = asyncio.create_task(_text(pool, probe_file, "test/pid"))
    await asyncio.sleep(0)
    await pool.close()
    assert (await running).startswith("pid ")
    with pytest.raises(ParsePoolClosedError):
        await waiting


def test_invalid_settings(chunker_spec: ChunkerSpec) -> None:
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        ParsePool(0, chunker=chunker_spec)
    with pytest.raises(ValueError, match="max_jobs_per_worker must be >= 1, got 0"):
        ParsePool(1, chunker=chunker_spec, max_jobs_per_worker=0)
    with pytest.raises(ValueError, match=r"ParseLimits.timeout_s must be > 0, got 0"):
        ParseLimits(timeout_s=0)


async def test_close_kills_parses_that_outlive_the_timeout(probe_file: Path, chunker_spec: ChunkerSpec) -> None:
    pool = ParsePool(1, LIMITS, chunker=chunker_spec, extra_loaders=FAULTY_LOADERS)
    await pool.open()
    hang = asyncio.create_task(_text(pool, probe_file, "test/hang"))
    await asyncio.sleep(0.2)
    await pool.close(timeout_s=0.2)
    with pytest.raises(
        ParsePoolClosedError, match=r"closed while probe \(test/hang\) was parsing; parse it again later"
    ):
        await hang


async def test_a_close_cut_off_by_the_stop_deadline_leaves_no_worker(
    probe_file: Path, chunker_spec: ChunkerSpec
) -> None:
    # a parse timeout far beyond the test: only the cut-off close can end the hanging worker
    pool = ParsePool(1, ParseLimits(timeout_s=600.0, memory_mb=256), chunker=chunker_spec, extra_loaders=FAULTY_LOADERS)
    await pool.open()
    worker = pool._slots[0].process  # white box: how the worker ended
    assert worker is not None
    hang = asyncio.create_task(_text(pool, probe_file, "test/hang"))
    closing = asyncio.create_task(pool.close(timeout_s=600.0))
    await asyncio.sleep(0.2)
    closing.cancel()  # as the app's stop deadline abandons a closer
    with pytest.raises(asyncio.CancelledError):
        await closing
    # before: the worker went on parsing, outliving the app and holding its output pipe
    assert worker.exit_code() == -signal.SIGKILL
    with pytest.raises(ParsePoolClosedError):
        await hang


async def test_a_worker_started_while_the_pool_closes_parses_nothing(
    probe_file: Path, chunker_spec: ChunkerSpec
) -> None:
    pool = ParsePool(1, LIMITS, chunker=chunker_spec, extra_loaders=FAULTY_LOADERS)
    await pool.open()
    worker = pool._slots[0]  # white box: a dead worker, and a replacement that starts slowly
    assert worker.process is not None
    worker.process.kill()  # waited for: the next file finds it dead and starts another
    starting = threading.Event()
    runner = pool._runner
    assert runner is not None
    start = runner.start

    def slow_start(slot: Any) -> None:
        starting.set()
        time.sleep(0.5)
        start(slot)

    runner.start = slow_start  # type: ignore[method-assign,assignment]
    hang = asyncio.create_task(_text(pool, probe_file, "test/hang"))
    await asyncio.to_thread(starting.wait, 10)
    # the outcome, not the time, tells the fix: before it the new worker parsed the file until its 3 s timeout
    await asyncio.wait_for(pool.close(timeout_s=0.1), 60)
    with pytest.raises(ParsePoolClosedError, match=r"closed while probe \(test/hang\) waited for its worker"):
        await hang


async def test_workers_are_recycled_after_max_jobs(probe_file: Path, chunker_spec: ChunkerSpec) -> None:
    async with ParsePool(1, LIMITS, chunker=chunker_spec, extra_loaders=FAULTY_LOADERS, max_jobs_per_worker=2) as pool:
        pids = [(await _pid(pool, probe_file)).split()[1] for _ in range(5)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_importing_the_package_does_not_load_parser_libraries() -> None:
    # the app imports quart_app.loaders for ParsePool; the heavy parsers belong in the workers only
    code = (
        "import sys, quart_app.loaders\n"
        "print(sorted(m for m in ('pypdf', 'openpyxl', 'docx', 'pptx', 'extract_msg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_real_parse_over_the_memory_cap(tmp_path: Path, chunker_spec: ChunkerSpec) -> None:
    # a real loader reading a 176 MB text file (bytes, then text) cannot fit in 129 MB of headroom
    path = tmp_path / "large"
    path.write_bytes(b"all work and no play makes jack a dull boy\n" * 4_000_000)
    async with ParsePool(1, ParseLimits(memory_mb=129, max_file_mb=256), chunker=chunker_spec) as small:
        with pytest.raises(ParseMemoryError, match=r"^large \(text/plain\): parsing needed more than memory_mb=129 MB"):
            await small.parse_and_chunk(path, "text/plain")
        path.write_text("small again", encoding="utf-8")
        assert await _text(small, path, "text/plain") == "small again"


async def test_worst_case_text_at_the_limit_is_chunked_within_the_workers_memory_cap(
    tmp_path: Path, chunker_spec: ChunkerSpec
) -> None:
    # one token and 4 bytes per character, the text the limit is sized for: 12 MB above the base hold 524,288
    limits = ParseLimits(timeout_s=300, memory_mb=140)
    text = "\U0001f600," * (limits.max_text_chars // 2)
    assert len(text) == limits.max_text_chars == 524_288
    path = tmp_path / "dense"
    path.write_text(text, encoding="utf-8")
    async with ParsePool(1, limits, chunker=chunker_spec) as pool:
        chunks = await pool.parse_and_chunk(path, "text/plain")
        assert text_of(chunks) == text
        assert max(chunk.token_count for chunk in chunks) <= chunker_spec.chunk_tokens
        path.write_text(text + "\U0001f600", encoding="utf-8")
        with pytest.raises(DocumentTooLargeError, match=r"^dense \(text/plain\): the text is longer than 524,288 "):
            await pool.parse_and_chunk(path, "text/plain")


async def test_missing_file_is_an_os_error_not_a_document_error(pool: ParsePool, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await _text(pool, tmp_path / "gone", "text/plain")


async def test_a_parser_librarys_message_never_carries_the_documents_text(pool: ParsePool, tmp_path: Path) -> None:
    # the error goes to the logs, /status and the PHP app; openpyxl's ValueError quoted the cell
    secret = "Alice salary 98000 confidential"
    path = xlsx_with_text_in_a_number_cell(tmp_path / "numbers.xlsx", secret)
    with pytest.raises(CorruptDocumentError) as excinfo:
        await pool.parse_and_chunk(path, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "98000" not in str(excinfo.value)
    assert "could not be parsed (ValueError)" in str(excinfo.value)


async def test_an_error_raised_outside_the_loaders_is_stored_by_its_class_not_its_text(
    pool: ParsePool, tmp_path: Path
) -> None:
    # a document's error goes to the logs, /status and the PHP app; the worker's message quoted the document
    secret = "Bob's severance is 120000 and nobody may know."
    path = tmp_path / "memo.txt"
    path.write_text(secret, encoding="utf-8")
    with pytest.raises(CorruptDocumentError) as excinfo:
        await pool.parse_and_chunk(path, "test/quoting-failure", "memo.txt")
    assert str(excinfo.value) == (
        "memo.txt (test/quoting-failure): parsing failed with ValueError outside the file's loader (its message is"
        " withheld: it may quote the file); check the file, and report a bug if it opens fine elsewhere"
    )
    # the worker's normalize_text is itself again: the pool keeps serving
    assert await _text(pool, path, "text/plain") == secret

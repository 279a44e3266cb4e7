"""PUT /loadSources as the PHP app sends it, on the real engine: shapes, exact error strings, limits, retries."""

from __future__ import annotations

import logging
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from contract_kit import SourcePart, capture_app_logs, guzzle_multipart, signed_headers
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_app.app_settings import AppSettings
from quart_app.engine import ENGINE_EXTENSION
from quart_app.services.ingest import IncomingSource
from quart_app.source_fields import NUL_PROBLEM

HEADERS_1 = "Invaild/missing headers for: files__default: 1"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT = b"The Ethical AI Rating gives a green label when the model, its data and the code are all open."


async def load(client: Client, parts: list[SourcePart]) -> tuple[int, Any, dict[str, str]]:
    body, content_type = guzzle_multipart(parts)
    headers = {**signed_headers(), "Content-Type": content_type}
    response = await client.put("/loadSources", data=body, headers=headers)
    return response.status_code, await response.get_json(), dict(response.headers)


async def search_titles(client: Client, user: str, query: str) -> dict[str, str]:
    body = {"userId": user, "query": query}
    response = await client.post("/docSearch", json=body, headers=signed_headers(user))
    assert response.status_code == 200
    return {hit["source_id"]: hit["title"] for hit in await response.get_json()}


async def test_loaded_sources_and_non_ascii_titles(client: Client) -> None:
    title = "Überblick \u2013 Notizen 日本.md"
    status, body, _ = await load(
        client,
        [
            SourcePart("files__default: 555", TEXT, user_ids=["alice", "bob"], title=title),
            SourcePart("files__default: 556", b"Green labels need open training data.", title=""),
        ],
    )
    assert status == 200
    assert sorted(body["loaded_sources"]) == ["files__default: 555", "files__default: 556"]
    assert body["sources_to_retry"] == []
    assert (await search_titles(client, "bob", "ethical rating green label"))["files__default: 555"] == title
    # sending it again (unchanged) is still "loaded", nothing re-indexed; its userIds are now the only readers (the
    # PHP app sends everyone who can read the file: one moved out of a shared folder loses the folder's members)
    status, body, _ = await load(client, [SourcePart("files__default: 555", TEXT, user_ids=["carol"], title=title)])
    assert status == 200 and body["loaded_sources"] == ["files__default: 555"]
    assert "files__default: 555" in await search_titles(client, "carol", "ethical rating")
    assert "files__default: 555" not in await search_titles(client, "bob", "ethical rating")


async def test_a_content_providers_item_is_indexed_whatever_document_type_it_names(client: Client) -> None:
    # context_chat 5.3's SubmitContentJob sends a ContentItem's documentType ("a natural language term ... e.g.
    # E-Mail or Bookmark") as the part's type: no loader knew it, so no app's content was ever indexed
    mail = b"Invoice 4711 from the harbour crane company is due on the first of March."
    parts = [
        SourcePart(
            "mail__messages: 12",
            mail,
            user_ids=["alice"],
            title="Crane invoice",
            mimetype="E-Mail",
            provider="mail__messages",
        ),
        SourcePart(
            "bookmarks__bookmarks: 3",
            TEXT,
            user_ids=["alice"],
            title="AI rating",
            mimetype="Bookmark",
            provider="bookmarks__bookmarks",
        ),
    ]
    status, body, _ = await load(client, parts)
    assert (status, body) == (
        200,
        {"loaded_sources": ["mail__messages: 12", "bookmarks__bookmarks: 3"], "sources_to_retry": []},
    )
    assert (await search_titles(client, "alice", "harbour crane invoice"))["mail__messages: 12"] == "Crane invoice"
    assert "bookmarks__bookmarks: 3" in await search_titles(client, "alice", "ethical rating green label")
    # a file keeps its mimetype: one no loader reads is not indexed as text
    status, body, _ = await load(client, [SourcePart("files__default: 13", mail, mimetype="E-Mail")])
    assert (status, body) == (200, {"loaded_sources": [], "sources_to_retry": []})


async def test_beta_parts_with_a_single_user_id(client: Client) -> None:
    status, body, _ = await load(client, [SourcePart("files__default: 9", TEXT, user_ids=None, beta_user_id="dora")])
    # beta4's answer, which the beta PHP app expects
    assert (status, body) == (200, {"message": "All sources loaded"})
    assert "files__default: 9" in await search_titles(client, "dora", "ethical rating")
    # the beta app loads a file once per reader: the next reader's load adds, it does not replace
    status, _, _ = await load(client, [SourcePart("files__default: 9", TEXT, user_ids=None, beta_user_id="emil")])
    assert status == 200
    assert "files__default: 9" in await search_titles(client, "emil", "ethical rating")
    assert "files__default: 9" in await search_titles(client, "dora", "ethical rating")


async def test_refused_parts_are_dropped_and_logged_with_upstreams_strings(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # a batch of nothing but refused parts answered 400, which PHP 5.3 reads as "not done": SubmitContentJob kept the
    # batch at the head of its queue and IndexerJob re-queued it, both for good; refused parts leave both lists
    # random hex does not compress: past btree's 2,704 bytes it does not fit PostgreSQL's index
    long_user = secrets.token_hex(1500)
    cases = [
        (SourcePart("files__default: 1", TEXT, user_ids=None), "Invaild/missing headers for: files__default: 1"),
        (SourcePart("files__default: 1", TEXT, title=None), "Invaild/missing headers for: files__default: 1"),
        (SourcePart("files__default: 1", TEXT, mimetype=""), "Invaild/missing headers for: files__default: 1"),
        (SourcePart("files__default: 1", TEXT, provider=None), "Invaild/missing headers for: files__default: 1"),
        (SourcePart("files__default: 1", TEXT, modified="yesterday"), "Invaild/missing headers for: files__default: 1"),
        # '²'.isdigit() is True but int('²') fails: it used to fail the whole batch
        (SourcePart("files__default: 1", TEXT, modified="²"), "Invaild/missing headers for: files__default: 1"),
        (SourcePart("files__default: 1", TEXT, user_ids=[" "]), "Invaild/missing headers for: files__default: 1"),
        # a NUL (PostgreSQL text cannot hold it) or a modified beyond bigint was retried forever
        (SourcePart("files__default: 1", TEXT, user_ids=["a\x00"]), f"{HEADERS_1}: userIds 'a\\x00' {NUL_PROBLEM}"),
        (SourcePart("files__default: 1", TEXT, mimetype="text/\x00"), f"{HEADERS_1}: type 'text/\\x00' {NUL_PROBLEM}"),
        (SourcePart("files__default: 1", TEXT, provider="x\x00y"), f"{HEADERS_1}: provider 'x\\x00y' {NUL_PROBLEM}"),
        # too long for PostgreSQL's index: it failed in the database and the PHP app retried it
        (
            SourcePart("files__default: 1", TEXT, user_ids=["alice", long_user]),
            f"{HEADERS_1}: userIds {long_user[:40]!r}… is 3000 characters long; the limit is 255",
        ),
        (
            SourcePart("files__default: 1", TEXT, provider="files__" + "d" * 600),
            f"{HEADERS_1}: provider 'files__{'d' * 33}'… is 607 characters long; the limit is 512",
        ),
        (
            SourcePart("files__default: " + "7" * 600, TEXT, title="c.txt"),
            "Invalid source filename for: c.txt: the source id is 616 characters long; the limit is 512",
        ),
        (SourcePart("files__default: 1", TEXT, modified=2**63), "Invaild/missing headers for: files__default: 1"),
        (SourcePart("files__default: 1", TEXT, modified="9" * 5000), "Invaild/missing headers for: files__default: 1"),
        (SourcePart("", TEXT, title="a.txt"), "Invalid source filename for: a.txt"),
        (SourcePart("no-provider-prefix", TEXT, title="b.txt"), "Invalid source filename for: b.txt"),
    ]
    caplog.set_level(logging.WARNING, logger="quart_app.routes.ingest")
    for part, message in cases:
        caplog.clear()
        status, body, _ = await load(client, [part])
        assert (status, body) == (200, {"loaded_sources": [], "sources_to_retry": []}), part
        assert f"loadSources: source {part.source_id!r} refused (400): {message}" in caplog.messages, part
    response = await client.post("/countIndexedDocuments", headers=signed_headers())
    assert await response.get_json() == {"files__default": 0}


async def test_long_part_headers_do_not_fail_the_batch(client: Client) -> None:
    # a file shared with 2000 users: python-multipart's default 4 KiB header line answered the whole batch 400
    users = [f"user{n}" for n in range(2000)]
    parts = [
        SourcePart("files__default: 2", TEXT, user_ids=users, title="Documents/" + "deep/" * 2000 + "a.txt"),
        SourcePart("files__default: 3", TEXT),
    ]
    status, body, _ = await load(client, parts)
    assert (status, body) == (
        200,
        {"loaded_sources": ["files__default: 2", "files__default: 3"], "sources_to_retry": []},
    )
    assert "files__default: 2" in await search_titles(client, "user1999", "ethical rating green label")


async def test_no_sources_and_not_multipart(client: Client) -> None:
    boundary = "b" * 40
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--{boundary}--\r\n'.encode()
    headers = {**signed_headers(), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = await client.put("/loadSources", data=body, headers=headers)
    assert (response.status_code, await response.get_json()) == (400, {"error": "No sources provided"})
    response = await client.put("/loadSources", json={"sources": []}, headers=signed_headers())
    assert response.status_code == 422
    assert (await response.get_json())["detail"][0]["loc"] == ["body", "sources"]


async def test_one_bad_part_does_not_fail_the_others(client: Client) -> None:
    status, body, _ = await load(
        client,
        [
            SourcePart("files__default: 20", TEXT, user_ids=None),  # invalid headers
            SourcePart("files__default: 21", b"z" * (3 * 2**20)),  # over ingest.max_part_mb = 2
            SourcePart("files__default: 22", b"%PDF-1.4 this is no pdf", mimetype="application/pdf"),  # loader fails
            SourcePart("files__default: 23", TEXT),
        ],
    )
    # upstream drops a source the loader cannot read from both lists; /status keeps its error
    assert (status, body) == (200, {"loaded_sources": ["files__default: 23"], "sources_to_retry": []})


async def test_a_damaged_file_is_named_by_its_document_not_by_its_spool_file(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged PDF or DOCX failed with "src-k2j4.part (application/pdf): ..." in the log, in /status and in
    `ccb index`: the spool's temp file, which names nothing an admin can find. The error names the source (its file
    id) with its title, and neither it nor the log quotes the document's text."""
    caplog.set_level(logging.INFO)
    marker = b"wombat" + secrets.token_hex(4).encode()
    damaged = {
        "files__default: 24": (b"%PDF-1.4 " + marker + b" no pdf objects follow", "application/pdf"),
        "files__default: 25": (b"PK\x03\x04" + marker + b" a cut zip", DOCX),
    }
    parts = [SourcePart(sid, content, mimetype=mimetype) for sid, (content, mimetype) in damaged.items()]
    status, body, _ = await load(client, parts)
    assert (status, body) == (200, {"loaded_sources": [], "sources_to_retry": []})
    response = await client.get("/status", headers=signed_headers())
    errors = {row["source_id"]: row["error"] for row in (await response.get_json())["documents"]["failed_sources"]}
    assert errors["files__default: 24"].startswith(
        "CorruptDocumentError: 'Documents/notes.txt' (source 'files__default: 24'): declared as 'application/pdf' but"
        " pypdf cannot read it"
    ), errors
    assert errors["files__default: 25"].startswith(
        f"CorruptDocumentError: 'Documents/notes.txt' (source 'files__default: 25'): declared as '{DOCX}' but it is"
        " not a readable zip"
    ), errors
    logged = "\n".join(caplog.messages)
    assert "source 'files__default: 24'" in logged and "source 'files__default: 25'" in logged
    for text in (*errors.values(), logged):
        assert "src-" not in text and ".part" not in text and marker.decode() not in text


async def test_a_part_the_loader_cannot_read_is_logged_once(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    # the route logged the ingest service's warning a second time (seen on a real Nextcloud 34 with PHP app 5.3.1)
    logs = capture_app_logs(caplog)
    broken = SourcePart(
        "files__default: 24", b"not a pdf", title="files/Berichte/kaputt.pdf", mimetype="application/pdf"
    )
    status, body, _ = await load(client, [broken, SourcePart("files__default: 25", TEXT)])
    assert (status, body) == (200, {"loaded_sources": ["files__default: 25"], "sources_to_retry": []})
    [line] = [line for line in logs().splitlines() if "files__default: 24" in line]
    assert (
        "failed: CorruptDocumentError: 'files/Berichte/kaputt.pdf' (source 'files__default: 24'): declared as"
        " 'application/pdf'" in line
    )


async def test_size_limits(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="quart_app.routes.ingest")
    status, body, _ = await load(client, [SourcePart("files__default: 30", b"z" * (3 * 2**20))])
    # a file over the per-file limit is refused for good, as in a mixed batch; a 413 kept it in the PHP app's queue
    assert (status, body) == (200, {"loaded_sources": [], "sources_to_retry": []})
    refused = "loadSources: source 'files__default: 30' refused (413): File files__default: 30 is larger than the "
    assert any(message.startswith(refused + "per-file limit of 2 MiB") for message in caplog.messages)
    parts = [SourcePart(f"files__default: {40 + i}", b"y" * (2**20)) for i in range(9)]  # > max_request_mb = 8
    status, body, _ = await load(client, parts)
    assert status == 413 and "larger than the limit of 8 MiB (ingest.max_request_mb)" in body["error"]


async def test_more_parts_than_the_limit_answer_413_and_index_nothing(app: Quart, client: Client) -> None:
    status, body, _ = await load(client, [SourcePart(f"files__default: {80 + i}", TEXT) for i in range(21)])
    assert (status, body) == (
        413,
        {
            "error": "The request has more than 20 parts (ingest.max_parts); send at most 20 files per request, "
            "or raise the limit in config.yaml"
        },
    )
    assert list(app.extensions["ccb_lifecycle"].settings.storage.spool_dir.iterdir()) == []
    response = await client.post("/countIndexedDocuments", headers=signed_headers())
    assert await response.get_json() == {"files__default": 0}


async def test_a_source_in_flight_answers_503_with_cc_retry(app: Quart, client: Client) -> None:
    order = app.extensions[ENGINE_EXTENSION].order
    held = IncomingSource("files__default: 50", ["admin"], "t", "text/plain", 1, "files__default", Path("-"), 0)
    async with order.arrival() as arrival, order.claim([held], arrival):
        status, body, headers = await load(client, [SourcePart("files__default: 50", TEXT)])
    assert status == 503 and headers["cc-retry"] == "true"
    assert "files__default: 50" in body["error"] and "already being processed" in body["error"]
    status, body, _ = await load(client, [SourcePart("files__default: 50", TEXT)])
    assert status == 200 and body["loaded_sources"] == ["files__default: 50"]


async def test_spool_files_are_removed_after_the_request(app: Quart, client: Client) -> None:
    await load(client, [SourcePart("files__default: 60", TEXT), SourcePart("files__default: 61", b"z" * (3 * 2**20))])
    spool = app.extensions["ccb_lifecycle"].settings.storage.spool_dir
    assert list(spool.iterdir()) == []


async def test_parser_worker_limit_answers_503_with_cc_retry(
    app: Quart, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quart_app.routes import ingest

    assert ingest.GATE_WAIT_S == 600.0  # upstream's 10 minutes; shrunk below so the test does not wait
    monkeypatch.setattr(ingest, "GATE_WAIT_S", 0.05)
    await load(client, [SourcePart("files__default: 70", TEXT)])
    gate = app.extensions[ingest.GATE_EXTENSION]
    held = 0
    while not gate.locked():
        await gate.acquire()
        held += 1
    try:
        status, body, headers = await load(client, [SourcePart("files__default: 71", TEXT)])
        # a declared size over the limit is refused at once, without waiting for the slot
        big, content_type = guzzle_multipart([SourcePart("files__default: 72", b"y" * (9 * 2**20))])
        declared = {**signed_headers(), "Content-Type": content_type, "Content-Length": str(len(big))}
        too_large = (await client.put("/loadSources", data=big, headers=declared)).status_code
    finally:
        for _ in range(held):
            gate.release()
    assert (status, body) == (503, {"error": ingest.WORKER_LIMIT}) and headers["cc-retry"] == "true"
    assert too_large == 413
    status, body, _ = await load(client, [SourcePart("files__default: 71", TEXT)])
    assert status == 200 and body["loaded_sources"] == ["files__default: 71"]


@contextmanager
def mounted_tmpfs(path: Path, options: str) -> Iterator[None]:
    """A small tmpfs with `options` mounted over `path` for the block (the test is skipped where mount is refused)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.parametrize(
    ("mount_options", "reason"),
    [
        ("size=64k", "[Errno 28] No space left on device; check free disk space"),
        ("ro,size=64k", "Read-only file system; check free disk space and that the directory is writable"),
    ],
    ids=["full", "read-only"],
)
async def test_a_full_or_read_only_spool_disk_is_a_503_with_cc_retry_that_names_it(
    client: Client, settings: AppSettings, caplog: pytest.LogCaptureFixture, mount_options: str, reason: str
) -> None:
    """Disk trouble under the upload spool was an 'Internal error' 500 with a traceback per batch, and PHP <= 5.2
    drops a batch answered 500 from its queue: the batch must come back (cc-retry) and the log say why in one line."""
    spool = settings.storage.spool_dir
    with caplog.at_level(logging.INFO), mounted_tmpfs(spool, mount_options):
        status, body, headers = await load(client, [SourcePart("files__default: 80", TEXT * 2000)])
    assert (status, headers.get("cc-retry")) == (503, "true"), body
    assert body["error"] == f"Error: could not spool file 'files__default: 80' to {spool}: {reason}"
    assert not [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]

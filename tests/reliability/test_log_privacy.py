"""Every log the appliance writes is JSON lines that follow a request by its id and never hold the app secret, a
document's text or a user's question: ingest, query, refused requests, a parse failure and a 4xx that echoes its
input are driven through the whole appliance, then every file under logs/ (as /downloadLogs ships them, and on disk
after the stop) and supervisord's terminal output are read. The logs rotate at the configured size and keep the
configured number of files."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from appliance_stack import ApplianceStack, shipped_config
from contract_kit import APP_SECRET, SourcePart, guzzle_multipart, signed_headers
from local_ports import free_port
from secret_documents import XML_WITH_SECRET_ENTITY, msg_with_broken_rtf_body, quoted_secret

pytestmark = pytest.mark.slow

# words no log line has any reason to contain: they are only in the documents and the questions
DOCUMENT_WORDS = ("quokkamarmalade", "zebrafjordling")
BROKEN_PDF_WORD = "pdfgrumbleweed"
QUESTION_WORDS = ("xylophonicus", "tundrabiscuit")
ECHOED_WORD = "echowobbegong"
QUERY_ID = "ncQuery0123456789abcd"
PROGRAMS = {"app", "embedder", "postgres", "supervisord", "appliance"}
XML = "application/xml"
ISO_UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def stack(stack_root: Path) -> Iterator[ApplianceStack]:
    config = shipped_config(free_port())
    config["log_level"] = "DEBUG"  # every line the programs can write is then checked
    config["logs"] = {"max_file_mb": 1, "backups": 1}
    appliance = ApplianceStack(stack_root, config)
    try:
        appliance.wait_healthy()
        appliance.enable()
        yield appliance
    finally:
        appliance.stop()


def _records(name: str, text: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{name}:{number} is not a JSON line: {line!r}") from None
        assert isinstance(record, dict) and {"ts", "level", "program", "logger", "msg"} <= set(record), line
        assert ISO_UTC_MS.fullmatch(record["ts"]) and record["level"] in {
            "debug",
            "info",
            "warning",
            "error",
            "critical",
        }, line
        records.append(record)
    return records


def _drive(stack: ApplianceStack, request_id: str, mail: bytes) -> None:
    """Ingest (three files that fail to parse, two of them where parser libraries quote the file: an XML entity
    declaration, a mail whose RTF body extract-msg logs a traceback for), query, search, refused requests and a 400
    that echoes its input."""
    with httpx.Client(base_url=stack.base_url, timeout=120) as http:
        parts = [
            SourcePart("files__default: 1", f"Notes: the {DOCUMENT_WORDS[0]} recipe.".encode(), user_ids=["alice"]),
            SourcePart("files__default: 2", f"Trip: the {DOCUMENT_WORDS[1]} ferry.".encode(), user_ids=["alice"]),
            SourcePart(
                "files__default: 3",
                f"%PDF-1.4 {BROKEN_PDF_WORD} no objects here".encode(),
                user_ids=["alice"],
                title="Documents/broken.pdf",
                mimetype="application/pdf",
            ),
            SourcePart("files__default: 4", XML_WITH_SECRET_ENTITY.encode(), user_ids=["alice"], mimetype=XML),
            SourcePart("files__default: 5", mail, user_ids=["alice"], mimetype="application/vnd.ms-outlook"),
        ]
        body, content_type = guzzle_multipart(parts)
        headers = {**signed_headers(), "Content-Type": content_type, "AA-REQUEST-ID": request_id}
        loaded = http.put("/loadSources", content=body, headers=headers)
        assert loaded.status_code == 200, loaded.text
        assert loaded.headers["aa-request-id"] == request_id
        assert sorted(loaded.json()["loaded_sources"]) == ["files__default: 1", "files__default: 2"]

        question = {"userId": "alice", "query": f"What about the {QUESTION_WORDS[0]} {DOCUMENT_WORDS[0]} recipe?"}
        answer = http.post("/query", json=question, headers={**signed_headers("alice"), "AA-REQUEST-ID": QUERY_ID})
        assert answer.status_code == 200, answer.text
        assert "files__default: 1" in answer.json()["sources"]
        search = {"userId": "alice", "query": f"{QUESTION_WORDS[1]} {DOCUMENT_WORDS[1]}", "ctxLimit": 3}
        assert http.post("/docSearch", json=search, headers=signed_headers("alice")).status_code == 200

        # the real secret sent by the wrong app, and a wrong secret: both refused, neither logged
        assert http.post("/query", json=question, headers=signed_headers(app_id="another_app")).status_code == 401
        wrong_secret = signed_headers(secret="nope-" + APP_SECRET)
        assert http.post("/query", json=question, headers=wrong_secret).status_code == 401
        # a 400 whose message quotes the bad value back to the caller
        bad = {"userId": "alice", "query": "q", "scopeType": ECHOED_WORD, "scopeList": ["x"]}
        echoed = http.post("/query", json=bad, headers=signed_headers("alice"))
        assert echoed.status_code in (400, 422) and ECHOED_WORD in echoed.text, echoed.text
        # no AA-REQUEST-ID: one is made up and echoed
        assert len(http.get("/enabled", headers={**signed_headers(), "AA-REQUEST-ID": ""}).headers["aa-request-id"])


def _download_logs(stack: ApplianceStack) -> dict[str, str]:
    response = httpx.get(f"{stack.base_url}/downloadLogs", headers=signed_headers("admin"), timeout=60)
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


def _flood_app_log(stack: ApplianceStack, megabytes: float) -> None:
    """Refused requests with 8 KB paths, logged cut to 1 KB: each writes two lines, together over 3 KB, to app.log."""
    path = "/" + "p" * 8000
    with httpx.Client(base_url=stack.base_url, timeout=60) as http:
        for _ in range(int(megabytes * 1024 * 1024 / 3000) + 1):
            assert http.get(path).status_code == 401


def test_logs_are_json_lines_with_request_ids_and_no_secret_or_text(stack: ApplianceStack, tmp_path: Path) -> None:
    request_id = "ncReq0123456789abcdef"
    _drive(stack, request_id, msg_with_broken_rtf_body(tmp_path / "plans.msg").read_bytes())

    downloaded = _download_logs(stack)
    assert {"app.log", "embedder.log", "postgres.log", "supervisord.log", "appliance.log"} <= set(downloaded)
    app_lines = _records("app.log", downloaded["app.log"])
    ingest = [r for r in app_lines if r.get("request_id") == request_id]
    # the access line of the upload and the parse failure, both tied to the request
    assert {"method": "PUT", "path": "/loadSources", "status": 200} in [
        {key: r.get(key) for key in ("method", "path", "status")} for r in ingest
    ], ingest
    assert any(r["level"] == "warning" and "files__default: 3" in r["msg"] for r in ingest), ingest
    # extract-msg's traceback reached the log, with its exceptions and without the mail's text (checked below)
    assert any(
        r["program"] == "parser" and "RTFDE.exceptions.MalformedEncapsulatedRtf" in r.get("exc", "") for r in app_lines
    ), app_lines
    assert all(isinstance(r["duration_ms"], float) for r in app_lines if "duration_ms" in r)
    assert not [r for r in app_lines if r.get("path") == "/heartbeat"]
    # the app forwards the id to the embedder, whose lines for the question's embedding carry it
    assert [r for r in _records("embedder.log", downloaded["embedder.log"]) if r.get("request_id") == QUERY_ID]

    # logs.max_file_mb 1, backups 1: after 2.5 MB, app.log and app.log.1 are all there is (and both are shipped)
    _flood_app_log(stack, 2.5)
    assert sorted(name for name in _download_logs(stack) if name.startswith("app.log")) == ["app.log", "app.log.1"]
    stack.stop()

    files = sorted(path for path in stack.storage.log_dir.rglob("*") if path.is_file())
    assert "app.log.2" not in {path.name for path in files}
    assert all(path.stat().st_size <= 1024 * 1024 + 32 * 1024 for path in files), [p.stat() for p in files]
    records = [record for path in files for record in _records(path.name, path.read_text(encoding="utf-8"))]
    assert {record["program"] for record in records} >= PROGRAMS

    forbidden = (APP_SECRET, *DOCUMENT_WORDS, BROKEN_PDF_WORD, *QUESTION_WORDS, ECHOED_WORD)
    for name, text in [
        *downloaded.items(),
        *((path.name, path.read_text(encoding="utf-8")) for path in files),
        ("entrypoint output", stack.output()),
    ]:
        leaked = [word for word in forbidden if word in text] + quoted_secret(text)
        assert not leaked, f"{name} contains {leaked}"

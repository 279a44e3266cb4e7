"""Every log the appliance writes is JSON lines that follow a request by its id and never hold the app secret, a
document's text or a user's question: ingest, query, refused requests, a parse failure and a 4xx that echoes its
input are driven through the whole appliance, then every file under logs/ and supervisord's terminal output are
read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from appliance_stack import ApplianceStack, shipped_config
from contract_kit import APP_SECRET, SourcePart, guzzle_multipart, signed_headers
from local_ports import free_port

pytestmark = pytest.mark.slow

# words no log line has any reason to contain: they are only in the documents and the questions
DOCUMENT_WORDS = ("quokkamarmalade", "zebrafjordling")
BROKEN_PDF_WORD = "pdfgrumbleweed"
QUESTION_WORDS = ("xylophonicus", "tundrabiscuit")
ECHOED_WORD = "echowobbegong"
PROGRAMS = {"app", "embedder", "postgres", "supervisord", "appliance"}
ISO_UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def stack(stack_root: Path) -> Iterator[ApplianceStack]:
    config = shipped_config(free_port())
    config["log_level"] = "DEBUG"  # every line the programs can write is then checked
    appliance = ApplianceStack(stack_root, config)
    try:
        appliance.wait_healthy()
        appliance.enable()
        yield appliance
    finally:
        appliance.stop()


def _records(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{path.name}:{number} is not a JSON line: {line!r}") from None
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


def _drive(stack: ApplianceStack, request_id: str) -> None:
    """Ingest (one file that fails to parse), query, search, refused requests and a 400 that echoes its input."""
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
        ]
        body, content_type = guzzle_multipart(parts)
        headers = {**signed_headers(), "Content-Type": content_type, "AA-REQUEST-ID": request_id}
        loaded = http.put("/loadSources", content=body, headers=headers)
        assert loaded.status_code == 200, loaded.text
        assert loaded.headers["aa-request-id"] == request_id
        assert sorted(loaded.json()["loaded_sources"]) == ["files__default: 1", "files__default: 2"]

        question = {"userId": "alice", "query": f"What about the {QUESTION_WORDS[0]} {DOCUMENT_WORDS[0]} recipe?"}
        answer = http.post("/query", json=question, headers=signed_headers("alice"))
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


def test_logs_are_json_lines_with_request_ids_and_no_secret_or_text(stack: ApplianceStack) -> None:
    request_id = "ncReq0123456789abcdef"
    _drive(stack, request_id)
    stack.stop()

    log_dir = stack.storage.log_dir
    files = sorted(path for path in log_dir.rglob("*") if path.is_file())
    by_name = {path.name: _records(path) for path in files}
    assert {"app.log", "embedder.log", "postgres.log", "supervisord.log", "appliance.log"} <= set(by_name)
    programs = {record["program"] for records in by_name.values() for record in records}
    assert programs >= PROGRAMS, programs

    app_lines = by_name["app.log"]
    ingest = [r for r in app_lines if r.get("request_id") == request_id]
    # the access line of the upload and the parse failure, both tied to the request
    assert {"method": "PUT", "path": "/loadSources", "status": 200} in [
        {key: r.get(key) for key in ("method", "path", "status")} for r in ingest
    ], ingest
    assert any(r["level"] == "warning" and "files__default: 3" in r["msg"] for r in ingest), ingest
    assert all(isinstance(r["duration_ms"], float) for r in app_lines if "duration_ms" in r)
    assert not [r for r in app_lines if r.get("path") == "/heartbeat"]

    forbidden = (APP_SECRET, *DOCUMENT_WORDS, BROKEN_PDF_WORD, *QUESTION_WORDS, ECHOED_WORD)
    for path in [*files, stack.log_path]:
        text = path.read_text(encoding="utf-8", errors="replace")
        leaked = [word for word in forbidden if word in text]
        assert not leaked, f"{path} contains {leaked}"

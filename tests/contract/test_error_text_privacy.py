"""A file the parser refuses fails with an error that names the file and what is wrong, never what the file says:
not in the /loadSources answer, not in GET /status, not in `ccb index`'s report, not in any log line. The file is an
XML memo declaring an entity whose system id is a sentence, and defusedxml's exception quotes the declaration."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from contract_kit import SourcePart, put_sources, signed_headers
from live_app_kit import ccb_env, running_live_app
from quart.typing import TestClientProtocol as Client
from rich.console import Console
from secret_documents import XML_WITH_SECRET_ENTITY, quoted_secret

from appliance.app_client import AppClient, AppTarget
from appliance.ccb_index import run_index
from appliance.local_sources import walk

XML = "application/xml"
REFUSED = (
    "(application/xml): the XML declares entities or external references (EntitiesForbidden), refused for safety;"
    " remove the DTD entity declarations"
)


async def test_the_error_of_a_refused_upload_names_the_file_not_its_text(
    client: Client, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    memo = SourcePart("files__default: 31", XML_WITH_SECRET_ENTITY.encode(), title="Board/memo.xml", mimetype=XML)
    response = await put_sources(client, [memo])
    answer = await response.get_data(as_text=True)
    assert (response.status_code, json.loads(answer)) == (200, {"loaded_sources": [], "sources_to_retry": []})
    status = await (await client.get("/status", headers=signed_headers())).get_data(as_text=True)
    assert json.loads(status)["documents"]["failed_sources"] == [
        {
            "source_id": "files__default: 31",
            "error": f"CorruptDocumentError: 'Board/memo.xml' (source 'files__default: 31') {REFUSED}",
        }
    ]
    # the app's records and its parse workers' lines (their stderr)
    logs = "\n".join(record.getMessage() for record in caplog.records) + capfd.readouterr().err
    assert "'Board/memo.xml' (source 'files__default: 31')" in logs
    assert quoted_secret(answer + status + logs) == []


def test_ccb_index_reports_a_refused_file_by_name_not_by_its_text(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "memo.xml").write_text(XML_WITH_SECRET_ENTITY)
    (docs / "plain.txt").write_text("The harbour crane is rented by the hour.")
    with running_live_app(tmp_path, fresh_dsn, embedder_url) as (base, server):
        with AppClient(AppTarget.from_env(ccb_env(base, tmp_path / "storage"))) as app:
            report = run_index(app, list(walk([docs])), ["me"], Console(quiet=True), wait_s=60)
        logs = server.log_text()
    assert [file.title for file in report.indexed] == ["docs/plain.txt"]
    [(failed, reason)] = report.failed
    assert failed.title == "docs/memo.xml"
    assert reason == f"CorruptDocumentError: 'docs/memo.xml' (source '{failed.source_id}') {REFUSED}"
    assert "'docs/memo.xml'" in logs
    assert quoted_secret(json.dumps(report.to_json()) + logs) == []

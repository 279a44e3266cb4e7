"""Pull mode, a file the parser refuses: acknowledged as failed, its error (document row, GET /status, the app's and
the parse workers' logs) names the file and what is wrong, and nothing we send Nextcloud carries what the file says."""

from __future__ import annotations

import json
import logging

import pytest
from async_wait import until
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import PullApp, acked
from secret_documents import XML_WITH_SECRET_ENTITY, quoted_secret


async def test_a_refused_file_is_acknowledged_with_an_error_that_names_it_not_its_text(
    pull_app: PullApp,
    nextcloud: FakePullNextcloud,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    file_id = nextcloud.add_file(["alice"], "files/Board/memo.xml", XML_WITH_SECRET_ENTITY.encode(), "application/xml")
    row = nextcloud.file_row_id(file_id)
    await until(lambda: row in acked(nextcloud, "files"), 60, "the acknowledgement")
    source_id = f"files__default: {file_id}"
    status = await pull_app.status()
    assert status["documents"]["failed_sources"] == [
        {
            "source_id": source_id,
            "error": f"CorruptDocumentError: 'files/Board/memo.xml' (source '{source_id}') (application/xml): the XML"
            " declares entities or external references (EntitiesForbidden), refused for safety; remove the DTD entity"
            " declarations",
        }
    ]
    sent = json.dumps([request.json for request in nextcloud.requests])
    logs = "\n".join(record.getMessage() for record in caplog.records) + capfd.readouterr().err
    assert "'files/Board/memo.xml'" in logs
    assert quoted_secret(json.dumps(status) + sent + logs) == []

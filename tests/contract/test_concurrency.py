"""A long /query (a Nextcloud text-to-text task still running) must not stall /heartbeat or /loadSources."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from async_wait import until
from contract_kit import (
    APP_ID,
    APP_SECRET,
    APP_VERSION,
    SourcePart,
    contract_config,
    guzzle_multipart,
    make_settings,
    running_app,
    signed_headers,
)
from nextcloud_ocs_fake import FakeAppApiNextcloud

from quart_app import create_app

TEXT = b"The Ethical AI Rating gives a green label when the model, its data and the code are all open."
SCHEDULE = "/ocs/v1.php/taskprocessing/schedule"


async def test_long_query_does_not_stall_heartbeat_or_ingest(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeAppApiNextcloud() as nextcloud:
        for name, value in {
            "NEXTCLOUD_URL": nextcloud.url,
            "APP_ID": APP_ID,
            "APP_SECRET": APP_SECRET,
            "APP_VERSION": APP_VERSION,
        }.items():
            monkeypatch.setenv(name, value)
        nextcloud.task.statuses = ["STATUS_RUNNING"]  # the last status repeats: the task runs until we say so
        raw = contract_config(embedder_url, llm={"nc_texttotext": {"poll_interval_s": 0.05}})
        app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw, nextcloud.url))
        async with running_app(app) as test_app:
            client = test_app.test_client()
            await client.put("/enabled?enabled=1", headers=signed_headers())
            body, content_type = guzzle_multipart([SourcePart("files__default: 1", TEXT)])
            headers = {**signed_headers(), "Content-Type": content_type}
            assert (await client.put("/loadSources", data=body, headers=headers)).status_code == 200

            question = {"userId": "admin", "query": "When is the label green?"}
            query = asyncio.create_task(client.post("/query", json=question, headers=signed_headers("admin")))
            await until(lambda: nextcloud.paths("POST").count(SCHEDULE) == 1, what="the text-to-text task")
            task_polls = len(nextcloud.paths("GET"))
            await until(lambda: len(nextcloud.paths("GET")) >= task_polls + 3, what="the backend to poll the task")

            heartbeat = await client.get("/heartbeat")
            assert heartbeat.status_code == 200 and await heartbeat.get_json() == {"status": "ok"}
            body, content_type = guzzle_multipart([SourcePart("files__default: 2", TEXT + b" Second file.")])
            headers = {**signed_headers(), "Content-Type": content_type}
            loaded = await client.put("/loadSources", data=body, headers=headers)
            assert loaded.status_code == 200
            assert (await loaded.get_json())["loaded_sources"] == ["files__default: 2"]
            assert not query.done(), "the query should still be waiting for its Nextcloud task"

            nextcloud.task.statuses.append("STATUS_SUCCESSFUL")
            answer = await query
            assert answer.status_code == 200
            result = await answer.get_json()
            assert result["output"] == "generated answer" and result["sources"] == ["files__default: 1"]

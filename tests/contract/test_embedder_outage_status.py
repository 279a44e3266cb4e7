"""GET /status while the embedding service is down: the admin sees the worker waiting for it, since when and why,
on the status page and in `ccb status` too, and indexing resumes by itself once the real embedder program is started
again."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from async_wait import wait_until
from contract_kit import (
    APP_SECRET,
    SourcePart,
    contract_config,
    guzzle_multipart,
    make_settings,
    put_sources,
    running_app,
    signed_headers,
)
from embedder_program import EmbedderProgram
from headless_chromium import run_chromium
from live_app_kit import ccb_env, running_live_app
from local_ports import free_port
from waiting import wait_for

from quart_app import create_app

MAX_ATTEMPTS = 2
TEXT = (
    "Solar panels on the school roof produce more power in June than the building uses.\n\n"
    "The surplus goes to the neighbourhood grid, and the school is paid for every kilowatt hour.\n\n"
)


async def test_status_shows_the_worker_waiting_for_the_embedder_and_indexing_resumes_when_it_is_back(
    tmp_path: Path, fresh_dsn: str, stoppable_embedder: EmbedderProgram
) -> None:
    worker = {
        "idle_poll_s": 0.2,
        "max_attempts": MAX_ATTEMPTS,
        "backoff_base_s": 0.05,
        "outage_backoff_base_s": 0.05,
        "outage_backoff_max_s": 0.2,
    }
    app = create_app(
        make_settings(tmp_path / "storage", fresh_dsn, contract_config(stoppable_embedder.url, embedding_worker=worker))
    )
    stopped_at = time.time()
    stoppable_embedder.stop()
    async with running_app(app) as test_app:
        client = test_app.test_client()
        await client.put("/enabled?enabled=1", headers=signed_headers())
        response = await put_sources(client, [SourcePart("files__default: 1", (TEXT * 20).encode())])
        assert (await response.get_json())["loaded_sources"] == ["files__default: 1"]
        report: dict[str, Any] = {}

        async def waiting_for_the_embedder() -> bool:
            report.update(await (await client.get("/status", headers=signed_headers())).get_json())
            waiting = report["loops"]["embedding_worker_0"]["state"] == "waiting_for_embedder"
            return bool(waiting and report["embedder"]["failed_calls"] >= 5 * MAX_ATTEMPTS)

        await wait_until(waiting_for_the_embedder, "/status to show the worker waiting for the stopped embedder")
        embedder = report["embedder"]
        assert embedder["state"] == "unavailable"
        assert stopped_at <= embedder["unavailable_since"] <= time.time()
        assert embedder["last_error"].startswith(
            f"cannot reach the embedding service at {stoppable_embedder.url}/embeddings: ConnectError:"
        )
        assert 0 <= embedder["next_try_in_s"] <= worker["outage_backoff_max_s"]
        assert report["loops"]["embedding_worker_0"]["detail"] == embedder["last_error"]
        # five times the calls that would have used up every chunk's attempts: all still queued, none failed
        assert report["chunks"]["queued"] > 0
        assert (report["chunks"]["embedded"], report["chunks"]["failed"]) == (0, 0)
        queued = report["chunks"]["queued"]

        stoppable_embedder.start()

        async def indexing_resumed() -> bool:
            report.update(await (await client.get("/status", headers=signed_headers())).get_json())
            return bool(report["chunks"]["queued"] == 0)

        await wait_until(indexing_resumed, "the queued chunks to be embedded once the embedder is back")
    assert (report["chunks"]["embedded"], report["chunks"]["failed"]) == (queued, 0)
    assert report["embedder"] == {
        "state": "available",
        "unavailable_since": None,
        "last_error": None,
        "failed_calls": 0,
        "next_try_in_s": None,
    }


@pytest.mark.slow
def test_the_status_page_and_ccb_status_show_since_when_and_why_the_embedder_is_unavailable(
    tmp_path: Path, fresh_dsn: str
) -> None:
    """An admin whose indexing stalled sees at a glance that the embedding service is down, since when and why."""
    nothing_listens = f"http://127.0.0.1:{free_port()}/v1"
    with (
        running_live_app(tmp_path, fresh_dsn, nothing_listens) as (base, _server),
        httpx.Client(base_url=base, timeout=60) as http,
    ):
        body, content_type = guzzle_multipart([SourcePart("files__default: 1", (TEXT * 20).encode())])
        loaded = http.put("/loadSources", content=body, headers={**signed_headers(), "Content-Type": content_type})
        assert loaded.status_code == 200, loaded.text

        def embedder() -> dict[str, Any]:
            outage: dict[str, Any] = http.get("/status", headers=signed_headers("admin")).json()["embedder"]
            return outage

        wait_for(lambda: embedder()["state"] == "unavailable", 120, "/status to show the embedder unavailable")
        outage = embedder()
        since = time.localtime(outage["unavailable_since"])
        assert outage["last_error"].startswith(f"cannot reach the embedding service at {nothing_listens}/embeddings")

        dom = run_chromium(base.replace("http://", f"http://admin:{APP_SECRET}@") + "/status/page.html")
        banner = re.search(r'<p id="embedder-outage" class="alert">(.*?)</p>', dom)
        assert banner is not None, dom[:3000]
        assert html.unescape(banner[1]).startswith(
            f"Embedding service unavailable since {time.strftime('%H:%M:%S', since)} ("
        )
        assert f"{outage['last_error']}. Indexing waits and resumes by itself" in html.unescape(banner[1])

        shown = subprocess.run(
            [sys.executable, "-c", "import sys; from appliance.ccb import main; sys.exit(main())", "status"],
            env={**ccb_env(base, tmp_path / "storage"), "COLUMNS": "400"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert shown.returncode == 0, shown.stderr
    [line] = [line for line in shown.stdout.splitlines() if line.startswith("embedding service")]
    assert f"unavailable since {time.strftime('%Y-%m-%d %H:%M:%S', since)} (" in line
    assert f"{outage['last_error']}; indexing waits" in line

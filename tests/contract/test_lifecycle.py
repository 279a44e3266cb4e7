"""Lifecycle as AppAPI drives it: /heartbeat, /init with progress to Nextcloud, PUT/GET /enabled, the guard."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from async_wait import wait_until
from contract_kit import APP_ID, APP_SECRET, contract_config, make_settings, running_app, signed_headers
from model_server import ModelServer, catalogue_yaml, url_model
from nextcloud_ocs_fake import FakeAppApiNextcloud
from quart import Quart

from quart_app import create_app
from quart_app.app_settings import AppSettings

NO_DB = "postgresql://nobody@127.0.0.1:9/none"  # the lifespan is not run: no engine needed
DISABLED = {"error": "Context Chat is disabled, enable it from AppAPI to use it."}
GUARDED = [
    ("PUT", "/loadSources"),
    ("POST", "/query"),
    ("POST", "/docSearch"),
    ("POST", "/updateAccessDeclarative"),
    ("POST", "/updateAccess"),
    ("POST", "/updateAccessProvider"),
    ("POST", "/deleteSources"),
    ("POST", "/deleteProvider"),
    ("POST", "/deleteUser"),
    ("POST", "/deleteSourcesByProvider"),
    ("POST", "/deleteSourcesByProviderForAllUsers"),
    ("POST", "/countIndexedDocuments"),
]


def _app(root: Path, nextcloud_url: str | None = None, **settings: Any) -> Quart:
    base = make_settings(root, NO_DB, contract_config("http://127.0.0.1:9/v1", **settings.pop("config", {})))
    return create_app(AppSettings(**{**base.__dict__, "nextcloud_url": nextcloud_url, **settings}))


async def test_enabled_toggles_persist_across_a_restart(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    assert await (await client.get("/enabled", headers=signed_headers())).get_json() == {"enabled": False}
    response = await client.put("/enabled?enabled=1", headers=signed_headers())
    assert response.status_code == 200 and await response.get_json() == {"error": ""}
    assert await (await client.get("/enabled", headers=signed_headers())).get_json() == {"enabled": True}
    restarted = _app(tmp_path).test_client()
    assert await (await restarted.get("/enabled", headers=signed_headers())).get_json() == {"enabled": True}
    await restarted.put("/enabled?enabled=0", headers=signed_headers())
    assert await (await restarted.get("/enabled", headers=signed_headers())).get_json() == {"enabled": False}


async def test_enabled_needs_a_boolean(tmp_path: Path) -> None:
    response = await _app(tmp_path).test_client().put("/enabled?enabled=maybe", headers=signed_headers())
    assert response.status_code == 422
    body = await response.get_json()
    assert body["detail"][0]["loc"] == ["query", "enabled"]


async def test_every_engine_route_is_guarded_until_enabled(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    for method, path in GUARDED:
        response = await client.open(path, method=method, headers=signed_headers(), json={})
        assert response.status_code == 503, path
        assert await response.get_json() == DISABLED
    # lifecycle and admin routes stay reachable
    for method, path in (("GET", "/"), ("GET", "/enabled"), ("GET", "/heartbeat")):
        assert (await client.open(path, method=method, headers=signed_headers(), json=None)).status_code == 200


async def _wait_for_final_status(nextcloud: Any) -> list[dict[str, Any]]:
    for _ in range(600):
        statuses: list[dict[str, Any]] = nextcloud.init_statuses()
        if statuses and (statuses[-1]["progress"] == 100 or statuses[-1]["error"]):
            return statuses
        await asyncio.sleep(0.05)
    raise AssertionError(f"no final init status reported; got {nextcloud.init_statuses()}")


@pytest.mark.parametrize("good_checksum", [True, False])
async def test_init_answers_at_once_then_fetches_and_reports_progress(tmp_path: Path, good_checksum: bool) -> None:
    data = b"model bytes " * 50_000
    sha = hashlib.sha256(data).hexdigest() if good_checksum else "1" * 64
    with ModelServer({"/e5.onnx": data}) as models, FakeAppApiNextcloud() as nextcloud:
        catalogue = tmp_path / "catalogue.yaml"
        catalogue.write_text(catalogue_yaml([url_model("test-e5", models.url("/e5.onnx"), sha, len(data))]))
        app = _app(
            tmp_path / "storage",
            nextcloud.url,
            model_catalogue=catalogue,
            config={"embedding": {"onnx": {"model": "test-e5"}}},
        )
        response = await app.test_client().post("/init", headers=signed_headers())
        assert response.status_code == 200 and await response.get_json() == {}
        statuses = await _wait_for_final_status(nextcloud)
        # no lifespan here: stop the app's loops (the init job) and close its client as after_serving does
        await app.extensions["ccb_lifecycle"].loops.close()
        await app.extensions["ccb_lifecycle"].nextcloud.aclose()
        progress = [s["progress"] for s in statuses]
        assert progress == sorted(progress) and all(0 <= p <= 100 for p in progress)
        put = next(r for r in nextcloud.requests if r.method == "PUT")
    # signed by nc_py_api as the app, with an empty user
    assert put.headers["ex-app-id"] == APP_ID
    assert base64.b64decode(put.headers["authorization-app-api"]).decode() == f":{APP_SECRET}"
    target = tmp_path / "storage" / "model_files" / "test-e5" / "model.onnx"
    if good_checksum:
        assert statuses[-1] == {"progress": 100, "error": ""}
        assert target.read_bytes() == data
    else:
        assert statuses[-1]["progress"] < 100
        assert statuses[-1]["error"].startswith("Downloading of 'test-e5' failed:")
        assert not target.exists()


async def test_init_with_offline_models_reports_100(tmp_path: Path) -> None:
    with FakeAppApiNextcloud() as nextcloud:
        app = _app(tmp_path, nextcloud.url)
        await app.test_client().post("/init", headers=signed_headers())
        statuses = await _wait_for_final_status(nextcloud)
        # no lifespan here: stop the app's loops (the init job) and close its client as after_serving does
        await app.extensions["ccb_lifecycle"].loops.close()
        await app.extensions["ccb_lifecycle"].nextcloud.aclose()
    assert statuses == [{"progress": 100, "error": ""}]


async def test_init_reports_to_a_nextcloud_url_that_ends_in_index_php(tmp_path: Path) -> None:
    # AppAPI's deploy daemon form fills in <origin>/index.php on a Nextcloud without pretty URLs, and passes it on
    with FakeAppApiNextcloud() as nextcloud:
        app = _app(tmp_path, f"{nextcloud.url}/index.php/")
        state = app.extensions["ccb_lifecycle"]
        await app.test_client().post("/init", headers=signed_headers())
        try:
            statuses = await _wait_for_final_status(nextcloud)
        finally:
            await state.loops.close()
            await state.nextcloud.aclose()
    assert statuses == [{"progress": 100, "error": ""}]
    assert nextcloud.taken_statuses == statuses


async def test_the_final_init_report_is_sent_again_while_nextcloud_answers_5xx(tmp_path: Path) -> None:
    # AppAPI enables the app only on the report of 100: one lost to a Nextcloud restart left it "initializing" for good
    with FakeAppApiNextcloud() as nextcloud:
        nextcloud.status_errors.extend([503, 502])
        app = _app(tmp_path, nextcloud.url)
        state = app.extensions["ccb_lifecycle"]
        state.init_job.report_retry_base_s = 0.05
        await app.test_client().post("/init", headers=signed_headers())

        async def taken() -> bool:
            return bool(nextcloud.taken_statuses)

        try:
            await wait_until(taken, "Nextcloud to take the final init report", timeout_s=10)
        finally:
            await state.loops.close()
            await state.nextcloud.aclose()
    assert nextcloud.init_statuses() == [{"progress": 100, "error": ""}] * 3
    assert nextcloud.taken_statuses == [{"progress": 100, "error": ""}]
    assert state.loops.snapshot()["init"]["state"] == "done"


async def test_spool_files_left_by_a_crashed_process_are_removed_at_start(settings: AppSettings) -> None:
    spool = settings.storage.spool_dir
    spool.mkdir(parents=True)
    (spool / "src-crashed.part").write_bytes(b"half an upload")
    (spool / "keep.txt").write_text("not ours")
    async with running_app(create_app(settings)):
        assert sorted(p.name for p in spool.iterdir()) == ["keep.txt"]

"""A config whose embedding model must be downloaded: the app still serves the lifecycle routes, POST /init fetches
the model (real MiniLM files over local HTTP), and only then the engine opens and the contract routes work; also when
the engine's opening outlasted start-up (http.start_up_wait_s) and found the models missing as the fetch ended."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import hashlib
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from async_wait import until, wait_until
from contract_kit import (
    SourcePart,
    contract_config,
    make_settings,
    put_sources,
    running_app,
    signed_headers,
)
from model_server import ModelServer, catalogue_yaml
from nextcloud_ocs_fake import FakeAppApiNextcloud

from appliance import model_catalogue
from appliance.app_role import AppRole
from appliance.model_catalogue import load_catalogue
from appliance.model_fetch import fetch_models
from quart_app import create_app
from quart_app.app_factory import MODEL_WAIT_LOOP
from quart_app.app_settings import AppSettings, downloads_models
from quart_app.engine import ENGINE_EXTENSION
from quart_app.lifecycle import STATE_EXTENSION
from quart_app.store.errors import DatabaseUnavailableError


def _entry(model_url: str, tokenizer_url: str, model: bytes, tokenizer: bytes) -> dict[str, Any]:
    def source(url: str, data: bytes, name: str) -> dict[str, Any]:
        return {"url": url, "filename": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    return {
        "id": "downloaded-minilm",
        "kind": "embedding",
        "format": "onnx",
        "dimension": 384,
        "max_tokens": 256,
        "licence": "Apache-2.0",
        "source": source(model_url, model, "model.onnx"),
        "tokenizer": source(tokenizer_url, tokenizer, "tokenizer.json"),
    }


async def _minilm_files(minilm_paths: tuple[Path, Path]) -> dict[str, bytes]:
    """The real MiniLM model and tokenizer, as the local model server serves them."""
    model = await asyncio.to_thread(minilm_paths[0].read_bytes)
    tokenizer = await asyncio.to_thread(minilm_paths[1].read_bytes)
    return {"/m/model.onnx": model, "/m/tokenizer.json": tokenizer}


def _downloading_settings(
    tmp_path: Path,
    dsn: str,
    embedder_url: str,
    models: ModelServer,
    files: dict[str, bytes],
    nextcloud_url: str,
    **config: Any,
) -> AppSettings:
    """Settings whose embedding model is the catalogue entry 'downloaded-minilm', served by `models`; `config`
    replaces top-level sections."""
    catalogue = tmp_path / "catalogue.yaml"
    model, tokenizer = files["/m/model.onnx"], files["/m/tokenizer.json"]
    catalogue.write_text(
        catalogue_yaml([_entry(models.url("/m/model.onnx"), models.url("/m/tokenizer.json"), model, tokenizer)])
    )
    raw = contract_config(embedder_url, **config)
    raw["embedding"] = {**raw["embedding"], "onnx": {"model": "downloaded-minilm"}}
    settings: AppSettings = make_settings(tmp_path / "storage", dsn, raw, nextcloud_url)
    return dataclasses.replace(settings, model_catalogue=catalogue)


async def test_engine_opens_after_init_fetched_the_models(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, minilm_paths: tuple[Path, Path]
) -> None:
    files = await _minilm_files(minilm_paths)
    with ModelServer(files) as models, FakeAppApiNextcloud() as nextcloud:
        base = _downloading_settings(tmp_path, fresh_dsn, embedder_url, models, files, nextcloud.url)
        app = create_app(base)
        async with running_app(app) as test_app:
            client = test_app.test_client()
            assert (await client.get("/heartbeat")).status_code == 200
            await client.put("/enabled?enabled=1", headers=signed_headers())
            early = await client.post("/countIndexedDocuments", headers=signed_headers())
            assert early.status_code == 503 and "POST /init" in (await early.get_json())["error"]

            assert (await client.post("/init", headers=signed_headers())).status_code == 200
            await wait_until(_reported(nextcloud), "POST /init to report its end", timeout_s=30)
            assert nextcloud.init_statuses()[-1] == {"progress": 100, "error": ""}

            loaded = await put_sources(client, [SourcePart("files__default: 1", b"Green labels need open data.")])
            assert (await loaded.get_json())["loaded_sources"] == ["files__default: 1"]
            counted = await client.post("/countIndexedDocuments", headers=signed_headers())
            assert await counted.get_json() == {"files__default": 1}


async def test_a_replica_without_init_opens_its_engine_once_the_shared_models_arrive(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, minilm_paths: tuple[Path, Path]
) -> None:
    """AppAPI sends POST /init only to the exposed requestproc replica; an indexing replica on the same storage waits
    for the files that fetch writes, then opens its engine by itself."""
    files = await _minilm_files(minilm_paths)
    with ModelServer(files) as models, FakeAppApiNextcloud() as nextcloud:
        base = _downloading_settings(tmp_path, fresh_dsn, embedder_url, models, files, nextcloud.url)
        catalogue = base.model_catalogue
        assert catalogue is not None
        settings = dataclasses.replace(base, role=AppRole.INDEXING)
        app = create_app(settings)
        app.extensions[STATE_EXTENSION].model_wait_s = 0.1
        async with running_app(app) as test_app:
            client = test_app.test_client()
            assert (await client.get("/heartbeat")).status_code == 200
            early = await client.get("/status", headers=signed_headers())
            assert early.status_code == 503 and "POST /init" in (await early.get_json())["error"]
            # what the requestproc replica's POST /init does to the shared storage
            await asyncio.to_thread(
                fetch_models,
                settings.config,
                settings.storage.model_dir,
                lambda _percent: None,
                catalogue=load_catalogue(catalogue),
            )
            await until(lambda: ENGINE_EXTENSION in app.extensions, what="the engine to open")
            status = await client.get("/status", headers=signed_headers())
            assert status.status_code == 200, await status.get_data()
            report = await status.get_json()
            assert report["role"]["name"] == "indexing" and "documents" in report["loops"]
            assert report["loops"][MODEL_WAIT_LOOP]["state"] == "opened"
        assert nextcloud.init_statuses() == []  # nobody sent POST /init to this replica


async def test_a_fetch_that_ends_while_the_late_opening_finds_the_models_missing_still_opens_the_engine(
    tmp_path: Path,
    fresh_dsn: str,
    embedder_url: str,
    minilm_paths: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An update: the engine's opening outlasts start-up, AppAPI's POST /init fetches the models meanwhile, and the
    opening's look for them happens just before the fetch ends. Nothing is left to open the engine after the fetch
    (it found no opening waiting for it), so the opening itself tries again."""
    looked, fetch_reported = threading.Event(), threading.Event()
    real_lookup = model_catalogue.chunking_tokenizer_file

    def lookup_then_wait_for_the_fetch(entry: model_catalogue.ModelEntry, model_dir: Path) -> Path | None:
        try:
            return real_lookup(entry, model_dir)
        except model_catalogue.ModelNotDownloadedError:
            looked.set()
            assert fetch_reported.wait(60), "the test never saw the fetch end"
            raise

    monkeypatch.setattr(model_catalogue, "chunking_tokenizer_file", lookup_then_wait_for_the_fetch)
    files = await _minilm_files(minilm_paths)
    with ModelServer(files) as models, FakeAppApiNextcloud() as nextcloud:
        settings = _downloading_settings(
            tmp_path, fresh_dsn, embedder_url, models, files, nextcloud.url, http={"start_up_wait_s": 0.1}
        )
        app = create_app(settings)
        with caplog.at_level(logging.INFO, logger="quart_app.app_factory"):
            async with running_app(app) as test_app:
                client = test_app.test_client()
                await client.put("/enabled?enabled=1", headers=signed_headers())
                assert await asyncio.to_thread(looked.wait, 60)
                early = await client.post("/countIndexedDocuments", headers=signed_headers())
                assert early.status_code == 503 and "the engine is still opening" in (await early.get_json())["error"]
                assert (await client.post("/init", headers=signed_headers())).status_code == 200
                await wait_until(_reported(nextcloud), "POST /init to report its end")
                assert nextcloud.init_statuses()[-1] == {"progress": 100, "error": ""}
                fetch_reported.set()
                await wait_until(_counts(client, 200), "the engine to open")
        assert "POST /init fetched the models while the engine was opening; opening it again" in caplog.text


def _reported(nextcloud: FakeAppApiNextcloud) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        statuses = nextcloud.init_statuses()
        return bool(statuses) and (statuses[-1]["progress"] == 100 or bool(statuses[-1]["error"]))

    return check


def _counts(client: Any, status_code: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        counted = await client.post("/countIndexedDocuments", headers=signed_headers())
        return bool(counted.status_code == status_code)

    return check


async def _init_with_failing_openings(
    tmp_path: Path,
    fresh_dsn: str,
    embedder_url: str,
    files: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    times: int,
) -> list[dict[str, Any]]:
    """POST /init whose fetch succeeds and whose first `times` openings of the engine after it fail with `failure`;
    returns what Nextcloud was told once /init reported 100 and the engine opened."""
    real_lookup = model_catalogue.chunking_tokenizer_file
    failures: list[Path] = []

    def fail_after_the_fetch(entry: model_catalogue.ModelEntry, model_dir: Path) -> Path | None:
        found = real_lookup(entry, model_dir)  # ModelNotDownloadedError before the fetch, as always
        if len(failures) < times:
            failures.append(model_dir)
            raise failure
        return found

    monkeypatch.setattr(model_catalogue, "chunking_tokenizer_file", fail_after_the_fetch)
    with ModelServer(files) as models, FakeAppApiNextcloud() as nextcloud:
        app = create_app(_downloading_settings(tmp_path, fresh_dsn, embedder_url, models, files, nextcloud.url))
        app.extensions[STATE_EXTENSION].init_job.open_retry_base_s = 0.05
        async with running_app(app) as test_app:
            client = test_app.test_client()
            await client.put("/enabled?enabled=1", headers=signed_headers())
            assert (await client.post("/init", headers=signed_headers())).status_code == 200
            await wait_until(_reported_progress(nextcloud, 100), "POST /init to report 100")
            await wait_until(_counts(client, 200), "the engine to open")
        assert len(failures) == times, "the engine's opening did not fail as often as asked"
        statuses: list[dict[str, Any]] = nextcloud.init_statuses()
        return statuses


async def test_an_engine_that_fails_to_open_after_the_fetch_is_tried_again(
    tmp_path: Path,
    fresh_dsn: str,
    embedder_url: str,
    minilm_paths: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fetch succeeds, but the engine's first opening after it fails on a passing error (the shared storage
    answers EIO once): Nextcloud is told, the opening is tried again, and /init ends at 100 with a working app."""
    files = await _minilm_files(minilm_paths)
    statuses = await _init_with_failing_openings(
        tmp_path,
        fresh_dsn,
        embedder_url,
        files,
        monkeypatch,
        OSError(errno.EIO, "Input/output error"),
        times=1,
    )
    assert {"progress": 99, "error": "Init failed: the engine did not open: OSError: [Errno 5] Input/output error"} in (
        statuses
    )
    assert statuses[-1] == {"progress": 100, "error": ""}


async def test_a_database_outage_after_the_fetch_is_logged_once_without_a_traceback(
    tmp_path: Path,
    fresh_dsn: str,
    embedder_url: str,
    minilm_paths: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL away for the engine's first three openings after the fetch: no bug of ours, so one warning with what
    to do, not a traceback per attempt; Nextcloud hears it once, and the engine opens once the outage passes."""
    files = await _minilm_files(minilm_paths)
    caplog.set_level(logging.INFO, logger="quart_app.lifecycle")
    statuses = await _init_with_failing_openings(
        tmp_path,
        fresh_dsn,
        embedder_url,
        files,
        monkeypatch,
        DatabaseUnavailableError("PostgreSQL did not answer within 1 s (connection refused)"),
        times=3,
    )
    opening = [r for r in caplog.records if r.name == "quart_app.lifecycle" and "did not open" in r.getMessage()]
    assert [(r.levelname, r.exc_info) for r in opening] == [("WARNING", None)]
    assert "Start PostgreSQL" in opening[0].getMessage()
    assert [s for s in statuses if s["progress"] == 99] == [
        {
            "progress": 99,
            "error": "Init failed: the engine did not open: DatabaseUnavailableError: PostgreSQL did not answer within"
            " 1 s (connection refused)",
        }
    ]


def _reported_progress(nextcloud: FakeAppApiNextcloud, progress: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        statuses = nextcloud.init_statuses()
        return bool(statuses) and statuses[-1]["progress"] == progress

    return check


@pytest.mark.parametrize(
    ("value", "downloads"),
    [(None, True), ("true", True), ("YES", True), ("1", True), ("false", False), ("0", False), ("no", False)],
)
def test_cc_download_models_from_hf_is_read_as_upstream_reads_it(value: str | None, downloads: bool) -> None:
    assert downloads_models({} if value is None else {"CC_DOWNLOAD_MODELS_FROM_HF": value}) is downloads


async def test_with_cc_download_models_from_hf_false_init_downloads_nothing_and_names_the_files_to_place(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, minilm_paths: tuple[Path, Path]
) -> None:
    """Upstream's switch for machines that may not reach Hugging Face: /init fetches nothing and says which file goes
    where; with the files placed by hand, the next /init opens the engine."""
    files = await _minilm_files(minilm_paths)
    with ModelServer(files) as models, FakeAppApiNextcloud() as nextcloud:
        settings = _downloading_settings(tmp_path, fresh_dsn, embedder_url, models, files, nextcloud.url)
        settings = dataclasses.replace(settings, download_models=False)
        app = create_app(settings)
        async with running_app(app) as test_app:
            client = test_app.test_client()
            await client.put("/enabled?enabled=1", headers=signed_headers())
            assert (await client.post("/init", headers=signed_headers())).status_code == 200
            await wait_until(_reported(nextcloud), "POST /init to report its end")
            final = nextcloud.init_statuses()[-1]
            model_dir = settings.storage.model_dir / "downloaded-minilm"
            assert final["error"].startswith(
                "CC_DOWNLOAD_MODELS_FROM_HF is off and 2 model file(s) are missing: place "
            )
            assert f"{models.url('/m/model.onnx')} as {model_dir / 'model.onnx'}" in final["error"]
            assert models.requests == []

            # the admin puts the files in place; AppAPI's next /init finds them
            model_dir.mkdir(parents=True)
            for name in ("model.onnx", "tokenizer.json"):
                await asyncio.to_thread((model_dir / name).write_bytes, files[f"/m/{name}"])
            await wait_until(lambda: _idle(app), "the first /init to end")
            assert (await client.post("/init", headers=signed_headers())).status_code == 200
            await wait_until(_reported_progress(nextcloud, 100), "POST /init to report 100")
            await wait_until(_counts(client, 200), "the engine to open")
            assert models.requests == []


async def _idle(app: Any) -> bool:
    return not app.extensions[STATE_EXTENSION].init_job.running

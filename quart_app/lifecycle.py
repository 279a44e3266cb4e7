"""AppAPI lifecycle: GET /heartbeat, POST /init (model fetch + progress to Nextcloud), PUT/GET /enabled, the guard."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from quart import Blueprint, Response, current_app, request

from appliance.model_catalogue import CatalogueError, load_catalogue
from appliance.model_fetch import ModelFetchError, fetch_models
from quart_app.app_settings import AppSettings
from quart_app.app_state import EnabledState
from quart_app.http_errors import json_message

log = logging.getLogger(__name__)

DISABLED_MESSAGE = "Context Chat is disabled, enable it from AppAPI to use it."
STATE_EXTENSION = "ccb_lifecycle"
P = ParamSpec("P")
R = TypeVar("R")


ReportFn = Callable[[int, str], Awaitable[None]]


class InitStatusReporter:
    """PUT /ocs/v1.php/apps/app_api/ex-app/status through nc_py_api; a failed report is logged, never raised."""

    def __init__(self, settings: AppSettings) -> None:
        self._settings = settings
        self._nc: Any = None

    async def __call__(self, progress: int, error: str = "") -> None:
        if not self._settings.nextcloud_url:
            log.warning("NEXTCLOUD_URL is not set; init progress %d%% is not reported to Nextcloud", progress)
            return
        try:
            if self._nc is None:
                from nc_py_api import AsyncNextcloudApp  # heavy import (FastAPI), only when reporting

                self._nc = AsyncNextcloudApp(
                    nextcloud_url=self._settings.nextcloud_url,
                    app_id=self._settings.app_id,
                    app_version=self._settings.app_version,
                    app_secret=self._settings.app_secret,
                    aa_version=self._settings.aa_version or "",
                    npa_nc_cert=self._settings.config.verify_ssl,
                )
            await self._nc.set_init_status(progress, error)
        except Exception as exc:  # Nextcloud being unreachable must not stop the fetch
            log.warning("could not report init progress %d%% to Nextcloud: %s", progress, type(exc).__name__)

    async def aclose(self) -> None:
        """Close nc_py_api's HTTP sessions (it has no public close)."""
        nc, self._nc = self._nc, None
        session = getattr(nc, "_session", None)
        for name in ("adapter", "adapter_dav"):
            adapter = getattr(session, name, None)
            if adapter is not None:
                await adapter.close()


class InitJob:
    """The one background task of POST /init; the app owns it and waits for it (then cancels) at shutdown."""

    def __init__(self, settings: AppSettings) -> None:
        self._settings = settings
        self._reporter = InitStatusReporter(settings)
        # set when the engine could not open for want of models: run after a successful fetch, before reporting 100
        self.after_fetch: Callable[[], Awaitable[None]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> bool:
        """Start fetching unless a fetch is already running; True when a new run started."""
        if self.running:
            log.info("POST /init while the model fetch is running; not starting a second one")
            return False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ccb-init")
        return True

    async def _run(self) -> None:
        try:
            progress, error = await asyncio.to_thread(self._fetch, asyncio.get_running_loop())
            if not error and self.after_fetch is not None:
                try:
                    await self.after_fetch()
                    self.after_fetch = None
                except Exception as exc:
                    log.exception("the engine did not open after the model fetch")
                    progress, error = 99, f"Init failed: the engine did not open: {type(exc).__name__}: {exc}"
                    self.last_error = error
            await self._reporter(progress, error)
        finally:
            await self._reporter.aclose()

    def _fetch(self, loop: asyncio.AbstractEventLoop) -> tuple[int, str]:
        """Runs in a worker thread; progress is reported on the loop as it goes; returns the final report."""
        last = 0

        def progress(percent: int) -> None:
            nonlocal last
            last = percent
            if percent < 100:
                asyncio.run_coroutine_threadsafe(self._reporter(percent, ""), loop).result()

        try:
            fetch_models(
                self._settings.config,
                self._settings.storage.model_dir,
                progress,
                stop=self._stop,
                catalogue=load_catalogue(self._settings.model_catalogue),
                verify_ssl=self._settings.config.verify_ssl,
            )
        except (ModelFetchError, CatalogueError) as exc:
            self.last_error = str(exc)
            log.error("init failed: %s", exc)
            return min(last, 99), str(exc)
        except Exception as exc:
            self.last_error = f"Init failed: {type(exc).__name__}: {exc}"
            log.exception("init failed")
            return min(last, 99), self.last_error
        self.last_error = None
        log.info("init finished: every model the config needs is present")
        return 100, ""

    async def close(self, timeout_s: float = 10.0) -> None:
        """Ask the fetch to stop, wait up to `timeout_s`, then cancel; idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            log.warning("model fetch did not stop within %g s; cancelling it", timeout_s)
            task.cancel()
        elif not task.cancelled() and task.exception() is not None:
            log.error("model fetch task ended with %r", task.exception())


class Lifecycle:
    """Per-app lifecycle state: the enabled flag and the init job."""

    def __init__(self, settings: AppSettings, init_job: InitJob | None = None) -> None:
        self.settings = settings
        self.enabled = EnabledState(settings.storage.state_file)
        self.init_job = init_job or InitJob(settings)

    @property
    def guard_active(self) -> bool:
        return not self.settings.config.disable_aaa and not self.enabled.enabled


def lifecycle() -> Lifecycle:
    state: Lifecycle = current_app.extensions[STATE_EXTENSION]
    return state


def require_enabled(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | Response]]:
    """Upstream's enabled guard: 503 until AppAPI enabled the app (off with disable_aaa)."""

    @functools.wraps(view)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        if lifecycle().guard_active:
            return json_message(DISABLED_MESSAGE, 503)
        return await view(*args, **kwargs)

    return guarded


blueprint = Blueprint("lifecycle", __name__)


@blueprint.get("/heartbeat")
async def heartbeat() -> Response:
    return json_message({"status": "ok"})


@blueprint.post("/init")
async def init() -> Response:
    lifecycle().init_job.start()
    return json_message({})


@blueprint.put("/enabled")
async def set_enabled() -> Response:
    raw = request.args.get("enabled", "")
    value = _parse_bool(raw)
    if value is None:
        detail = [{"type": "bool_parsing", "loc": ["query", "enabled"], "msg": "Input should be a valid boolean"}]
        return json_message({"detail": [{**detail[0], "input": raw}]}, 422)
    lifecycle().enabled.set(value)
    return json_message({"error": ""})


@blueprint.get("/enabled")
async def get_enabled() -> Response:
    return json_message({"enabled": lifecycle().enabled.enabled})


def _parse_bool(raw: str) -> bool | None:
    """FastAPI's bool query parsing: 1/0, true/false, yes/no, on/off."""
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on", "t", "y"):
        return True
    if lowered in ("0", "false", "no", "off", "f", "n"):
        return False
    return None

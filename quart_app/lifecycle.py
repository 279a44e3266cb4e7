"""AppAPI lifecycle: GET /heartbeat, POST /init (model fetch + progress to Nextcloud), PUT/GET /enabled, the guard."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from quart import Blueprint, Response, current_app, request

from appliance.model_catalogue import CatalogueError, load_catalogue
from appliance.model_fetch import ModelFetchError, fetch_models
from quart_app.app_settings import AppSettings
from quart_app.app_state import EnabledState
from quart_app.background_loops import BackgroundLoops, LoopHandle, backoff
from quart_app.daemon_thread import in_daemon_thread
from quart_app.engine_opening import OutageLog, service_away
from quart_app.http_errors import json_message
from quart_app.loop_lag import LoopLagMonitor
from quart_app.nextcloud import NextcloudClient, NextcloudError
from quart_app.stop_deadline import StopDeadline
from quart_app.store.database_outage import DatabaseReachability

log = logging.getLogger(__name__)

DISABLED_MESSAGE = "Context Chat is disabled, enable it from AppAPI to use it."
STATE_EXTENSION = "ccb_lifecycle"
INIT_STATUS_PATH = "/ocs/v1.php/apps/app_api/ex-app/status"
# the final init report is sent again after 2 s, 4 s, ... at most every minute while Nextcloud is away
REPORT_RETRY_BASE_S = 2.0
REPORT_RETRY_MAX_S = 60.0
# an engine that did not open after the fetch is tried again after 5 s, 10 s, 20 s, ... at most every 5 minutes
OPEN_RETRY_BASE_S = 5.0
OPEN_RETRY_MAX_S = 300.0
# while PostgreSQL or the embedding service cannot be reached, at most every 30 s (as the start-up's opening): it opens
# soon after its return
OPEN_OUTAGE_RETRY_MAX_S = 30.0
P = ParamSpec("P")
R = TypeVar("R")


class InitStatusReporter:
    """PUT /ocs/v1.php/apps/app_api/ex-app/status through the app's Nextcloud client; failures are logged only."""

    def __init__(self, nextcloud: NextcloudClient | None) -> None:
        self._nc = nextcloud

    async def __call__(self, progress: int, error: str = "") -> None:
        try:
            await self.send(progress, error)
        except NextcloudError as exc:  # Nextcloud being unreachable must not stop the fetch
            log.warning("could not report init progress %d%% to Nextcloud: %s", progress, type(exc).__name__)

    async def send(self, progress: int, error: str = "") -> None:
        """One report; NextcloudError when Nextcloud did not take it."""
        if self._nc is None:
            log.warning("NEXTCLOUD_URL is not set; init progress %d%% is not reported to Nextcloud", progress)
            return
        await self._nc.ocs("PUT", INIT_STATUS_PATH, json={"progress": progress, "error": error})


class InitJob:
    """The one background task of POST /init, run by the app's BackgroundLoops (stopped with the app)."""

    LOOP_NAME = "init"

    def __init__(
        self,
        settings: AppSettings,
        loops: BackgroundLoops,
        nextcloud: NextcloudClient | None = None,
        reachability: DatabaseReachability | None = None,
    ) -> None:
        self._settings = settings
        self._loops = loops
        # the app's record of a PostgreSQL outage: why an opening after the fetch failed, better than its own error
        self._reachability = reachability or DatabaseReachability()
        self._reporter = InitStatusReporter(nextcloud)
        # set when the engine could not open for want of models: run after a successful fetch, before reporting 100
        self.after_fetch: Callable[[], Awaitable[None]] | None = None
        self._stop = threading.Event()
        self.report_retry_base_s = REPORT_RETRY_BASE_S
        self.open_retry_base_s = OPEN_RETRY_BASE_S
        self.last_error: str | None = None
        # time.monotonic() when a fetch last ended with every model present
        self._fetched_at: float | None = None

    @property
    def running(self) -> bool:
        return self._loops.running(self.LOOP_NAME)

    def fetched_since(self, moment: float) -> bool:
        """Whether a fetch ended with every model present after `moment` (time.monotonic())."""
        return self._fetched_at is not None and self._fetched_at > moment

    def start(self) -> bool:
        """Start fetching unless a fetch is already running; True when a new run started."""
        if self.running:
            log.info("POST /init while the model fetch is running; not starting a second one")
            return False
        self._stop.clear()
        self._loops.start(self.LOOP_NAME, self._run, restart=False, on_stop=self._stop.set)
        return True

    async def _run(self, handle: LoopHandle) -> None:
        handle.status.set("running", "fetching the models the config needs")
        fetch = functools.partial(self._fetch, asyncio.get_running_loop())
        progress, error = await in_daemon_thread(fetch, "init-model-fetch")
        if not error and self.after_fetch is not None:
            if not await self._open_after_fetch(handle, self.after_fetch):
                log.warning("stopped before the engine opened after the model fetch")
                handle.status.set("stopped", "the app stopped before the engine opened")
                return
            self.after_fetch = None
        await self._report_final(handle, progress, error)
        handle.status.set("done" if not error else "failed", error)

    async def _open_after_fetch(self, handle: LoopHandle, open_engine: Callable[[], Awaitable[None]]) -> bool:
        """Open the engine, trying again after a growing pause: nothing else would open it before a restart, and a
        failure may pass (the database or a model file on shared storage away for a moment). Each new error is
        reported to Nextcloud at 99 %; False when the app stopped first."""
        attempt = 0
        reported = ""
        outages = OutageLog(log)
        while not handle.stopping.is_set():
            attempt += 1
            try:
                await open_engine()
            except Exception as exc:
                error = f"Init failed: the engine did not open: {type(exc).__name__}: {exc}"
                self.last_error = error
                # PostgreSQL or the embedding service away: as at start-up, an outage that passes by itself
                away = service_away(exc, self._reachability)
                longest = OPEN_OUTAGE_RETRY_MAX_S if away is not None else OPEN_RETRY_MAX_S
                pause = backoff(self.open_retry_base_s, longest, attempt)
                if away is None:
                    log.exception(
                        "the engine did not open after the model fetch (attempt %d); trying again in %g s",
                        attempt,
                        pause,
                    )
                    outages.forget()
                else:
                    retrying = f"Trying again in {pause:g} s, then after a growing pause (at most every {longest:g} s)"
                    outages.met(away, attempt, "the engine did not open after the model fetch", retrying)
                handle.status.set("backing_off", f"{error}; trying again in {pause:g} s")
                if error != reported:  # the same error again would only repeat itself in Nextcloud's log
                    await self._reporter(99, error)
                    reported = error
                await handle.sleep(pause)
                continue
            self.last_error = None
            return True
        return False

    async def _report_final(self, handle: LoopHandle, progress: int, error: str) -> None:
        """AppAPI enables the app only on the report of 100 and shows "initializing" until a final report arrives,
        so that one is sent again while Nextcloud is away (a repeated 100 is ignored by AppAPI), until the stop."""
        attempt = 0
        while True:
            try:
                await self._reporter.send(progress, error)
                return
            except NextcloudError as exc:
                attempt += 1
                if not exc.transient or handle.stopping.is_set():
                    log.warning("could not report init progress %d%% to Nextcloud: %s", progress, exc)
                    return
                pause = backoff(self.report_retry_base_s, REPORT_RETRY_MAX_S, attempt)
                log.warning(
                    "could not report init progress %d%% to Nextcloud (%s); trying again in %g s", progress, exc, pause
                )
                handle.status.set("reporting", f"init progress {progress}% not taken by Nextcloud yet: {exc}")
                await handle.sleep(pause)
                if handle.stopping.is_set():
                    log.warning("stopped before Nextcloud took init progress %d%%", progress)
                    return

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
                download=self._settings.download_models,
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
        self._fetched_at = time.monotonic()
        log.info("init finished: every model the config needs is present")
        return 100, ""


class Lifecycle:
    """Per-app lifecycle state: the enabled flag, the init job and the app's one Nextcloud client."""

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self.enabled = EnabledState(settings.storage.state_file)
        # the flag before any PUT /enabled here: by it the shared flag's loop (services/shared_enabled.py) tells this
        # replica's own changes from another replica's, also when the engine opens after AppAPI's PUT /enabled
        self.enabled_at_start = self.enabled.enabled
        self.nextcloud = nextcloud_client(settings)
        # one deadline for the whole stop: requests, loops and the engine's closers share it
        self.stop_deadline = StopDeadline()
        self.loops = BackgroundLoops(deadline=self.stop_deadline)
        # PostgreSQL as the engine's opening attempts and then its pool find it: GET /status shows it without an engine
        self.database = DatabaseReachability()
        self.init_job = InitJob(settings, self.loops, self.nextcloud, self.database)
        self.loop_lag = LoopLagMonitor()
        # how often a replica without POST /init looks for the models the requestproc replica fetched (tests shrink it)
        self.model_wait_s = 10.0
        # called with the new value after PUT /enabled (the pull loops wake, providers are unregistered)
        self.enabled_listeners: list[Callable[[bool], Awaitable[None]]] = []
        # set by the server on SIGTERM/SIGINT (quart_app/app_server.py), already during start-up
        self.stop_requested = asyncio.Event()

    def begin_stop(self) -> None:
        """At the stop signal: the stop's deadline starts, and the loops wind down while the requests finish."""
        self.stop_deadline.begin()
        self.loops.ask_to_stop()

    @property
    def guard_active(self) -> bool:
        return not self.settings.config.disable_aaa and not self.enabled.enabled


def nextcloud_client(settings: AppSettings) -> NextcloudClient | None:
    """The app's client for every call to Nextcloud; None when NEXTCLOUD_URL is not set (push-only use)."""
    if not settings.nextcloud_url:
        return None
    return NextcloudClient(
        settings.nextcloud_url,
        app_id=settings.app_id,
        app_version=settings.app_version,
        app_secret=settings.app_secret,
        aa_version=settings.aa_version,
        verify_ssl=settings.config.verify_ssl,
    )


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
    state = lifecycle()
    state.enabled.set(value)
    for listener in state.enabled_listeners:
        await listener(value)
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

"""The app factory behind `quart_app.create_app`: config, error shapes, blueprints, auth, lifespan resources."""

from __future__ import annotations

import logging
import time

from quart import Quart

from appliance.app_role import Duty, has_duty
from appliance.model_catalogue import ModelNotDownloadedError
from quart_app import engine as engine_module
from quart_app.app_logging import configure_logging
from quart_app.app_settings import AppSettings
from quart_app.asgi_body import StreamedBodyMiddleware
from quart_app.asgi_connection import RequestScopedConnection
from quart_app.auth import AppApiAuthMiddleware, passthrough_user
from quart_app.background_loops import LoopHandle, loop_detail
from quart_app.body_timeout import BodyTimeoutMiddleware
from quart_app.engine import ENGINE_EXTENSION, OPENING_EXTENSION, REACHABILITY_EXTENSION
from quart_app.engine_opening import EngineOpening, OutageLog, StageFn, StartUp, service_away
from quart_app.http_errors import register_error_handlers
from quart_app.lifecycle import STATE_EXTENSION, Lifecycle
from quart_app.lifecycle import blueprint as lifecycle_blueprint
from quart_app.loop_lag import LoopLagMonitor
from quart_app.request_ids import RequestIdMiddleware
from quart_app.routes import register_blueprints
from quart_app.routes.ingest import STREAMED_ROUTE
from quart_app.routes.status_page import PAGE_PATHS
from quart_app.runtimes.errors import EmbeddingServiceError
from quart_app.services.embedder_start import EmbedderStartWait
from quart_app.services.shared_enabled import SharedEnabled
from quart_app.services.source_spool import remove_leftovers
from quart_app.store.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# the PHP app waits up to 50 minutes for /loadSources and /query; Quart's 60 s defaults would cut them off
LONG_REQUEST_S = 60 * 60
MODEL_WAIT_LOOP = "engine_waits_for_models"


def build_app(settings: AppSettings | None = None) -> Quart:
    """The app; resources (DB pool, clients, workers, pools) open in before_serving and close in after_serving."""
    if settings is None:
        # the real process (quart_app/app_server.py), so it also sets up logging
        settings = AppSettings.from_env()
        configure_logging(settings.config.effective_log_level)
    app = Quart(__name__)
    # a request the server cancels (its graceful timeout at a stop) takes its handler with it
    app.asgi_http_class = RequestScopedConnection
    app.config.update(
        # every body Quart reads is JSON; /loadSources streams its own (StreamedBodyMiddleware, ingest.max_request_mb)
        MAX_CONTENT_LENGTH=settings.config.max_json_request_mb * MIB,
        BODY_TIMEOUT=LONG_REQUEST_S,
        RESPONSE_TIMEOUT=LONG_REQUEST_S,
        JSON_SORT_KEYS=False,
    )
    state = Lifecycle(settings)
    app.extensions[STATE_EXTENSION] = state
    app.extensions[REACHABILITY_EXTENSION] = state.database
    register_error_handlers(app)
    app.register_blueprint(lifecycle_blueprint)
    register_blueprints(app)

    app.asgi_app = StreamedBodyMiddleware(app.asgi_app, frozenset({STREAMED_ROUTE}))  # type: ignore[method-assign,assignment]
    # authentication wraps it: a refused upload is never streamed
    if settings.config.disable_aaa:
        app.asgi_app = passthrough_user(app.asgi_app)  # type: ignore[method-assign,assignment]
    else:
        app.asgi_app = AppApiAuthMiddleware(  # type: ignore[method-assign,assignment]
            app.asgi_app, settings.app_id, settings.app_secret, secret_paths=PAGE_PATHS
        )
    # outermost: a refused request's drained body is timed too
    app.asgi_app = BodyTimeoutMiddleware(app.asgi_app, settings.config.http.body_timeout_s)  # type: ignore[method-assign,assignment]
    # around everything: every request, refused or timed out as well, has an id on its log lines and its response
    app.asgi_app = RequestIdMiddleware(app.asgi_app)  # type: ignore[method-assign,assignment]

    if settings.config.disable_aaa:
        log.warning(
            "disable_aaa is true: AppAPI authentication and the enabled guard are OFF; anyone who can reach "
            "this port can read and change the index. Use this for development only."
        )
    elif not settings.app_secret:
        log.warning(
            "APP_SECRET is not set and %s does not exist: every signed request will be refused with 401; start"
            " through entrypoint.sh (it generates one) or set APP_SECRET",
            settings.storage.secret_file,
        )

    async def open_engine(stage: StageFn = lambda _step: None, embedder_start: EmbedderStartWait | None = None) -> None:
        opened = await engine_module.open_engine(
            settings,
            nextcloud=state.nextcloud,
            loops=state.loops,
            enabled=lambda: not state.guard_active,
            stage=stage,
            stop_deadline=state.stop_deadline,
            reachability=state.database,
            embedder_start=embedder_start,
        )
        app.extensions[ENGINE_EXTENSION] = opened
        if opened.pull is not None:
            state.enabled_listeners.append(opened.pull.enabled_changed)
        # PUT /enabled reaches one replica: the others follow it through the database
        shared_enabled = SharedEnabled(
            opened.db, state.enabled, state.enabled_listeners, started_with=state.enabled_at_start
        )
        state.enabled_listeners.append(shared_enabled.publish)
        state.loops.start(SharedEnabled.LOOP_NAME, shared_enabled.run)

    # the openings after start-up (POST /init's, the models' arrival) share one grace of their own for the embedding
    # service and tell the opening's status their steps: GET /status and the routes say what they wait for
    later_embedder_start: EmbedderStartWait | None = None

    async def open_later() -> None:
        nonlocal later_embedder_start
        if later_embedder_start is None:
            later_embedder_start = EmbedderStartWait(on_wait=opening.embedder_waits)
        try:
            await open_engine(lambda step: opening.status.set("opening", step), later_embedder_start)
        except Exception as exc:
            # an outage keeps its own wait on the routes (cc-retry); any other failure is no step still under way
            if service_away(exc, state.database) is None:
                opening.status.set("failed", loop_detail(exc))
            raise
        opening.status.set("opened")

    async def open_after_init() -> None:
        await open_later()
        log.info("engine opened after the model fetch")

    async def open_when_models_arrive(handle: LoopHandle) -> None:
        """A role AppAPI sends no POST /init (only the exposed requestproc gets it): look for the models the setup
        replica fetches into the shared storage every `state.model_wait_s`."""
        handle.status.set("waiting", "for the models the requestproc replica's POST /init fetches")
        outages = OutageLog(log)
        attempt = 0
        while not handle.stopping.is_set():
            await handle.sleep(state.model_wait_s)
            attempt += 1
            try:
                await open_later()
            except ModelNotDownloadedError:
                continue
            except (DatabaseUnavailableError, EmbeddingServiceError) as exc:
                away = service_away(exc, state.database)
                if away is None:
                    raise
                retrying = f"Trying again every {state.model_wait_s:g} s"
                outages.met(away, attempt, "the models are here, but the engine is not open", retrying)
                handle.status.set("waiting", f"for {away.what} (trying again in {state.model_wait_s:g} s)")
                continue
            log.info("engine opened: the models are in %s now", settings.storage.model_dir)
            handle.status.set("opened")
            return

    async def open_or_wait_for_models(stage: StageFn) -> bool:
        """One attempt; False when the models are missing: AppAPI's POST /init fetches them, then the engine opens."""
        began = time.monotonic()
        try:
            await open_engine(stage, embedder_start)
            return True
        except ModelNotDownloadedError as exc:
            if not has_duty(settings.role, Duty.SETUP):
                log.warning(
                    "%s; APP_ROLE=%s opens the engine once the requestproc replica's POST /init has fetched them",
                    exc,
                    settings.role,
                )
                stage("for the models the requestproc replica's POST /init fetches")
                state.loops.start(MODEL_WAIT_LOOP, open_when_models_arrive)
                return False
            if not state.init_job.fetched_since(began):
                log.warning("%s; the engine opens once POST /init has fetched the models", exc)
                stage("for POST /init to fetch the models")
                state.init_job.after_fetch = open_after_init
                return False
        # a POST /init served while this attempt ran has fetched them, too early to open the engine after it
        log.info("POST /init fetched the models while the engine was opening; opening it again")
        await open_engine(stage, embedder_start)
        return True

    opening = EngineOpening(open_or_wait_for_models, state.loops, reachability=state.database)
    # one grace for the start-up's attempts: once it has passed, an attempt meeting an embedding service that is
    # still away fails at once (the opening logged that outage once and tries again) instead of waiting it anew
    embedder_start = EmbedderStartWait(on_wait=opening.embedder_waits)

    @app.before_serving
    async def open_resources() -> None:
        settings.storage.ensure()
        leftovers = remove_leftovers(settings.storage.spool_dir)
        if leftovers:
            log.info("removed %d spool file(s) left by an earlier process in %s", leftovers, settings.storage.spool_dir)
        outcome = await opening.during_start_up(settings.config.http.start_up_wait_s, state.stop_requested)
        app.extensions[OPENING_EXTENSION] = opening.status
        if outcome is StartUp.STOPPED:
            log.info("stop requested during start-up: the engine was not opened")
            return
        if outcome is StartUp.STILL_OPENING:
            log.warning(
                "the engine has not opened within %g s (%s): the app serves /heartbeat, /init and /enabled while it"
                " goes on opening, and answers 503 + cc-retry on the other routes until then",
                settings.config.http.start_up_wait_s,
                opening.status.detail,
            )
        # started last: how long opening the engine blocked start-up is not a stall anyone waited for
        state.loops.start(LoopLagMonitor.LOOP_NAME, state.loop_lag.run)
        log.info(
            "app ready: app id %s, version %s, APP_ROLE %s, enabled %s",
            settings.app_id,
            settings.app_version,
            settings.role,
            state.enabled.enabled,
        )

    @app.after_serving
    async def close_resources() -> None:
        # loops first (they use the engine), then the engine, then the Nextcloud client both of them called
        await state.loops.close()
        opened = app.extensions.pop(ENGINE_EXTENSION, None)
        if opened is not None:
            await opened.close()
        if state.nextcloud is not None:
            await state.nextcloud.aclose()
        deadline = state.stop_deadline
        if deadline.begun:
            log.info("stopped %.2f s after the stop signal (budget %g s)", deadline.elapsed(), deadline.budget_s)

    return app

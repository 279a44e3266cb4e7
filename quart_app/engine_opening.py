"""The engine's opening, in a background loop that start-up waits for only so long.

AppAPI gives a deploy or an update 10 minutes to answer GET /heartbeat, and the server answers nothing before its
start-up ends. Opening the engine can take longer: the schema migrations wait for another replica's, and a migration
or a model change rewrites every chunk of a large index. So start-up waits for the first attempt up to
`http.start_up_wait_s`; past that the server starts, answering the lifecycle routes (and 503 + cc-retry with the step
under way on the others) while the opening goes on. An attempt that fails before the server starts fails start-up, as
it always did; one that fails later is tried again after a growing pause, since nothing would restart the process for
it.

PostgreSQL out of reach (DatabaseUnavailableError) is the exception: it passes by itself (the server is still starting,
restarting, or across a network cut), and an app that exits for it answers nothing (not even /heartbeat or GET
/status) while supervisord starts it again and again. So the server starts then too, the routes answer 503 + cc-retry
naming the outage, the outage is logged once with what to do, and the opening goes on trying. A llama.cpp or external
embedding service that stays unavailable past its start-up grace (services/embedder_start.py) is the same kind of
outage: it comes back by itself too (another container, a restarted server), and an app that exits for it would be
restarted by supervisord until FATAL, then find it back with nobody to open the engine. Start-up does not even wait
for its grace: at the first refused call the server starts, GET /status says the opening waits for the service, the
routes answer 503 + cc-retry, and the attempt goes on asking it. Any other failure (a bad config, a schema newer than
the code, pgvector missing, a service refusing our key before any refusal) still fails start-up loudly.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from quart_app.background_loops import (
    SHUTDOWN_GRACE_S,
    BackgroundLoops,
    LoopHandle,
    LoopStatus,
    backoff,
    loop_detail,
)
from quart_app.runtimes.errors import EmbeddingServiceError
from quart_app.store.database_outage import DatabaseReachability
from quart_app.store.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)

# an attempt that failed once the app served is tried again after 5 s, 10 s, 20 s, ... at most every 5 minutes
RETRY_BASE_S = 5.0
RETRY_MAX_S = 300.0
# while PostgreSQL or the embedding service cannot be reached, at most every 30 s: each attempt is a quiet wait of
# pgvector.connect_timeout_s for PostgreSQL, so the engine opens within seconds of its return, not up to 5 minutes later
OUTAGE_RETRY_MAX_S = 30.0
# what the opening's first log line of an outage says the app does meanwhile
SERVED_MEANWHILE = (
    "The app serves /heartbeat, /init, /enabled and GET /status, answers 503 + cc-retry on the other routes, and tries"
    " again in {pause:g} s, then after a growing pause (at most every {most:g} s); it opens by itself once {what}"
    " answers"
)

# the opening's step between attempts while the embedding service cannot be reached (the routes answer cc-retry then)
EMBEDDING_SERVICE = "the embedding service"
EMBEDDER_WAIT = f"for {EMBEDDING_SERVICE} ("
# the opening's step while it asks the embedding service for its model (quart_app/embedding_identity.py)
ASKING_EMBEDDER = "asking the embedding service for its model"

StageFn = Callable[[str], None]
# one attempt: True when the engine opened, False when it waits for the models (its last stage says for what)
OpenFn = Callable[[StageFn], Coroutine[Any, Any, bool]]


class StartUp(enum.Enum):
    """How start-up's wait for the engine ended."""

    OPENED = "opened"
    WAITING = "waiting for the models"
    DATABASE_AWAY = "waiting for PostgreSQL"
    EMBEDDER_AWAY = "waiting for the embedding service"
    STOPPED = "stopped"
    STILL_OPENING = "still opening"


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait for its end (its AsyncExitStack has closed what it opened; a migration rolled back).

    The cancel is sent again after each grace: asyncio.wait_for in 3.11 drops a cancel that meets its inner result
    (gh-86296), and psycopg_pool waits with it."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=SHUTDOWN_GRACE_S)


async def unless_stopped(work: Coroutine[Any, Any, bool], stop: asyncio.Event) -> bool | None:
    """`work`'s result (its exception is raised) unless `stop` is set first: then it is cancelled and awaited, and
    this returns None."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        cut_off = not task.done()
        await cancel_and_wait(task)
    if not cut_off:
        return task.result()
    if not task.cancelled() and task.exception() is not None:
        log.warning("the engine's opening, cancelled by the stop, ended with %r", task.exception())
    return None


@dataclass(frozen=True)
class ServiceAway:
    """A service the opening needs is out of reach: an outage that passes by itself, not a fault of the app."""

    # what GET /status says the opening waits for; the log lines' subject
    what: str
    subject: str
    cause: str
    # what an admin does about it
    fix: str
    start_up: StartUp


def service_away(exc: Exception, reachability: DatabaseReachability) -> ServiceAway | None:
    """The outage `exc` tells of, or None for a failure that does not pass by itself; `reachability` says why
    PostgreSQL is away better than the attempt's own error."""
    if isinstance(exc, DatabaseUnavailableError):
        outage = reachability.outage
        return ServiceAway(
            "PostgreSQL",
            "PostgreSQL",
            outage.reason if outage is not None else str(exc),
            "Start PostgreSQL (embedded: `python -m appliance ctl status postgres`, `ccb logs postgres`) or check"
            " the server EXTERNAL_DB (pgvector.connection) names and its credentials",
            StartUp.DATABASE_AWAY,
        )
    if isinstance(exc, EmbeddingServiceError) and exc.unavailable:
        return ServiceAway(
            EMBEDDING_SERVICE,
            "The embedding service",
            exc.message,
            "Start it (the local llama.cpp embedder: `ccb logs embedder`) or check embedding.base_url"
            " (CC_EM_BASE_URL) and that the service is up",
            StartUp.EMBEDDER_AWAY,
        )
    return None


class OutageLog:
    """The log lines of one loop meeting outages: an outage's cause once with what to do, then only a new cause of it
    (an outage is no bug: no traceback, and not a line per attempt)."""

    def __init__(self, logger: logging.Logger, first_level: int = logging.WARNING) -> None:
        self._log = logger
        self._first_level = first_level
        # what is away and its cause, as last logged
        self._logged: tuple[str, str] | None = None

    def met(self, away: ServiceAway, attempt: int, effect: str, meanwhile: str) -> None:
        """Log `away`, met by `attempt`: `effect` says what it stops, `meanwhile` what the app does until it is back."""
        if self._logged is None or self._logged[0] != away.what:
            self._log.log(
                self._first_level,
                "%s cannot be reached (%s): %s (attempt %d). %s. %s",
                away.subject,
                away.cause,
                effect,
                attempt,
                meanwhile,
                away.fix,
            )
        elif away.cause != self._logged[1]:
            self._log.warning("%s still cannot be reached, now: %s (attempt %d)", away.subject, away.cause, attempt)
        self._logged = (away.what, away.cause)

    def forget(self) -> None:
        """The next outage is logged in full again (another failure came between)."""
        self._logged = None


class EngineOpening:
    """Runs `open_engine` attempts in the loop `LOOP_NAME`; `status` says which step is under way."""

    LOOP_NAME = "engine_opening"

    def __init__(
        self,
        open_engine: OpenFn,
        loops: BackgroundLoops,
        retry_base_s: float = RETRY_BASE_S,
        reachability: DatabaseReachability | None = None,
        outage_retry_max_s: float = OUTAGE_RETRY_MAX_S,
    ) -> None:
        self._open = open_engine
        self._loops = loops
        self._retry_base_s = retry_base_s
        self._outage_retry_max_s = outage_retry_max_s
        # the app's record of the outage its attempts meet: its last error says why better than the attempt's own
        self._reachability = reachability or DatabaseReachability()
        self._first: asyncio.Future[StartUp] | None = None
        # replaced by the loop's own once during_start_up starts it
        self.status = LoopStatus(self.LOOP_NAME)

    async def during_start_up(self, serve_after_s: float, stop: asyncio.Event) -> StartUp:
        """Start opening and wait for the first attempt, up to `serve_after_s` or until `stop` is set; the first
        attempt's exception is raised here."""
        self._first = asyncio.get_running_loop().create_future()
        self.status = self._loops.start(self.LOOP_NAME, self._run, restart=False)
        stopping = asyncio.ensure_future(stop.wait())
        either: set[asyncio.Future[Any]] = {self._first, stopping}
        try:
            await asyncio.wait(either, timeout=serve_after_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if self._first.done():
            return self._first.result()
        # from here on the loop deals with what its attempts end in
        self._first.cancel()
        if stop.is_set():
            await self._loops.stop([self.LOOP_NAME])
            return StartUp.STOPPED
        return StartUp.STILL_OPENING

    def embedder_waits(self, cause: str | None) -> None:
        """An attempt's call to the embedding service was refused (`cause`), or it answered again (None): the status
        says so, and start-up ends at the first refusal instead of waiting out the service's start-up grace."""
        if cause is None:
            if self.status.state == "waiting" and self.status.detail.startswith(EMBEDDER_WAIT):
                self.status.set("opening", ASKING_EMBEDDER)
            return
        self.status.set("waiting", f"{EMBEDDER_WAIT}it does not answer yet: {cause}; asking it again)")
        if self._first is not None and not self._first.done():
            log.info("the app serves while the engine waits for the embedding service; it opens once that answers")
            self._first.set_result(StartUp.EMBEDDER_AWAY)

    async def _run(self, handle: LoopHandle) -> None:
        first = self._first
        assert first is not None, "EngineOpening._run runs only from during_start_up"

        def stage(step: str) -> None:
            handle.status.set("opening", step)

        attempt = 0
        outages = OutageLog(log, logging.ERROR)
        while not handle.stopping.is_set():
            attempt += 1
            try:
                opened = await unless_stopped(self._open(stage), handle.stopping)
            except Exception as exc:
                away = service_away(exc, self._reachability)
                if away is not None:
                    pause = backoff(self._retry_base_s, self._outage_retry_max_s, attempt)
                    served = SERVED_MEANWHILE.format(pause=pause, most=self._outage_retry_max_s, what=away.what)
                    outages.met(away, attempt, "the engine is not open", served)
                    handle.status.set("waiting", f"for {away.what} (trying again in {pause:g} s)")
                    if not first.done():
                        first.set_result(away.start_up)
                    await handle.sleep(pause)
                    continue
                detail = loop_detail(exc)
                if not first.done():
                    first.set_exception(exc)
                    handle.status.set("failed", detail)
                    return
                pause = backoff(self._retry_base_s, RETRY_MAX_S, attempt)
                log.exception("the engine did not open (attempt %d); trying again in %g s", attempt, pause)
                handle.status.set("failed", f"{detail}; trying again in {pause:g} s")
                await handle.sleep(pause)
                continue
            if opened is None:
                log.info("stopped while the engine was opening (attempt %d): what it had opened is closed", attempt)
                handle.status.set("stopped", "the app stopped before the engine opened")
                return
            if not first.done():
                first.set_result(StartUp.OPENED if opened else StartUp.WAITING)
            elif opened:
                log.info("engine opened after start-up (attempt %d): every route is served now", attempt)
            # not opened: the attempt's last step says what it waits for
            handle.status.set("opened" if opened else "waiting", "" if opened else handle.status.detail)
            return

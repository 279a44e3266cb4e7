"""The TaskProcessing loop: Context Chat chat and search tasks taken from Nextcloud and answered here.

The providers are registered while the app is enabled and the PHP app is 5.4+ (a PHP app <= 5.3 declares these
task types itself and answers them through our push routes). `POST /trigger` wakes the poller at once; a slower
polling fallback still runs, so a lost trigger costs at most `pull.task_poll_after_trigger_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from appliance.config import PullConfig
from quart_app.background_loops import LoopHandle, backoff
from quart_app.nextcloud import NextcloudClient, NextcloudError, NextcloudNotFoundError
from quart_app.pull.enriched_sources import EnrichedCandidates, Entry, as_task_output
from quart_app.pull.pull_gate import RESOLVE_SCOPE_PATH, PullGate
from quart_app.pull.queue_loop import deliver
from quart_app.pull.task_progress import TaskProgress, TaskWithdrawnError, unless_withdrawn
from quart_app.pull.task_types import (
    CHAT_TASK_TYPE,
    DEFAULT_SEARCH_LIMIT,
    NEXT_TASK_PATH,
    PROVIDER_PATH,
    REGISTRATIONS,
    RESULT_PATH,
    SEARCH_TASK_TYPE,
    next_task_body,
)
from quart_app.services.answer import MAX_CTX_LIMIT, AnswerService, titled_sources
from quart_app.services.errors import AnswerError, ContextError, PromptTooLongError, QuestionTooLongError
from quart_app.source_fields import text_problem
from quart_app.store import DatabaseUnavailableError
from quart_app.store.database_failure import log_failure

log = logging.getLogger(__name__)

SCOPE_TYPES = ("none", "source", "provider")
STOPPED_MESSAGE = "Context Chat was stopped before the answer was ready (an update or restart); please ask again"
# the template does not fit the LLM's context: the fix (n_ctx, max_tokens) is the admin's, and goes to the log
MISCONFIGURED_LLM_MESSAGE = (
    "Context Chat cannot answer: its language model is set up with too small a context for the prompt; please tell"
    " your administrator"
)
# one try for that failure report: the cancelled answer must end within the stop's grace (SHUTDOWN_GRACE_S)
STOPPED_RESULT_TIMEOUT_S = 1.0
# an answer the database's going away cut short is begun again this many times once it is back
DATABASE_OUTAGE_RETRIES = 2


class TaskInputError(ValueError):
    """The task's input does not fit its type (answered as upstream's 'Validation error: …')."""


class TaskPoller:
    """Run by BackgroundLoops as `tasks`; `trigger()` is POST /trigger."""

    def __init__(
        self,
        nextcloud: NextcloudClient,
        gate: PullGate,
        answers: AnswerService,
        config: PullConfig,
        readable_check_timeout_s: float,
    ) -> None:
        self._nc = nextcloud
        self._gate = gate
        self._answers = answers
        self._config = config
        # nextcloud.readable_check_timeout_s: a task's enrich_sources calls wait this long in all
        self._readable_check_timeout_s = readable_check_timeout_s
        self._wake = asyncio.Event()
        # once AppAPI has sent a /trigger, polling falls back to the slower interval
        self._triggered = False
        self.registered = False
        # a disable arriving while the loop registers must not leave `registered` True with the providers gone
        self._registration = asyncio.Lock()
        self._in_flight: set[asyncio.Task[None]] = set()

    def trigger(self) -> None:
        """A task was scheduled for one of our providers: poll now."""
        self._triggered = True
        self._wake.set()

    async def register(self) -> None:
        """Declare both providers and their task types (PHP app >= 5.4 no longer declares them)."""
        async with self._registration:
            for registration in REGISTRATIONS:
                await self._nc.ocs("POST", PROVIDER_PATH, json=registration)
            self.registered = True
        log.info("TaskProcessing providers registered: %s", ", ".join(r["provider"]["id"] for r in REGISTRATIONS))

    async def unregister(self) -> None:
        """Remove both providers (app disabled); a provider already gone is fine."""
        async with self._registration:
            self.registered = False
            for registration in REGISTRATIONS:
                with contextlib.suppress(NextcloudNotFoundError):
                    await self._nc.ocs("DELETE", PROVIDER_PATH, params={"name": registration["provider"]["id"]})
        log.info("TaskProcessing providers unregistered")

    async def run(self, handle: LoopHandle) -> None:
        # a search needs no LLM: slots of its own, so chats waiting minutes on the LLM never hold it up
        slots = {CHAT_TASK_TYPE: self._config.concurrent_tasks, SEARCH_TASK_TYPE: self._config.concurrent_search_tasks}
        busy: Counter[str] = Counter()
        slot_freed = asyncio.Event()

        def release(task_type: str, _answer: asyncio.Task[None]) -> None:
            busy[task_type] -= 1
            slot_freed.set()

        errors = 0
        try:
            while await self._gate.wait_open(handle):
                status = handle.status
                interval = self._config.task_poll_after_trigger_s if self._triggered else self._config.task_poll_s
                slot_freed.clear()
                free = [task_type for task_type, limit in slots.items() if busy[task_type] < limit]
                if not free:
                    await handle.sleep(interval, slot_freed)
                    continue
                try:
                    if not self.registered:
                        await self.register()
                    # before the poll: a trigger arriving while it is answered is for a task it may not have seen
                    self._wake.clear()
                    data = await self._nc.ocs("GET", NEXT_TASK_PATH, json=next_task_body(free))
                except NextcloudError as exc:
                    errors += 1
                    status.count("poll_errors")
                    status.set("backing_off", f"TaskProcessing poll failed: {exc}")
                    wait = backoff(self._config.error_backoff_s, self._config.error_backoff_max_s, errors)
                    await handle.sleep(exc.wait_before_retry(wait))
                    continue
                errors = 0
                task = data.get("task") if isinstance(data, dict) else None
                if not isinstance(task, dict):
                    status.set("idle", f"{len(self._in_flight)} task(s) in progress" if self._in_flight else "no tasks")
                    # a type left out of this poll for want of a slot is asked for as soon as one frees
                    await handle.sleep(interval, self._wake, self._gate.changed, slot_freed)
                    continue
                # Nextcloud hands out only the types asked for
                task_type = next((asked for asked in free if asked == task.get("type")), free[0])
                busy[task_type] += 1
                status.set("running", f"{len(self._in_flight) + 1} task(s) in progress")
                job = asyncio.get_running_loop().create_task(self._answer(task, handle), name=f"task-{task.get('id')}")
                self._in_flight.add(job)
                job.add_done_callback(self._in_flight.discard)
                job.add_done_callback(functools.partial(release, task_type))
        finally:
            await self._settle_answers()

    async def _settle_answers(self) -> None:
        """The answers in flight when the loop ends: waited for when it ends on its own (the app disabled), cancelled
        with it when it is cancelled (the stop's grace ran out), wherever the cancel found it (all slots busy, a poll)
        - the LLM's close would otherwise wait for them."""
        if not self._in_flight:
            return
        this = asyncio.current_task()
        if this is None or not this.cancelling():
            try:
                await asyncio.wait(set(self._in_flight))
                return
            except asyncio.CancelledError:
                await self._cancel_answers()
                raise
        await self._cancel_answers()

    async def _cancel_answers(self) -> None:
        answers = list(self._in_flight)
        for job in answers:
            job.cancel()
        await asyncio.gather(*answers, return_exceptions=True)

    async def _answer(self, task: dict[str, Any], handle: LoopHandle) -> None:
        task_id = task.get("id")
        output: dict[str, Any] | None = None
        error: str | None = None
        user_facing: str | None = None
        progress = TaskProgress(self._nc, task_id, self._config.task_progress_s)
        try:
            answering = asyncio.ensure_future(self._answer_through_outages(task, progress.prompt_ready, handle))
            output = await unless_withdrawn(answering, progress)
            handle.status.count("answered")
        except TaskWithdrawnError as exc:
            log.info("task %s (%s) was %s in Nextcloud: its answer is dropped", task_id, task.get("type"), exc)
            handle.status.count("withdrawn")
            return
        except asyncio.CancelledError:
            await self._report_stopped(task_id)
            raise
        except TaskInputError as exc:
            error = f"Validation error: {exc}"
        except QuestionTooLongError as exc:
            error = f"Validation error: {exc}"
            # only the user can shorten it
            user_facing = str(exc)
        except PromptTooLongError as exc:
            log.error("task %s cannot be answered until the LLM is reconfigured: %s", task_id, exc)
            error = f"Unexpected error{MISCONFIGURED_LLM_MESSAGE}"
            user_facing = MISCONFIGURED_LLM_MESSAGE
        except AnswerError as exc:
            # upstream's strings, without a separator ("Context errorNo documents retrieved, …")
            error = f"Context error{exc}"
            # Nextcloud 33+ shows this one to the user instead of the technical errorMessage
            user_facing = str(exc)
        except Exception as exc:
            error = f"Unexpected error{log_failure(log, f'task {task_id}', exc)}"
        if error is not None:
            handle.status.count("failed")
            log.warning("task %s (%s) failed: %s", task_id, task.get("type"), error)
        result = {"taskId": task_id, "output": output, "errorMessage": error, "userFacingErrorMessage": user_facing}
        path = RESULT_PATH.format(task_id=task_id)
        # a task the user deleted in the Assistant meanwhile answers 404: an ordinary end, not a lost result
        await deliver(
            self._nc, self._gate, "POST", path, result, self._config, handle, "result_failures", missing_is_gone=True
        )

    async def _answer_through_outages(
        self, task: dict[str, Any], prompt_ready: Callable[[], None], handle: LoopHandle
    ) -> dict[str, Any]:
        """`answer`, begun again once PostgreSQL is back when it went away meanwhile (at most DATABASE_OUTAGE_RETRIES
        times): a question taken as the database restarts is answered, not failed."""
        for retry in range(DATABASE_OUTAGE_RETRIES + 1):
            try:
                return await self.answer(task, prompt_ready)
            except DatabaseUnavailableError as exc:
                if retry == DATABASE_OUTAGE_RETRIES or await self._gate.wait_for_store(handle) is None:
                    raise
                log.info("task %s: the database went away during the answer (%s); answering again", task.get("id"), exc)
        raise AssertionError("unreachable: the last try returns or raises")

    async def _report_stopped(self, task_id: Any) -> None:
        """Fail a task whose answer the stop cut off: Nextcloud never fails a RUNNING task by itself, so without a
        result the user's question would show as running until Nextcloud deletes it (months)."""
        result = {
            "taskId": task_id,
            "output": None,
            "errorMessage": f"Unexpected error{STOPPED_MESSAGE}",
            "userFacingErrorMessage": STOPPED_MESSAGE,
        }
        try:
            async with asyncio.timeout(STOPPED_RESULT_TIMEOUT_S):
                await self._nc.ocs("POST", RESULT_PATH.format(task_id=task_id), json=result)
        except (NextcloudError, TimeoutError) as exc:
            log.warning("task %s was cut off by the stop and could not be failed in Nextcloud: %s", task_id, exc)

    async def answer(self, task: dict[str, Any], prompt_ready: Callable[[], None] | None = None) -> dict[str, Any]:
        """The output of a chat or search task, with enriched, unique sources; `prompt_ready` is called when a chat's
        context is retrieved and the LLM starts on the answer."""
        task_type = task.get("type")
        user_id = task.get("userId")
        raw = task.get("input")
        if not isinstance(user_id, str) or not user_id:
            raise TaskInputError("the task has no user")
        _check_storable("userId", user_id)
        if not isinstance(raw, dict):
            raise TaskInputError("the task input is not an object")
        prompt = raw.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise TaskInputError("prompt must be a non-empty text")
        _check_storable("prompt", prompt)
        # before the scope is resolved through Nextcloud: an oversized prompt costs nothing
        self._answers.check_question(prompt)
        scope_type, scope_list = await self._scope(user_id, raw)
        if task_type == CHAT_TASK_TYPE:
            # the check of the context keeps its entries: the answer's sources are among them, so no second call
            context = EnrichedCandidates(self._nc, self._readable_check_timeout_s)
            try:
                result = await self._answers.query(
                    user_id,
                    prompt,
                    scope_type=scope_type,
                    scope_list=scope_list,
                    ctx_limit=self._config.chat_context_chunks,
                    unreadable=context,
                    generating=prompt_ready,
                )
            except ContextError:
                # nothing to answer from because Nextcloud did not answer for some candidates: say so
                context.raise_if_left_out()
                raise
            return {"output": result["output"], "sources": as_task_output(context.entries_of(titled_sources(result)))}
        if task_type == SEARCH_TASK_TYPE:
            limit = _limit(raw.get("limit", DEFAULT_SEARCH_LIMIT))
            entries = await self._readable_documents(user_id, prompt, limit, scope_type, scope_list)
            return {"sources": as_task_output(entries)}
        raise TaskInputError(f"task type {task_type!r} is not {CHAT_TASK_TYPE} or {SEARCH_TASK_TYPE}")

    async def _readable_documents(
        self, user_id: str, prompt: str, limit: int, scope_type: str | None, scope_list: list[str] | None
    ) -> list[Entry]:
        """The enrich_sources entries of the best `limit` documents Nextcloud still shows the user: the files it
        reports missing, and the candidates of a round whose call failed, are left out and further candidates asked
        about in their place, as push mode's /docSearch fills (AnswerService.doc_search), so an unshare the PHP app
        did not queue does not shorten the list."""
        candidates = EnrichedCandidates(self._nc, self._readable_check_timeout_s)
        found = await self._answers.doc_search(
            user_id, prompt, limit, scope_type=scope_type, scope_list=scope_list, unreadable=candidates
        )
        if not found:
            # an empty list would say nothing matches, when Nextcloud did not answer for some candidates
            candidates.raise_if_left_out()
        return candidates.entries_of(found)

    async def _scope(self, user_id: str, raw: dict[str, Any]) -> tuple[str | None, list[str] | None]:
        scope_type = raw.get("scopeType") or "none"
        if scope_type not in SCOPE_TYPES:
            raise TaskInputError(f"scopeType must be one of {', '.join(SCOPE_TYPES)}, not {scope_type!r}")
        if scope_type == "none":
            return None, None
        scope_list = raw.get("scopeList")
        if not isinstance(scope_list, list) or not all(isinstance(item, str) for item in scope_list) or not scope_list:
            raise TaskInputError(f"scopeList must be a non-empty list of texts for scopeType {scope_type!r}")
        for item in scope_list:
            _check_storable("scopeList", item)
        if scope_type == "source":
            # folders become the files in them
            data = await self._nc.ocs("POST", RESOLVE_SCOPE_PATH, json={"source_ids": scope_list, "userId": user_id})
            resolved = data.get("source_ids") if isinstance(data, dict) else None
            if not isinstance(resolved, list):
                raise TaskInputError("resolve_scope_list answered without source_ids")
            return "source", [str(item) for item in resolved]
        return "provider", list(scope_list)


def _check_storable(field: str, value: str) -> None:
    # PostgreSQL text cannot hold NUL nor UTF-8 a lone surrogate: the search would fail there, not name the field
    if problem := text_problem(value):
        raise TaskInputError(f"{field} {problem}")


def _limit(raw: Any) -> int:
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise TaskInputError(f"limit must be a number, not {raw!r}") from None
    if not 1 <= limit <= MAX_CTX_LIMIT:
        raise TaskInputError(f"limit must be between 1 and {MAX_CTX_LIMIT}, not {limit}")
    return limit

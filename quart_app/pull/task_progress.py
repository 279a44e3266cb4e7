"""Progress reports of a task being answered, and what Nextcloud's answer to them says: the user cancelled or
deleted the task meanwhile.

Nextcloud 34 answers `POST …/tasks_provider/{id}/progress` with the task, whose status stays STATUS_CANCELLED once the
user cancelled it (Manager::setTaskProgress), and 404 once it was deleted; nothing else tells a provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from quart_app.nextcloud import NextcloudClient, NextcloudError, NextcloudNotFoundError
from quart_app.pull.task_types import EXPECTED_RUNTIME_S, PROGRESS_PATH

log = logging.getLogger(__name__)

CANCELLED = "STATUS_CANCELLED"
# while the context is retrieved
RETRIEVING_PROGRESS = 0.1
# once the prompt is with the LLM; from there the progress grows toward GENERATED_PROGRESS, never reaching it
PROMPT_READY_PROGRESS = 0.2
GENERATED_PROGRESS = 0.9


class TaskWithdrawnError(Exception):
    """The user cancelled or deleted the task in Nextcloud: nobody waits for its answer any more."""


class TaskProgress:
    """One task's reports: every `interval_s`, and once the prompt is ready (`prompt_ready()`)."""

    def __init__(self, nextcloud: NextcloudClient, task_id: Any, interval_s: float) -> None:
        self._nc = nextcloud
        self._task_id = task_id
        self._path = PROGRESS_PATH.format(task_id=task_id)
        self._interval_s = interval_s
        self._prompt_ready = asyncio.Event()
        self._prompt_ready_at = 0.0
        # held while a report is on its way (see unless_withdrawn)
        self.reporting = asyncio.Lock()

    def prompt_ready(self) -> None:
        """The context is retrieved and the LLM starts on the answer."""
        self._prompt_ready_at = time.monotonic()
        self._prompt_ready.set()

    def _progress(self) -> float:
        if not self._prompt_ready.is_set():
            return RETRIEVING_PROGRESS
        generating_s = time.monotonic() - self._prompt_ready_at
        share = generating_s / (generating_s + EXPECTED_RUNTIME_S)
        return round(PROMPT_READY_PROGRESS + (GENERATED_PROGRESS - PROMPT_READY_PROGRESS) * share, 3)

    async def until_withdrawn(self) -> str:
        """Report until Nextcloud says the task is cancelled or gone; returns which (cancel this to stop reporting)."""
        prompt_ready_reported = False
        while True:
            if prompt_ready_reported:
                await asyncio.sleep(self._interval_s)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval_s):
                        await self._prompt_ready.wait()
                prompt_ready_reported = self._prompt_ready.is_set()
            withdrawn = await self._report()
            if withdrawn is not None:
                return withdrawn

    async def _report(self) -> str | None:
        body = {"taskId": self._task_id, "progress": self._progress()}
        try:
            async with self.reporting:
                data = await self._nc.ocs("POST", self._path, json=body)
        except NextcloudNotFoundError:
            return "deleted"
        except NextcloudError as exc:
            # a lost report costs nothing: the next one follows within the interval
            log.debug("progress of task %s not reported: %s", self._task_id, exc)
            return None
        task = data.get("task") if isinstance(data, dict) else None
        if isinstance(task, dict) and task.get("status") == CANCELLED:
            return "cancelled"
        return None


async def unless_withdrawn(answering: asyncio.Future[dict[str, Any]], progress: TaskProgress) -> dict[str, Any]:
    """The answer, unless Nextcloud says first that its task was cancelled or deleted: the answer is then cancelled
    (its LLM call with it) and TaskWithdrawnError raised."""
    watching = asyncio.ensure_future(progress.until_withdrawn())
    try:
        await asyncio.wait((answering, watching), return_when=asyncio.FIRST_COMPLETED)
        if answering.done():
            # a report still on its way ends first: handled after the result, it would make the task RUNNING again
            async with progress.reporting:
                watching.cancel()
            return answering.result()
        raise TaskWithdrawnError(watching.result())
    finally:
        answering.cancel()
        watching.cancel()
        # the LLM's own cancel (nc_texttotext cancels its core:text2text task) ends before the slot is freed
        await asyncio.gather(answering, watching, return_exceptions=True)

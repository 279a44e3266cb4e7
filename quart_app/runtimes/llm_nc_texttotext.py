"""The nc_texttotext backend: Nextcloud TaskProcessing core:text2text, scheduled for the asking user and polled.

Every call goes through the app's one NextcloudClient (quart_app.nextcloud), signed as the asking user.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from appliance.llm_config import NcTextToTextConfig
from quart_app.nextcloud import (
    NextcloudClient,
    NextcloudError,
    NextcloudNotFoundError,
    NextcloudRateLimitedError,
    NextcloudUnreachableError,
)
from quart_app.runtimes.code_fences import closing_fence
from quart_app.runtimes.errors import LlmError, LlmTaskFailedError, LlmUnavailableError
from quart_app.runtimes.llm_backend import approximate_token_count, cut_at_stop

log = logging.getLogger(__name__)

SCHEDULE_PATH = "/ocs/v1.php/taskprocessing/schedule"
TASK_PATH = "/ocs/v1.php/taskprocessing/task/{task_id}"
CANCEL_PATH = "/ocs/v1.php/taskprocessing/tasks/{task_id}/cancel"
# one try to cancel a task given up on: a cancelled question must end quickly (the app's stop grace is 3 s)
CANCEL_TIMEOUT_S = 1.0
TASK_TYPE = "core:text2text"
DEFAULT_APP_ID = "context_chat_backend"
NO_PROVIDER_MESSAGE = (
    "Nextcloud has no text-to-text provider for TaskProcessing (HTTP 412 for core:text2text). No such provider is"
    " installed: please install integration_openai, llm2 or another app providing core:text2text, or choose another"
    " llm backend (llama, extractive) in config.yaml"
)
NO_TASKPROCESSING_MESSAGE = (
    "Nextcloud has no TaskProcessing API (HTTP 404 for /ocs/v1.php/taskprocessing/schedule): it is older than 28 or"
    " NEXTCLOUD_URL points elsewhere; choose another llm backend (llama, extractive) in config.yaml"
)
SUCCESSFUL = "STATUS_SUCCESSFUL"
STOPPED = {"STATUS_FAILED": "failed", "STATUS_CANCELLED": "was cancelled"}


class NcTextToTextBackend:
    """Stateless apart from config; concurrent calls are independent Nextcloud tasks."""

    name = "nc_texttotext"

    def __init__(
        self,
        config: NcTextToTextConfig,
        nextcloud: NextcloudClient | None,
        *,
        app_id: str = DEFAULT_APP_ID,
        retry_after_s: float = 10.0,
        schedule_attempts: int = 3,
    ) -> None:
        self._config = config
        self._nc = nextcloud
        self._app_id = app_id
        self._retry_after_s = retry_after_s
        self._schedule_attempts = schedule_attempts

    @property
    def n_ctx(self) -> int:
        return self._config.n_ctx

    @property
    def max_tokens(self) -> int:
        return self._config.max_tokens

    def count_tokens(self, text: str) -> int:
        """The model behind Nextcloud is unknown: the documented over-estimate (approximate_token_count)."""
        return approximate_token_count(text)

    def plain_text(self, text: str) -> str:
        """As it is: the model behind Nextcloud is unknown, and its provider builds the chat around our prompt."""
        return text

    async def generate(self, prompt: str, user_id: str, stop: Sequence[str] = ()) -> str:
        if self._nc is None:
            raise LlmUnavailableError(
                "llm: nc_texttotext cannot reach Nextcloud: NEXTCLOUD_URL is not set. Set NEXTCLOUD_URL, APP_ID,"
                " APP_SECRET and APP_VERSION (AppAPI sets them when it deploys the ExApp), or choose another llm"
                " backend"
            )
        deadline = time.monotonic() + self._config.timeout_s
        task_id: int | None = None
        try:
            # the polling loop checks the deadline; this also bounds a single hanging HTTP call
            async with asyncio.timeout(self._config.timeout_s):
                task_id = await self._schedule(self._nc, prompt, user_id, deadline)
                output = await self._wait(self._nc, task_id, user_id, deadline)
        except TimeoutError:
            await self._cancel(self._nc, task_id, user_id)
            which = f"task {task_id}" if task_id is not None else "task (still being scheduled)"
            raise LlmTaskFailedError(
                f"the Nextcloud text-to-text {which} did not finish within {self._config.timeout_s:g} s"
                " (llm.nc_texttotext.timeout_s); the provider may be overloaded"
            ) from None
        except asyncio.CancelledError:
            await self._cancel(self._nc, task_id, user_id)
            raise
        answer = cut_at_stop(output, stop).strip()
        # the provider's own max_tokens may have cut the answer inside a code block
        return answer + closing_fence(answer)

    async def _cancel(self, nc: NextcloudClient, task_id: int | None, user_id: str) -> None:
        """Cancel a task given up on: left running, it still takes the provider's time, ahead of the next question."""
        if task_id is None:
            return
        try:
            async with asyncio.timeout(CANCEL_TIMEOUT_S):
                await nc.ocs("POST", CANCEL_PATH.format(task_id=task_id), user=user_id)
        except (NextcloudError, TimeoutError) as exc:
            log.warning("could not cancel the abandoned Nextcloud task %d: %s", task_id, exc)

    async def _schedule(self, nc: NextcloudClient, prompt: str, user_id: str, deadline: float) -> int:
        body = {"type": TASK_TYPE, "appId": self._app_id, "input": {"input": prompt}}
        for attempt in range(1, self._schedule_attempts + 1):
            try:
                data = await nc.ocs("POST", SCHEDULE_PATH, user=user_id, json=body)
                return int(data["task"]["id"])
            except NextcloudUnreachableError as exc:
                raise LlmUnavailableError(
                    f"llm: nc_texttotext cannot reach Nextcloud at {nc.shown_url} ({exc}); check NEXTCLOUD_URL"
                    " and that Nextcloud is up"
                ) from None
            except NextcloudError as exc:
                # TaskProcessing answers 412 when no provider serves the task type
                if exc.status == 412:
                    raise LlmUnavailableError(NO_PROVIDER_MESSAGE) from None
                if isinstance(exc, NextcloudNotFoundError):
                    raise LlmUnavailableError(NO_TASKPROCESSING_MESSAGE) from None
                if not isinstance(exc, NextcloudRateLimitedError) or attempt == self._schedule_attempts:
                    raise LlmError(
                        f"Nextcloud refused to schedule the {TASK_TYPE} task (HTTP {exc.status}"
                        f"{', rate limited ' + str(attempt) + ' times' if exc.status == 429 else ''}); see the"
                        " Nextcloud log"
                    ) from None
                # Nextcloud's Retry-After when it asks for longer than our backoff (bounded there and by the deadline)
                wait = exc.wait_before_retry(self._retry_after_s * attempt)
                log.warning("TaskProcessing rate limit (429); retrying in %.1f s (attempt %d)", wait, attempt)
                await self._sleep_until(wait, deadline)
        raise AssertionError("unreachable")

    async def _wait(self, nc: NextcloudClient, task_id: int, user_id: str, deadline: float) -> str:
        while True:
            try:
                task = (await nc.ocs("GET", TASK_PATH.format(task_id=task_id), user=user_id))["task"]
            except NextcloudNotFoundError:
                raise LlmTaskFailedError(f"the Nextcloud task {task_id} disappeared (404) before it finished") from None
            except NextcloudError as exc:
                if not exc.transient:
                    # a refusal (401/403/412, a closed client) does not pass by waiting; the task would run on unread
                    await self._cancel(nc, task_id, user_id)
                    raise LlmError(
                        f"Nextcloud refused to report the {TASK_TYPE} task {task_id}: {exc}; see the Nextcloud log"
                    ) from None
                # a transient error (timeout, 429, 5xx, connection): the task keeps running, so keep polling
                log.warning("polling Nextcloud task %d failed (%s); retrying", task_id, type(exc).__name__)
                task = None
            if task is not None:
                status = str(task.get("status"))
                if status == SUCCESSFUL:
                    output = (task.get("output") or {}).get("output")
                    if not isinstance(output, str):
                        raise LlmTaskFailedError(f"the Nextcloud task {task_id} succeeded without a text output")
                    return output
                if status in STOPPED:
                    reason = task.get("errorMessage") or "no reason given"
                    raise LlmTaskFailedError(f"the Nextcloud task {task_id} {STOPPED[status]}: {reason}")
            await self._sleep_until(self._config.poll_interval_s, deadline)

    async def _sleep_until(self, seconds: float, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            # generate() names the timeout (and cancels the task)
            raise TimeoutError
        await asyncio.sleep(min(seconds, remaining))

    async def aclose(self) -> None:
        return None

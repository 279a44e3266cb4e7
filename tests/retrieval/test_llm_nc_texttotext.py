"""nc_texttotext against a local OCS server over real sockets, through the app's NextcloudClient."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator

import pytest
from async_wait import wait_until
from fake_nextcloud import FakeNextcloud, TaskScript

from appliance.llm_config import NcTextToTextConfig
from quart_app.nextcloud import NextcloudClient
from quart_app.runtimes.errors import LlmError, LlmTaskFailedError, LlmUnavailableError
from quart_app.runtimes.llm_nc_texttotext import NO_PROVIDER_MESSAGE, NcTextToTextBackend


@pytest.fixture
def nextcloud() -> Iterator[FakeNextcloud]:
    with FakeNextcloud() as server:
        yield server


@pytest.fixture
async def nc(nextcloud: FakeNextcloud) -> AsyncIterator[NextcloudClient]:
    client = nextcloud_client(nextcloud.url)
    yield client
    await client.aclose()


def nextcloud_client(url: str) -> NextcloudClient:
    return NextcloudClient(url, app_id="context_chat_backend", app_version="4.0.0", app_secret="test-secret")


def backend(nc: NextcloudClient | None, timeout_s: float = 10.0) -> NcTextToTextBackend:
    config = NcTextToTextConfig(timeout_s=timeout_s, poll_interval_s=0.05)
    return NcTextToTextBackend(config, nc, retry_after_s=0.05)


async def test_schedules_text2text_for_the_user_and_returns_the_output(
    nextcloud: FakeNextcloud, nc: NextcloudClient
) -> None:
    nextcloud.task = TaskScript(statuses=["STATUS_SCHEDULED", "STATUS_RUNNING", "STATUS_SUCCESSFUL"], output=" Hi.\n")
    answer = await backend(nc).generate("the prompt", "alice")
    assert answer == "Hi."
    schedule = next(r for r in nextcloud.requests if r.path.endswith("/schedule"))
    assert schedule.body == {
        "type": "core:text2text",
        "appId": "context_chat_backend",
        "input": {"input": "the prompt"},
    }
    auth = base64.b64decode(schedule.headers["authorization-app-api"]).decode()
    assert auth == "alice:test-secret"
    assert schedule.headers["ex-app-id"] == "context_chat_backend"
    assert nextcloud.paths("GET").count("/ocs/v1.php/taskprocessing/task/41") == 3


async def test_output_is_cut_at_the_stop_string(nextcloud: FakeNextcloud, nc: NextcloudClient) -> None:
    nextcloud.task = TaskScript(output="answer<|im_end|>garbage")
    assert await backend(nc).generate("p", "alice", stop=["<|im_end|>"]) == "answer"


@pytest.mark.parametrize(
    "output",
    ["Run:\n```sh\nocc files:scan --all", "Run:\n```sh\nocc files:scan --all\n<|im_end|>garbage\n```"],
    ids=["cut-by-the-provider", "cut-at-the-stop-string"],
)
async def test_a_code_block_the_answer_leaves_open_is_closed(
    nextcloud: FakeNextcloud, nc: NextcloudClient, output: str
) -> None:
    """Left open, the Assistant renders everything after the answer as code."""
    nextcloud.task = TaskScript(output=output)
    answer = await backend(nc).generate("p", "alice", stop=["<|im_end|>"])
    assert answer == "Run:\n```sh\nocc files:scan --all\n```"


@pytest.mark.parametrize("in_envelope", [False, True])
async def test_412_says_no_provider_is_installed(
    nextcloud: FakeNextcloud, nc: NextcloudClient, in_envelope: bool
) -> None:
    nextcloud.schedule_errors.append(412)
    nextcloud.schedule_error_in_envelope = in_envelope
    with pytest.raises(LlmUnavailableError) as info:
        await backend(nc).generate("p", "alice")
    assert str(info.value) == NO_PROVIDER_MESSAGE
    assert "integration_openai" in str(info.value) and "llm2" in str(info.value)
    assert nextcloud.paths("POST") == ["/ocs/v1.php/taskprocessing/schedule"]  # no retry


async def test_429_backs_off_and_retries(nextcloud: FakeNextcloud, nc: NextcloudClient) -> None:
    nextcloud.schedule_errors.extend([429, 429])
    assert await backend(nc).generate("p", "alice") == "generated answer"
    assert nextcloud.paths("POST").count("/ocs/v1.php/taskprocessing/schedule") == 3


async def test_429_waits_as_long_as_its_retry_after_asks(nextcloud: FakeNextcloud, nc: NextcloudClient) -> None:
    nextcloud.schedule_errors.append(429)
    nextcloud.schedule_retry_after = "1"
    assert await backend(nc).generate("p", "alice") == "generated answer"
    scheduled = [r.at for r in nextcloud.requests if r.path.endswith("/schedule")]
    # before: asked again after our own backoff (0.05 s here) while Nextcloud said to wait 1 s
    assert len(scheduled) == 2 and scheduled[1] - scheduled[0] >= 0.9, scheduled


async def test_429_every_time_gives_up_with_a_message(nextcloud: FakeNextcloud, nc: NextcloudClient) -> None:
    nextcloud.schedule_errors.extend([429] * 5)
    with pytest.raises(LlmError, match=r"HTTP 429, rate limited 3 times"):
        await backend(nc).generate("p", "alice")


@pytest.mark.parametrize(("status", "words"), [("STATUS_FAILED", "failed"), ("STATUS_CANCELLED", "was cancelled")])
async def test_failed_or_cancelled_task_stops_at_once(
    nextcloud: FakeNextcloud, nc: NextcloudClient, status: str, words: str
) -> None:
    nextcloud.task = TaskScript(statuses=["STATUS_RUNNING", status], error_message="provider crashed")
    with pytest.raises(LlmTaskFailedError, match=f"task 41 {words}: provider crashed"):
        await backend(nc, timeout_s=30).generate("p", "alice")
    assert nextcloud.paths("GET").count("/ocs/v1.php/taskprocessing/task/41") == 2


async def test_transient_poll_errors_are_retried(nextcloud: FakeNextcloud, nc: NextcloudClient) -> None:
    nextcloud.task = TaskScript(poll_errors=[500, 429, 502])
    assert await backend(nc).generate("p", "alice") == "generated answer"


async def test_a_task_that_never_finishes_times_out(nextcloud: FakeNextcloud, nc: NextcloudClient) -> None:
    nextcloud.task = TaskScript(statuses=["STATUS_RUNNING"])
    with pytest.raises(LlmTaskFailedError, match=r"did not finish within 0.3 s \(llm.nc_texttotext.timeout_s\)"):
        await backend(nc, timeout_s=0.3).generate("p", "alice")


async def test_missing_nextcloud_url_is_named() -> None:
    with pytest.raises(LlmUnavailableError, match=r"NEXTCLOUD_URL is not set. Set NEXTCLOUD_URL, APP_ID, APP_SECRET"):
        await backend(None).generate("p", "alice")


async def test_unreachable_nextcloud_is_a_clear_error() -> None:
    with FakeNextcloud() as server:
        url = server.url
    client = nextcloud_client(url)  # the server is gone: connection refused
    try:
        with pytest.raises(LlmError, match=r"cannot reach Nextcloud at http://127.0.0.1:\d+ .*check NEXTCLOUD_URL"):
            await backend(client).generate("p", "alice")
    finally:
        await client.aclose()


async def test_a_password_in_nextcloud_url_is_not_in_the_unreachable_error() -> None:
    with FakeNextcloud() as server:
        url = server.url.replace("http://", "http://admin:proxy-pw-77@")
    client = nextcloud_client(url)  # the server is gone: connection refused
    try:
        with pytest.raises(LlmError) as raised:
            await backend(client).generate("p", "alice")
    finally:
        await client.aclose()
    assert "cannot reach Nextcloud at http://admin:***@127.0.0.1:" in str(raised.value)
    assert "proxy-pw-77" not in str(raised.value)


async def test_a_nextcloud_without_taskprocessing_is_unavailable_not_a_failure(
    nextcloud: FakeNextcloud, nc: NextcloudClient
) -> None:
    nextcloud.schedule_errors.append(404)
    with pytest.raises(LlmUnavailableError, match=r"Nextcloud has no TaskProcessing API \(HTTP 404"):
        await backend(nc).generate("p", "alice")


async def test_a_task_given_up_on_is_cancelled_in_nextcloud(nextcloud: FakeNextcloud, nc: NextcloudClient) -> None:
    """Left running, the abandoned task still took the provider's time, ahead of the next question's."""
    nextcloud.task = TaskScript(statuses=["STATUS_RUNNING"])
    with pytest.raises(LlmTaskFailedError, match="did not finish within"):
        await backend(nc, timeout_s=0.3).generate("p", "alice")
    assert nextcloud.cancelled == [41]
    cancel = next(r for r in nextcloud.requests if r.path.endswith("/cancel"))
    assert cancel.path == "/ocs/v1.php/taskprocessing/tasks/41/cancel"
    assert base64.b64decode(cancel.headers["authorization-app-api"]).decode() == "alice:test-secret"
    # the question itself cancelled (the asker went away, the app stops)
    answer = asyncio.create_task(backend(nc).generate("p", "bob"))

    async def polled() -> bool:
        return "/ocs/v1.php/taskprocessing/task/42" in nextcloud.paths("GET")

    await wait_until(polled, "the second task polled", timeout_s=10)
    answer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await answer
    assert nextcloud.cancelled == [41, 42]


@pytest.mark.parametrize("status", [401, 403, 412])
async def test_a_permanent_poll_refusal_fails_the_question_at_once(
    nextcloud: FakeNextcloud, nc: NextcloudClient, status: int
) -> None:
    """Retried like a 5xx, a refusal held the question until llm.nc_texttotext.timeout_s (30 minutes by default)."""
    nextcloud.task = TaskScript(poll_errors=[status] * 1000)  # as long as the user stays disabled or the secret wrong
    async with asyncio.timeout(5):
        with pytest.raises(LlmError, match=rf"Nextcloud refused to report the core:text2text task 41: .* {status}"):
            await backend(nc, timeout_s=1800).generate("p", "alice")
    assert nextcloud.paths("GET").count("/ocs/v1.php/taskprocessing/task/41") == 1
    assert nextcloud.cancelled == [41]  # left running, it would still take the provider's time

"""Pull-mode settings: upstream's names and defaults, our pull section's defaults, and the backoff they drive."""

from __future__ import annotations

import pytest

from appliance.config import parse_config
from appliance.errors import ConfigError
from quart_app.background_loops import backoff


def test_upstream_pull_keys_and_their_defaults() -> None:
    config = parse_config({}, "t", environ={})
    assert (config.doc_indexing_batch_size, config.actions_batch_size, config.concurrent_file_fetches) == (32, 512, 10)
    upstream = parse_config(
        {
            "doc_indexing_batch_size": 64,
            "actions_batch_size": 100,
            "concurrent_file_fetches": 4,
            "file_parsing_cpu_count": -1,
        },
        "t",
        environ={},
    )
    assert (upstream.doc_indexing_batch_size, upstream.actions_batch_size, upstream.concurrent_file_fetches) == (
        64,
        100,
        4,
    )


def test_pull_defaults_are_pinned() -> None:
    pull = parse_config({}, "t", environ={}).pull
    assert (pull.idle_poll_s, pull.idle_poll_max_s) == (2.0, 30.0)
    assert (pull.error_backoff_s, pull.error_backoff_max_s) == (5.0, 120.0)
    assert pull.recheck_unavailable_s == 300.0
    assert (pull.fetch_attempts, pull.fetch_backoff_s, pull.fetch_backoff_max_s) == (5, 2.0, 30.0)
    assert (pull.task_poll_s, pull.task_poll_after_trigger_s, pull.concurrent_tasks) == (5.0, 30.0, 2)
    assert (pull.concurrent_search_tasks, pull.task_progress_s) == (2, 5.0)
    assert (pull.chat_context_chunks, pull.result_attempts) == (30, 5)
    # a file failing all those tries is tried again 10 min, 1 h and 6 h later (then once before its 24 h lock ends)
    assert pull.retry_later_s == [600.0, 3600.0, 21600.0]
    # a file being saved (context_chat#264) gets 2 + 4 + 8 + 16 = 30 s of retries before it is left locked
    assert [backoff(pull.fetch_backoff_s, pull.fetch_backoff_max_s, n) for n in range(1, 6)] == [2, 4, 8, 16, 30]
    assert [backoff(pull.idle_poll_s, pull.idle_poll_max_s, n) for n in (1, 4, 5, 9)] == [2, 16, 30, 30]


def test_the_php_apps_claim_limit_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'doc_indexing_batch_size': Input should be less than or equal to 1024"):
        parse_config({"doc_indexing_batch_size": 5000}, "config.yaml", environ={})

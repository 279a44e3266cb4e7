"""The CLI's client on the app's unix socket (behind HaRP): an app that does not listen yet is unreachable, and no
socket is left open per try (httpcore leaks its own when a unix-socket connect fails)."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import pytest

from appliance.app_client import AppClient, AppTarget, AppUnreachableError


def test_a_unix_socket_nobody_listens_on_is_unreachable_and_leaves_no_socket_open(tmp_path: Path) -> None:
    target = AppTarget("http://app", "context_chat_backend", "5.4.0", "secret", socket=str(tmp_path / "app.sock"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with AppClient(target, timeout_s=2) as app:
            for _ in range(3):  # the health check's and the CLI's waits try again and again
                with pytest.raises(AppUnreachableError, match=r"app\.sock"):
                    app.heartbeat()
                with pytest.raises(AppUnreachableError, match="does not answer at unix:"):
                    app.call("GET", "/enabled")
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []

"""`ccb doctor`'s Nextcloud checks against a small HTTP server playing Nextcloud's status.php (a fake is fine for
Nextcloud): its version, the PHP app's direction as the app saw it, and the clock against Nextcloud's Date header."""

from __future__ import annotations

import email.utils
import json
import subprocess
import time
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from appliance_kit import PYTHON, REPO, clean_env, write_config
from local_http_server import LocalHttpServer
from local_ports import free_port

from appliance.doctor import CLOCK_SKEW_WARN_S, _harp, _nextcloud
from appliance.storage import StorageLayout

SKEW_S = 300


class _StatusPhp(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        found = self.path == "/status.php"
        info = {"installed": True, "versionstring": "32.0.3", "productname": "Nextcloud"}
        # Nextcloud answers an unknown path with an HTML page
        body = json.dumps(info).encode() if found else b"<html>Page not found</html>"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        # a Nextcloud whose clock runs five minutes ahead
        return email.utils.formatdate(time.time() + SKEW_S, usegmt=True)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def nextcloud() -> Iterator[str]:
    with LocalHttpServer(_StatusPhp) as server:
        yield server.base_url


def test_nextcloud_version_direction_and_clock_skew_are_reported(nextcloud: str) -> None:
    checks = _nextcloud({"NEXTCLOUD_URL": nextcloud}, {"pull": {"php_app_queues": True}})
    assert [(check.name, check.outcome) for check in checks] == [("nextcloud", "ok"), ("clock", "warn")]
    assert checks[0].detail == f"{nextcloud}: Nextcloud 32.0.3; direction pull (context_chat 5.4+)"
    assert SKEW_S > CLOCK_SKEW_WARN_S and checks[1].fix == "run NTP"
    assert -SKEW_S - 2 <= int(checks[1].detail.split()[0]) <= -SKEW_S + 2, checks[1].detail
    pushed = _nextcloud({"NEXTCLOUD_URL": nextcloud}, {"pull": {"php_app_queues": False}})[0]
    assert pushed.detail.endswith("direction push (context_chat <= 5.3)")


def test_a_nextcloud_url_ending_in_index_php_reaches_status_php(nextcloud: str) -> None:
    # AppAPI's deploy daemon form fills in <origin>/index.php on a Nextcloud without pretty URLs
    checks = _nextcloud({"NEXTCLOUD_URL": f"{nextcloud}/index.php"}, None)
    assert checks[0].outcome == "ok", checks[0].detail
    assert "Nextcloud 32.0.3" in checks[0].detail


def test_no_nextcloud_is_skipped_and_an_unreachable_one_fails_with_what_to_do() -> None:
    assert [check.outcome for check in _nextcloud({}, None)] == ["skip"]
    [down] = _nextcloud({"NEXTCLOUD_URL": f"http://127.0.0.1:{free_port()}"}, None)
    assert down.outcome == "fail" and down.fix == "check NEXTCLOUD_URL and that Nextcloud is up"


def test_a_password_in_nextcloud_url_is_hidden_whether_nextcloud_answers_or_not(nextcloud: str) -> None:
    # a reverse proxy in front of Nextcloud that wants Basic auth
    [up, _clock] = _nextcloud({"NEXTCLOUD_URL": nextcloud.replace("http://", "http://admin:proxy-pw-77@")}, None)
    assert up.outcome == "ok" and up.detail.startswith(nextcloud.replace("http://", "http://admin:***@"))
    [down] = _nextcloud({"NEXTCLOUD_URL": f"http://admin:proxy-pw-77@127.0.0.1:{free_port()}"}, None)
    assert down.outcome == "fail" and down.detail.startswith("http://admin:***@127.0.0.1:")
    assert "proxy-pw-77" not in up.detail + down.detail


def test_behind_harp_the_doctor_names_the_tunnel_and_why_it_is_down(tmp_path: Path) -> None:
    layout = StorageLayout(tmp_path)
    assert _harp(layout, {"APP_PORT": "23001"}) == []  # not behind HaRP: no check at all
    harp = {"HP_SHARED_KEY": "harp-key", "HP_FRP_ADDRESS": "appapi-harp", "HP_FRP_PORT": "8782", "APP_PORT": "23001"}
    [down] = _harp(layout, harp)
    assert (down.name, down.outcome) == ("frpc", "fail")
    assert down.detail.startswith(f"supervisord does not answer on {tmp_path}/run/supervisor.sock")
    assert down.detail.endswith(
        "; carries the app's socket /tmp/exapp.sock as port 23001 of appapi-harp:8782"
        " (no TLS: HaRP gave no certificates)"
    )
    assert "`ccb logs frpc`" in down.fix and "harp-key" not in down.detail + down.fix
    [half] = _harp(layout, {"HP_SHARED_KEY": "harp-key", "APP_PORT": "23001"})
    assert half.outcome == "fail" and "but HP_FRP_ADDRESS and HP_FRP_PORT are not" in half.detail


def _doctor_json(storage: Path, **extra_env: str) -> tuple[int, Any, str]:
    """`ccb doctor --json` as pip's wrapper runs it: (exit code, its last stdout line as JSON, stderr)."""
    entry = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["ccb"]
    module, _, function = entry.partition(":")
    command = [PYTHON, "-c", f"import sys; from {module} import {function}; sys.exit({function}())", "doctor", "--json"]
    env = clean_env(storage, **extra_env)
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_a_storage_that_does_not_exist_fails_the_disk_check_and_the_last_line_is_still_json(tmp_path: Path) -> None:
    storage = tmp_path / "no-such-storage"
    code, report, stderr = _doctor_json(storage)
    assert code == 1, stderr
    disk = next(check for check in report["checks"] if check["name"] == "disk")
    assert report["ok"] is False
    assert disk == {
        "name": "disk",
        "outcome": "fail",
        "detail": f"cannot read the storage {storage}: No such file or directory",
        "fix": "set APP_PERSISTENT_STORAGE to the storage the appliance was started with, or start it once with"
        " `make run` to create it",
    }
    assert "Traceback" not in stderr


def test_a_settings_error_ends_the_doctor_as_json_with_the_message(tmp_path: Path) -> None:
    write_config(tmp_path)
    code, report, stderr = _doctor_json(tmp_path, EXTERNAL_DB="mysql://db")
    message = "EXTERNAL_DB is mysql://...; it must be a postgresql:// (or postgresql+psycopg://) URL"
    assert (code, report) == (1, {"error": message, "exit": 1}), stderr
    assert "Traceback" not in stderr


def test_a_password_in_the_external_embedding_url_is_hidden(tmp_path: Path) -> None:
    write_config(tmp_path)
    _code, report, stderr = _doctor_json(tmp_path, CC_EM_BASE_URL="http://alice:hunter2-em@tei.example:8080/v1")
    embedder = next(check for check in report["checks"] if check["name"] == "embedder")
    assert embedder["detail"] == "skipped: embedding.workers = 0, external http://alice:***@tei.example:8080/v1"
    assert "hunter2" not in json.dumps(report) + stderr


def test_a_key_in_the_query_of_the_external_embedding_url_is_hidden(tmp_path: Path) -> None:
    write_config(tmp_path)
    _code, report, stderr = _doctor_json(tmp_path, CC_EM_BASE_URL="https://gw.example/v1?api-key=sk-live-0042")
    embedder = next(check for check in report["checks"] if check["name"] == "embedder")
    assert embedder["detail"] == "skipped: embedding.workers = 0, external https://gw.example/v1?api-key=***"
    assert "sk-live-0042" not in json.dumps(report) + stderr

"""Settings are declared once: supervisord.conf expands only declared or launch.env variables; `settings` lists all."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from appliance_kit import REPO, clean_env, run_cli

from appliance.config import load_config
from appliance.config_keys import describe_config_keys
from appliance.database_url import DatabaseTarget
from appliance.env_settings import ENV_SETTINGS, app_bind, describe_env
from appliance.launch import launch_environment
from appliance.postgres import EmbeddedPostgres
from appliance.storage import StorageLayout
from appliance.url_redaction import redacted_url


def test_supervisord_conf_expands_only_known_variables(tmp_path: Path) -> None:
    used = set(re.findall(r"%\(ENV_([A-Z_]+)\)s", (REPO / "supervisord.conf").read_text()))
    layout = StorageLayout(tmp_path)
    config = load_config(REPO / "configs" / "config.cpu.yaml", environ={})
    target = DatabaseTarget(EmbeddedPostgres(layout.pgdata, layout.pg_socket_dir).dsn, True, "embedded")
    from_prepare = set(launch_environment(config, layout, target, layout.config_file))
    declared = {setting.name for setting in ENV_SETTINGS}
    assert used - from_prepare - declared == set()


def test_the_embedder_gets_an_allow_list_of_the_environment_and_no_secret(tmp_path: Path) -> None:
    layout = StorageLayout(tmp_path)
    config = load_config(REPO / "configs" / "config.cpu.yaml", environ={})
    target = DatabaseTarget(EmbeddedPostgres(layout.pgdata, layout.pg_socket_dir).dsn, True, "embedded")
    environ = {
        "PATH": "/opt/venv/bin:/usr/bin",
        "APP_SECRET": "s3cret-value",
        "LD_LIBRARY_PATH": "/usr/local/nvidia/lib64",
        "EXTERNAL_DB": "postgresql://u:pw@db/ccb",
        "CUDA_VISIBLE_DEVICES": "1",
        "CC_EM_APIKEY": "sk-key",
        "NEXTCLOUD_URL": "http://nextcloud.local",
        "LC_ALL": "C.UTF-8",
        "AWS_SECRET_ACCESS_KEY": "aws-key",
    }
    launch = launch_environment(config, layout, target, layout.config_file, environ)
    assert shlex.split(launch["CCB_EMBEDDER_ENV"]) == [
        "PATH=/opt/venv/bin:/usr/bin",
        "LD_LIBRARY_PATH=/usr/local/nvidia/lib64",
        "CUDA_VISIBLE_DEVICES=1",
        "LC_ALL=C.UTF-8",
    ]
    conf = (REPO / "supervisord.conf").read_text()
    assert " /usr/bin/env -i %(ENV_CCB_EMBEDDER_ENV)s %(ENV_CCB_PYTHON)s -m quart_app.embedder " in conf


def test_settings_command_lists_every_variable_and_key_and_hides_secrets(tmp_path: Path) -> None:
    env = clean_env(tmp_path, APP_SECRET="s3cret-value", EXTERNAL_DB="postgresql://u:pw@db/ccb")
    result = run_cli("settings", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert "s3cret-value" not in result.stdout and "pw@db" not in result.stdout
    data = json.loads(result.stdout)
    rows = {row["name"]: row for row in data["environment"]}
    assert set(rows) == {setting.name for setting in ENV_SETTINGS}
    assert rows["APP_SECRET"]["value"] == "(set)" and rows["CC_EM_APIKEY"]["value"] == "(not set)"
    keys = {row["key"] for row in data["config"]}
    assert {row["key"] for row in describe_config_keys()} == keys
    assert {"embedding.onnx.providers", "vectordb.pgvector.connection", "llm.llama.n_ctx", "retrieval.rrf_k"} <= keys
    text = run_cli("settings", env=env).stdout
    assert "APP_SECRET = (set)" in text and "s3cret-value" not in text


def test_settings_show_what_an_unset_variable_means_where_the_code_decides_it() -> None:
    # unset: the probe decides the device, and the replica runs everything (appliance/probe.py, app_role.py)
    shown = {row["name"]: row["value"] for row in describe_env({})}
    assert shown["COMPUTE_DEVICE"] == "auto" and shown["APP_ROLE"] == "normal"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://tei.example:8080/v1", "http://tei.example:8080/v1"),
        ("http://alice:pw@tei.example/v1", "http://alice:***@tei.example/v1"),
        # unencoded / and @ in the password: the userinfo ends at the last @
        ("https://alice:p/w@rd@tei.example/v1", "https://alice:***@tei.example/v1"),
        # a token given as the user name is a secret too
        ("https://sk-token@tei.example/v1", "https://***@tei.example/v1"),
        ("https://:sk-token@tei.example/v1", "https://***@tei.example/v1"),
        ("not a url @ all", "not a url @ all"),
        # a key in the query, as gateways and Azure-style services take it: every value hidden, the names kept
        ("https://gw.example/v1?api-key=sk-1&api-version=2024", "https://gw.example/v1?api-key=***&api-version=***"),
        ("https://alice:pw@gw.example/v1?key=sk-1", "https://alice:***@gw.example/v1?key=***"),
        ("https://gw.example/v1?sk-1", "https://gw.example/v1?***"),
        # an @ in the query: the last @ is no end of a userinfo, and nothing is shown rather than the key
        ("https://gw.example/v1?user=a@b.example&key=sk-1", "https://***"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def test_every_setting_is_documented() -> None:
    from appliance.config_keys import describe_config_keys
    from appliance.env_settings import ENV_SETTINGS

    undocumented = [row["key"] for row in describe_config_keys() if not row["help"].strip()]
    undocumented += [setting.name for setting in ENV_SETTINGS if not setting.help.strip()]
    assert undocumented == [], f"give these settings a description: {undocumented}"
    readme = (REPO / "README.md").read_text()
    missing = [setting.name for setting in ENV_SETTINGS if f"`{setting.name}`" not in readme]
    assert missing == [], f"document these environment variables in README.md: {missing}"


@pytest.mark.parametrize(
    ("environ", "socket", "bind"),
    [
        ({}, None, "127.0.0.1:10034"),
        ({"APP_HOST": "0.0.0.0", "APP_PORT": "23001"}, None, "0.0.0.0:23001"),
        ({"APP_HOST": "::"}, None, "[::]:10034"),  # hypercorn wants IPv6 in brackets
        ({"APP_HOST": "[::1]"}, None, "[::1]:10034"),
        ({"APP_HOST": "0.0.0.0"}, "/tmp/exapp.sock", "unix:/tmp/exapp.sock"),
    ],
    ids=["default", "wildcard", "ipv6-wildcard", "ipv6-bracketed", "harp-socket"],
)
def test_the_app_binds_app_host_and_port_or_the_socket(environ: dict[str, str], socket: str | None, bind: str) -> None:
    assert app_bind(environ, socket) == bind

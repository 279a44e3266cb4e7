"""`prepare` with external services: supervisord starts neither the embedded PostgreSQL nor the local embedder, and
the health check does not knock on the local embedder's port."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from appliance_kit import clean_env, free_port, run_cli, write_config

from appliance.config import load_config
from appliance.health import check_embedder
from appliance.launch import launch_env_path, read_launch_env
from appliance.model_fetch import required_model_ids
from appliance.storage import StorageLayout

EXTERNAL = {"EXTERNAL_DB": "postgresql://ccb:pw@db.example:5432/ccb", "CC_EM_BASE_URL": "http://tei.example:8080/v1"}


@pytest.mark.parametrize(
    ("external", "autostart"),
    [({}, "true"), (EXTERNAL, "false")],
    ids=["embedded", "external"],
)
def test_prepare_autostarts_the_local_programs_only_without_external_services(
    tmp_path: Path, external: dict[str, str], autostart: str
) -> None:
    write_config(tmp_path)
    result = run_cli("prepare", env=clean_env(tmp_path, **external))
    assert result.returncode == 0, result.stderr
    launch = read_launch_env(launch_env_path(StorageLayout(tmp_path)))
    assert (launch["CCB_POSTGRES_AUTOSTART"], launch["CCB_EMBEDDER_AUTOSTART"]) == (autostart, autostart)


def test_workers_0_in_the_config_alone_starts_no_local_embedder_and_warns_about_a_local_base_url(
    tmp_path: Path,
) -> None:
    port = free_port()
    write_config(tmp_path, embedder_port=port, workers=0)
    result = run_cli("prepare", env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    launch = read_launch_env(launch_env_path(StorageLayout(tmp_path)))
    assert (launch["CCB_POSTGRES_AUTOSTART"], launch["CCB_EMBEDDER_AUTOSTART"]) == ("true", "false")
    assert (
        f"embedding.workers is 0, so no local embedder runs, but embedding.base_url http://127.0.0.1:{port}/v1 is its"
        " address; set CC_EM_BASE_URL or embedding.base_url to the external embedding service" in result.stderr
    )


def test_a_cc_em_base_url_naming_the_local_embedder_keeps_it(tmp_path: Path) -> None:
    port = free_port()
    config = load_config(write_config(tmp_path, embedder_port=port), {"CC_EM_BASE_URL": f"http://127.0.0.1:{port}/v1"})
    assert config.embedding.workers == 1


def test_a_cc_em_base_url_naming_the_local_embedder_as_localhost_keeps_it(tmp_path: Path) -> None:
    # upstream's default base_url says localhost; the embedder listens on 127.0.0.1, which localhost reaches
    port = free_port()
    write_config(tmp_path, embedder_port=port)
    result = run_cli("prepare", env=clean_env(tmp_path, CC_EM_BASE_URL=f"http://localhost:{port}/v1"))
    assert result.returncode == 0, result.stderr
    assert read_launch_env(launch_env_path(StorageLayout(tmp_path)))["CCB_EMBEDDER_AUTOSTART"] == "true"
    assert "does not point to the local embedder" not in result.stderr


def test_the_health_check_leaves_the_local_embedder_port_alone_with_cc_em_base_url(tmp_path: Path) -> None:
    port = free_port()
    config = load_config(write_config(tmp_path, embedder_port=port), {"CC_EM_BASE_URL": EXTERNAL["CC_EM_BASE_URL"]})
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as local_port:
        local_port.bind(("127.0.0.1", port))
        local_port.listen(4)
        local_port.setblocking(False)
        result = check_embedder(config, timeout_s=1)
        with pytest.raises(BlockingIOError):
            local_port.accept()
    assert result.ok and result.detail == "skipped: embedding.workers = 0, external http://tei.example:8080/v1"


def test_a_password_in_the_embedding_url_is_hidden_by_prepare_and_settings(tmp_path: Path) -> None:
    secret_url = "http://alice:hunter2-em@tei.example:8080/v1"
    config = write_config(tmp_path)
    # in config.yaml, with the local embedder still started: prepare warns and names the URL
    config.write_text(re.sub(r"base_url: \S+", f"base_url: {secret_url}", config.read_text(), count=1))
    prepared = run_cli("prepare", env=clean_env(tmp_path))
    assert prepared.returncode == 0, prepared.stderr
    assert "embedding.base_url http://alice:***@tei.example:8080/v1 does not point to the local embedder" in (
        prepared.stderr
    )
    settings = run_cli("settings", env=clean_env(tmp_path, CC_EM_BASE_URL=secret_url))
    assert settings.returncode == 0, settings.stderr
    assert "CC_EM_BASE_URL = http://alice:***@tei.example:8080/v1" in settings.stdout
    assert "hunter2" not in prepared.stdout + prepared.stderr + settings.stdout + settings.stderr


@pytest.mark.parametrize("where", ["CC_EM_BASE_URL", "embedding.base_url"])
def test_an_embedding_url_with_an_unencoded_slash_in_its_password_stops_prepare_without_quoting_it(
    tmp_path: Path, where: str
) -> None:
    # httpx would read "alice:s3cr" as host and port and quote the "port" in every error
    secret_url = "http://alice:s3cr/et@tei.example:8080/v1"
    config = write_config(tmp_path)
    env = clean_env(tmp_path)
    if where == "CC_EM_BASE_URL":
        env["CC_EM_BASE_URL"] = secret_url
    else:
        config.write_text(re.sub(r"base_url: \S+", f"base_url: {secret_url}", config.read_text(), count=1))
    result = run_cli("prepare", env=env)
    assert result.returncode != 0
    fix = "not a URL the app can use; percent-encode its user and password (%2F for /, %40 for @, %3A for :,"
    assert fix in result.stderr
    assert "s3cr" not in result.stdout + result.stderr


def test_with_an_external_service_only_the_chunking_tokenizers_model_is_fetched(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("embedding:\n  onnx:\n    model: multilingual-e5-small\nllm:\n  extractive: {}\n")
    workers_0 = tmp_path / "workers-0.yaml"
    workers_0.write_text(path.read_text().replace("embedding:\n", "embedding:\n  workers: 0\n"))
    assert required_model_ids(load_config(workers_0, {})) == ["multilingual-e5-small"]
    assert required_model_ids(load_config(path, {"CC_EM_BASE_URL": EXTERNAL["CC_EM_BASE_URL"]})) == [
        "multilingual-e5-small"
    ]

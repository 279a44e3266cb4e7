"""AppSettings from the environment AppAPI gives: identity, storage, config file and the database URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import parse_config
from appliance.database_url import normalise_db_url
from appliance.errors import ConfigError
from appliance.storage import StorageLayout
from quart_app.app_settings import AppSettings, resolve_db_url


def test_upstream_sqlalchemy_urls_become_libpq_urls() -> None:
    assert normalise_db_url("postgresql+psycopg://u:p@db:5432/ccb") == "postgresql://u:p@db:5432/ccb"
    assert normalise_db_url("postgres://u@db/ccb") == "postgresql://u@db/ccb"
    assert normalise_db_url("postgresql://u@/ccb?host=/run") == "postgresql://u@/ccb?host=/run"


def test_external_db_then_config_then_the_embedded_cluster(tmp_path: Path) -> None:
    storage = StorageLayout(tmp_path)
    with_connection = parse_config({"vectordb": {"pgvector": {"connection": "postgresql+psycopg://c@h/x"}}}, environ={})
    plain = parse_config({}, environ={})
    env = {"EXTERNAL_DB": "postgresql+psycopg://e@h/y"}
    assert resolve_db_url(with_connection, storage, env) == "postgresql://e@h/y"
    assert resolve_db_url(with_connection, storage, {}) == "postgresql://c@h/x"
    assert resolve_db_url(plain, storage, {}) == f"postgresql://ccb@/ccb?host={tmp_path / 'pg_socket'}"


def test_from_env_reads_appapis_variables(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("llm:\n  extractive: {}\n")
    env = {
        "APP_ID": "context_chat_backend",
        "APP_SECRET": "abc",
        "APP_VERSION": "4.4.0",
        "AA_VERSION": "5.0.0",
        "NEXTCLOUD_URL": "http://nextcloud.local",
        "APP_PERSISTENT_STORAGE": str(tmp_path),
    }
    settings = AppSettings.from_env(env)
    assert (settings.app_id, settings.app_secret, settings.app_version) == ("context_chat_backend", "abc", "4.4.0")
    assert settings.nextcloud_url == "http://nextcloud.local" and settings.storage.root == tmp_path
    assert settings.config.llm_backend == "extractive"
    # the secret and the DB URL stay out of repr (and so out of any log line that prints the settings)
    assert "abc" not in repr(settings) and "db_url" not in repr(settings)


def test_missing_config_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        AppSettings.from_env({"APP_PERSISTENT_STORAGE": str(tmp_path)})

"""What the app factory needs: the validated config, the storage layout, the AppAPI identity and the DB URL."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from appliance.app_role import AppRole, app_role
from appliance.app_secret import read_app_secret
from appliance.config import AppConfig, load_config
from appliance.config_files import config_path as default_config_path
from appliance.database_url import resolve_database
from appliance.env_settings import env_value
from appliance.storage import StorageLayout

log = logging.getLogger(__name__)


def resolve_db_url(config: AppConfig, storage: StorageLayout, environ: Mapping[str, str] | None = None) -> str:
    """EXTERNAL_DB, else config `pgvector.connection`, else the embedded cluster's unix-socket URL (libpq form)."""
    return resolve_database(config, storage, environ).url


@dataclass(frozen=True)
class AppSettings:
    """Everything `create_app` reads; built from the environment by `from_env`, or directly in tests."""

    config: AppConfig
    storage: StorageLayout
    db_url: str = field(repr=False)
    app_id: str = "context_chat_backend"
    app_secret: str = field(default="", repr=False)
    app_version: str = "4.0.0"
    aa_version: str | None = None
    nextcloud_url: str | None = None
    # None = models/catalogue.yaml; tests and air-gapped mirrors point it at their own catalogue
    model_catalogue: Path | None = None
    # APP_ROLE: which loops and routes this replica runs (appliance/app_role.py ROLE_DUTIES)
    role: AppRole = AppRole.NORMAL
    # CC_DOWNLOAD_MODELS_FROM_HF: False = POST /init only checks the model files an admin placed
    download_models: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, config_path: Path | None = None) -> AppSettings:
        """Read the AppAPI variables and the config file ($CC_CONFIG_PATH or $APP_PERSISTENT_STORAGE/config.yaml)."""
        storage = StorageLayout.from_env(environ)
        path = config_path or default_config_path(storage, environ)
        config = load_config(path, environ)
        log.info("config loaded from %s (llm backend %s)", path, config.llm_backend)
        return cls(
            config=config,
            storage=storage,
            db_url=resolve_db_url(config, storage, environ),
            app_id=env_value("APP_ID", environ) or "context_chat_backend",
            app_secret=read_app_secret(storage, environ),
            app_version=env_value("APP_VERSION", environ) or "4.0.0",
            aa_version=env_value("AA_VERSION", environ),
            nextcloud_url=env_value("NEXTCLOUD_URL", environ),
            role=app_role(environ),
            download_models=downloads_models(environ),
        )


def downloads_models(environ: Mapping[str, str] | None = None) -> bool:
    """CC_DOWNLOAD_MODELS_FROM_HF as upstream reads it: only 1, true or yes (any case) download."""
    return (env_value("CC_DOWNLOAD_MODELS_FROM_HF", environ) or "").strip().lower() in ("1", "true", "yes")

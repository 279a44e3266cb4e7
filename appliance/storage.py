"""The persistent-storage layout: every path the appliance keeps under $APP_PERSISTENT_STORAGE."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from appliance.app_role import AppRole, named_role
from appliance.env_settings import env_value
from appliance.errors import StorageError
from appliance.safe_fs import PRIVATE_DIR_MODE, restrict_mode, take_private_dir

log = logging.getLogger(__name__)


# logs hold request paths, source ids and database messages: the appliance's own user only
@dataclass(frozen=True)
class StorageLayout:
    """Paths under the persistent storage root; `ensure()` creates the directories.

    `role` ("" in the normal role) gives run/, logs/ and spool/ a subdirectory of that name: AppAPI's Kubernetes
    deploy mounts one volume into the Deployment of every role, and each pod's supervisord, launch env, logs and
    spool files must stay its own (config, models and the enabled state are shared on purpose)."""

    root: Path
    role: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageLayout:
        root = Path(env_value("APP_PERSISTENT_STORAGE", environ) or "persistent_storage").absolute()
        return cls(root, _role_subdir(environ))

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def version_file(self) -> Path:
        return self.root / "version.info"

    @property
    def repair_skip_file(self) -> Path:
        return self.root / "repair.info"

    @property
    def partial_repair_file(self) -> Path:
        return self.root / "partial_repair.tmp"

    @property
    def applied_repairs_file(self) -> Path:
        """Every step applied up to version.info's version: a patch release's step shares the minor's number."""
        return self.root / "applied_repairs.info"

    @property
    def repair_lock_file(self) -> Path:
        """Held (flock) while one start runs the repairs; another start on the volume waits for it."""
        return self.root / "repair.lock"

    @property
    def model_dir(self) -> Path:
        return self.root / "model_files"

    @property
    def vector_db_dir(self) -> Path:
        return self.root / "vector_db_data"

    @property
    def pgdata(self) -> Path:
        return self.vector_db_dir / "pgsql"

    @property
    def pg_socket_dir(self) -> Path:
        # short path: AF_UNIX socket paths are limited to ~107 bytes
        return self.root / "pg_socket"

    @property
    def run_dir(self) -> Path:
        """launch.env, supervisord's pid file and socket: the appliance's user only, never the PostgreSQL user's."""
        return self.root / "run" / self.role

    @property
    def log_dir(self) -> Path:
        return self.root / "logs" / self.role

    @property
    def spool_dir(self) -> Path:
        return self.root / "spool" / self.role

    @property
    def state_file(self) -> Path:
        return self.root / "app_state.json"

    @property
    def db_url_file(self) -> Path:
        return self.root / "db_url"

    @property
    def secret_file(self) -> Path:
        """0600: the secret generated when APP_SECRET is not set (a start without AppAPI)."""
        return self.root / "app_secret"

    def ensure(self) -> None:
        """Create the storage directories, with an error that says which path failed and why; run/ and logs/ are
        private (0700; an existing logs/ is made so)."""
        for path in (self.root, self.model_dir, self.vector_db_dir, self.log_dir, self.spool_dir, self.run_dir):
            try:
                path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE if path == self.log_dir else 0o777)
            except OSError as exc:
                raise StorageError(
                    f"cannot create {path}: {exc.strerror}; set APP_PERSISTENT_STORAGE to a writable directory"
                ) from exc
        # up to this version run/ was the PostgreSQL user's socket dir as well
        try:
            take_private_dir(self.run_dir)
        except OSError as exc:  # a read-only storage: every directory already there, none of them writable
            raise StorageError(
                f"cannot take over {self.run_dir}: {exc.strerror}; set APP_PERSISTENT_STORAGE to a writable directory"
            ) from exc
        restrict_mode(self.log_dir, PRIVATE_DIR_MODE)


def _role_subdir(environ: Mapping[str, str] | None) -> str:
    """APP_ROLE when it names a role other than normal, else "" (app_role() warns about an unknown one)."""
    role = named_role(environ)
    return "" if role in (None, AppRole.NORMAL) else str(role)

"""Which PostgreSQL the app uses: EXTERNAL_DB, else config `vectordb.pgvector.connection`, else the embedded one.

Same order as quart_app.app_settings.resolve_db_url: an explicit flag or AppAPI variable beats the config file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from appliance.config import AppConfig
from appliance.env_settings import env_value
from appliance.errors import SettingsError
from appliance.postgres import EmbeddedPostgres
from appliance.safe_fs import replace_file
from appliance.storage import StorageLayout

# libpq connection parameters that hold a secret
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
# SQLAlchemy-style driver suffixes upstream's EXTERNAL_DB and CCB_DB_URL carry; libpq knows only postgresql://
_DRIVER_SCHEMES = ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres+psycopg://", "postgres://")


@dataclass(frozen=True)
class DatabaseTarget:
    """The effective database URL (libpq form) and whether it is the embedded PostgreSQL."""

    url: str
    embedded: bool
    source: str


def normalise_db_url(url: str, source: str = "EXTERNAL_DB") -> str:
    """Accept upstream's postgresql+psycopg:// form; anything not PostgreSQL is an error naming the source."""
    value = url.strip()
    for scheme in _DRIVER_SCHEMES:
        if value.startswith(scheme):
            value = "postgresql://" + value[len(scheme) :]
            break
    if value.startswith("postgresql://"):
        try:
            conninfo_to_dict(value)
        except psycopg.ProgrammingError:
            # not libpq's message: it quotes the part it could not decode, which may be the password
            raise SettingsError(
                f"{source} is not a URL libpq can read; percent-encode its user, password and parameters"
                " (%40 for @, %2F for /, %25 for %)"
            ) from None
        return value
    shown = value.split("://", 1)[0] + "://..." if "://" in value else "a value without a scheme"
    raise SettingsError(f"{source} is {shown}; it must be a postgresql:// (or postgresql+psycopg://) URL")


def shown_database_url(url: str) -> str:
    """The URL as printed by health checks and the doctor: no userinfo, no `password` or `sslpassword` query
    parameter (libpq takes the password there too; sslpassword unlocks the client key), the rest as written."""
    where, sep, query = url.split("://", 1)[-1].partition("?")
    # up to the last @: a password with an unencoded / or @ does not end the userinfo early
    where = where.rsplit("@", 1)[-1]
    kept = [item for item in query.split("&") if unquote(item.partition("=")[0]).strip() not in _SECRET_PARAMETERS]
    return where + (sep + "&".join(kept) if any(kept) else "")


def embedded_cluster(layout: StorageLayout, tcp_port: int | None = None) -> EmbeddedPostgres:
    return EmbeddedPostgres(pgdata=layout.pgdata, socket_dir=layout.pg_socket_dir, tcp_port=tcp_port)


def resolve_database(
    config: AppConfig, layout: StorageLayout, environ: Mapping[str, str] | None = None
) -> DatabaseTarget:
    """EXTERNAL_DB beats the config's connection beats the embedded cluster (its unix socket in the storage dir)."""
    external = env_value("EXTERNAL_DB", environ)
    if external:
        return DatabaseTarget(url=normalise_db_url(external), embedded=False, source="EXTERNAL_DB")
    if config.pgvector.connection:
        url = normalise_db_url(config.pgvector.connection, "vectordb.pgvector.connection")
        return DatabaseTarget(url=url, embedded=False, source="vectordb.pgvector.connection")
    cluster = embedded_cluster(layout, config.pgvector.embedded_tcp_port)
    return DatabaseTarget(url=cluster.dsn, embedded=True, source="embedded PostgreSQL")


def write_database_url(layout: StorageLayout, target: DatabaseTarget) -> Path:
    """Store the URL for the app and the healthcheck; 0600 because an external URL may hold a password."""
    replace_file(layout.db_url_file, target.url + "\n")
    return layout.db_url_file


def read_database_url(layout: StorageLayout) -> str | None:
    """The URL `prepare` wrote for this run, or None before the first `prepare`."""
    try:
        return layout.db_url_file.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None

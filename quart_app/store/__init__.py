"""The durable store: PostgreSQL + pgvector, the only package with SQL."""

from quart_app.store.database import Connection, Database
from quart_app.store.errors import DatabaseClosedError, DatabaseUnavailableError, MigrationError, StoreError
from quart_app.store.migrator import MigrationResult

__all__ = [
    "Connection",
    "Database",
    "DatabaseClosedError",
    "DatabaseUnavailableError",
    "MigrationError",
    "MigrationResult",
    "StoreError",
]

"""Errors raised by the durable store (PostgreSQL + pgvector)."""

import psycopg

# SQLSTATE classes 22 (data exception), 23 (integrity constraint violation) and 54 (program limit exceeded, e.g. an
# index row too large): the same statement with the same values fails the same way every time
PERMANENT_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded)


class StoreError(Exception):
    """The store could not do what was asked; the message names the resource and what to do."""


class DatabaseClosedError(StoreError):
    """The database was used before `open()` or after `close()`."""


class DatabaseUnavailableError(StoreError):
    """The database did not answer within the connect timeout."""


class MigrationError(StoreError):
    """A schema migration file is malformed or could not be applied."""


class StatementTimeoutError(StoreError):
    """A statement ran longer than pgvector.statement_timeout_s and the database cancelled it."""


class LockTimeoutError(StoreError):
    """A statement waited longer than pgvector.lock_timeout_s for a lock another transaction holds."""


class TransactionConflictError(StoreError):
    """A transaction kept failing with a deadlock or serialization failure; retry later (503 + cc-retry)."""


class PgvectorMissingError(StoreError):
    """The database has no vector extension and it cannot be created here; the message says who must create it."""


class PgvectorTooOldError(StoreError):
    """The database's pgvector is older than 0.8 (no iterative index scans); the message says how to update it."""


def is_permanent(exc: BaseException) -> bool:
    """Whether `exc` is a database error that running the same statement again cannot cure (not an outage, a
    deadlock, a serialization failure or a lock wait)."""
    return isinstance(exc, PERMANENT_ERRORS)

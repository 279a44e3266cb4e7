"""Errors raised by the appliance runtime; only the CLI turns them into exit messages."""


class ApplianceError(Exception):
    """Base class of every error the appliance runtime raises on purpose."""


class ConfigError(ApplianceError):
    """The config file is missing, unreadable or holds an invalid or unknown key."""


class SettingsError(ApplianceError):
    """An environment setting has a value that cannot be used."""


class StorageError(ApplianceError):
    """The persistent storage directory cannot be created or written."""


class PostgresError(ApplianceError):
    """The embedded PostgreSQL could not be initialised, started or stopped."""


class RepairError(ApplianceError):
    """A startup repair step failed; start-up is aborted."""


class OsUserError(ApplianceError):
    """An OS user the appliance runs a program as is missing and cannot be created."""


class UnsafePathError(ApplianceError):
    """A path the appliance writes as root is a symbolic link or belongs to another user."""


class StorageInUseError(ApplianceError):
    """Another appliance of the same role runs on this storage."""

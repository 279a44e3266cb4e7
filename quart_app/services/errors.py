"""Errors raised by the engine services (ingest, embedding worker, deletion, access, status)."""


class ServiceError(Exception):
    """An engine service could not do what was asked."""


class SourceBusyError(ServiceError):
    """A source in this batch is already being ingested by another request; retry later (503 + cc-retry)."""

    def __init__(self, source_ids: list[str]) -> None:
        super().__init__(
            f"source(s) {', '.join(source_ids)} already being processed by another request; retry in some time"
        )
        self.source_ids = source_ids


class SourceNotClaimedError(ServiceError):
    """A caller passed a claim that does not hold every source of its batch (a bug of the caller)."""

    def __init__(self, source_ids: list[str]) -> None:
        super().__init__(f"source(s) {', '.join(source_ids)} not held by the claim passed to ingest; claim them first")
        self.source_ids = source_ids


class OrderWaitTimeoutError(SourceBusyError):
    """An access change or delete waited too long for what it touches; retry later (503 + cc-retry)."""

    def __init__(self, names: list[str], wait_s: float) -> None:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        ServiceError.__init__(
            self,
            f"{shown} still held by an ingest or an earlier change after waiting {wait_s:g} s; retry in some time"
            " (or raise ingest.access_wait_s)",
        )
        self.source_ids = names
        self.wait_s = wait_s


class SpoolError(ServiceError):
    """An incoming file could not be written to the spool directory."""


class SourceTooLargeError(SpoolError):
    """An incoming file is larger than the configured maximum."""

    def __init__(self, name: str, limit_bytes: int) -> None:
        super().__init__(
            f"file {name!r} is larger than the limit of {limit_bytes} bytes; raise ingest.max_part_mb or skip it"
        )
        self.name = name
        self.limit_bytes = limit_bytes


class InvalidRequestError(ServiceError):
    """A service argument is empty or malformed (the route answers 400)."""


class WorkerClosedError(ServiceError):
    """The embedding worker was started after `close()`."""


class LeaseLostError(ServiceError):
    """Another worker took over a claimed batch (its lease ran out); this worker's result must not be written."""

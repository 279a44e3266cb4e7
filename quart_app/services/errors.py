"""Errors raised by the engine services (ingest, embedding worker, deletion, access, status, retrieval, answering)."""


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


class AnswerError(Exception):
    """A question could not be answered; the message says why and what to do."""


class ContextError(AnswerError):
    """Nothing the user may read matched (upstream's ContextException; the message is the upstream string)."""


class QueryNotEmbeddedError(ContextError):
    """The question could not be embedded and the full-text leg alone found nothing: the message says the embedding
    service is why, where upstream's "please index a few documents first" would send the user the wrong way."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"No documents retrieved: the question could not be embedded ({reason}) and the full-text search alone"
            " found no match; ask again once the embedding service answers"
        )


class SourcesRevokedError(ContextError):
    """Every answer written drew on a document the user lost access to before it was ready."""

    def __init__(self, attempts: int) -> None:
        super().__init__(
            f"The documents the answer drew on were unshared or deleted while it was written ({attempts} tries);"
            " please ask again"
        )


class ReadabilityUnknownError(AnswerError):
    """Nextcloud did not say which candidate files the user can still read: nothing is answered (push mode: 503)."""

    def __init__(self, files: int, reason: str, asked_with: str = "WebDAV requests") -> None:
        super().__init__(
            f"Nextcloud did not say whether the user can still read the {files} file(s) the answer would draw on"
            f" ({reason}); nothing was answered from them: ask again once Nextcloud answers {asked_with}"
        )
        self.files = files


class ReadableCheckSpentError(AnswerError):
    """An UnreadableCheck can tell nothing more within this question (its wait on Nextcloud is spent): the documents
    it was asked about stay out, and no further candidates are fetched for it."""


class PromptTooLongError(AnswerError):
    """The LLM context is too small even for the template plus the reserved answer tokens."""


class QuestionTooLongError(AnswerError):
    """The question has more characters than retrieval.max_question_chars allows (400: the client must shorten it)."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"The question is too long: {length:,} characters, at most {limit:,} are accepted"
            " (retrieval.max_question_chars); shorten the question"
        )
        self.length = length
        self.limit = limit


class ScopeError(AnswerError):
    """The scope type is not 'provider' or 'source'."""

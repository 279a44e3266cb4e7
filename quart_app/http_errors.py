"""One HTTP error shape for the 4.0.6+ contract: {"error": msg} / {"message": msg}, FastAPI's 422, mapped exceptions."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg_pool import PoolTimeout
from pydantic import ValidationError
from quart import Quart, Response, current_app, request
from werkzeug.exceptions import HTTPException

from quart_app.engine import EngineNotReadyError, EngineStillOpeningError
from quart_app.loaders.errors import LoaderError
from quart_app.runtimes.errors import EmbeddingServiceError, LlmError
from quart_app.services.errors import (
    ContextError,
    InvalidRequestError,
    PromptTooLongError,
    QuestionTooLongError,
    ReadabilityUnknownError,
    ScopeError,
    SourceBusyError,
    SpoolError,
)
from quart_app.store.database_failure import log_failure
from quart_app.store.errors import DatabaseUnavailableError, StoreError, TransactionConflictError

log = logging.getLogger(__name__)

# a 422 echoes at most this many characters of each offending input (FastAPI echoes a whole 1 GiB body)
ECHO_INPUT_CHARS = 256
ELLIPSIS = "…"


class BodyValidationError(Exception):
    """A request body does not match its declared model; answered 422 with FastAPI's {"detail": [...]} shape."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(detail)} validation error(s) in the request body")
        self.detail = detail


class ContractError(Exception):
    """A request breaks the contract in a way upstream answers with a fixed status and message."""

    def __init__(self, message: str, status: int = 400, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = dict(headers or {})


def json_message(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """Upstream's JSONResponse: a str becomes {"error": s} from 400 on, {"message": s} below; other values as-is."""
    if isinstance(content, str):
        content = {"error": content} if status >= 400 else {"message": content}
    response = Response(_dumps(content), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _dumps(content: Any) -> str:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))


def fastapi_detail(exc: ValidationError, loc_prefix: Sequence[str | int] = ("body",)) -> list[dict[str, Any]]:
    """pydantic errors in FastAPI's 422 layout: type, loc (prefixed with 'body'), msg, input, ctx."""
    detail: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False):
        item: dict[str, Any] = {
            "type": error["type"],
            "loc": [*loc_prefix, *error["loc"]],
            "msg": error["msg"],
            "input": _echo(error.get("input")),
        }
        if "ctx" in error:
            item["ctx"] = {
                key: value if isinstance(value, int | float | str) else str(value)
                for key, value in error["ctx"].items()
            }
        detail.append(item)
    return detail


def _echo(value: Any) -> Any:
    """An error's input as JSON, cut to ECHO_INPUT_CHARS: a long string (or the JSON text of a large object)
    becomes its first characters and an ellipsis."""
    plain = _jsonable(value)
    if isinstance(plain, str):
        return plain if len(plain) <= ECHO_INPUT_CHARS else plain[:ECHO_INPUT_CHARS] + ELLIPSIS
    text = _dumps(plain)
    return plain if len(text) <= ECHO_INPUT_CHARS else text[:ECHO_INPUT_CHARS] + ELLIPSIS


def _jsonable(value: Any) -> Any:
    """pydantic's error input as JSON: raw bytes (an unparsable body) become text."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


# the PHP app (4.0.2+) re-queues a /loadSources batch answered with this header; every 5xx keeps an action queued
RETRY_HEADERS: Mapping[str, str] = {"cc-retry": "true"}
# the view function attribute set by `caller_never_requeues`
_NEVER_REQUEUES = "caller_never_requeues"
View = TypeVar("View", bound=Callable[..., Any])


def caller_never_requeues(view: View) -> View:
    """Marks a route whose caller in the PHP app does not re-queue on cc-retry: its error answers go without it.

    The PHP app turns any answer with cc-retry into "At least one source is already being processed from another
    request" (LangRopeService::requestToExApp); only its indexing jobs re-queue on it: a chat or search task fails with
    that text, and the statistics (occ context_chat:stats, the admin page) catch only RuntimeException, not it."""
    setattr(view, _NEVER_REQUEUES, True)
    return view


def retry_headers_for_caller(headers: Mapping[str, str]) -> Mapping[str, str]:
    """`headers` without cc-retry on a route marked `caller_never_requeues`: its 503 names the real outage."""
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, _NEVER_REQUEUES, False):
        return {name: value for name, value in headers.items() if name != "cc-retry"}
    return headers


@dataclass(frozen=True)
class ExceptionMapping:
    """Upstream 4.0.6+: an exception class -> status and message prefix."""

    exc_type: type[Exception]
    status: int
    prefix: str
    headers: Mapping[str, str] = field(default_factory=dict)


# most specific first is not needed: Quart picks the handler by the exception's MRO. A bare ValueError is not here:
# errors about the client's input have their own classes (upstream's 400 "Error: ..." cases), anything else is ours
EXCEPTION_MAP: tuple[ExceptionMapping, ...] = (
    ExceptionMapping(ContextError, 400, "Context Retrieval Error: "),
    ExceptionMapping(ScopeError, 400, "Error: "),
    ExceptionMapping(QuestionTooLongError, 400, "Error: "),
    ExceptionMapping(PromptTooLongError, 500, "LLM Error: "),
    ExceptionMapping(InvalidRequestError, 400, "Error: "),
    ExceptionMapping(EngineNotReadyError, 503, "Error: "),
    # push mode: Nextcloud, the caller, could not tell which files the user still reads; its user may ask again
    ExceptionMapping(ReadabilityUnknownError, 503, "Error: "),
    # the PHP app keeps a batch whose answer says cc-retry queued without logging an error: the engine opens by itself
    # (a step under way, PostgreSQL or the embedding service back); one that failed keeps its bare 503 (an error)
    ExceptionMapping(EngineStillOpeningError, 503, "Error: ", RETRY_HEADERS),
    # a full or read-only disk under the spool is no fault of the files: the PHP app keeps them queued on cc-retry
    ExceptionMapping(SpoolError, 503, "Error: ", RETRY_HEADERS),
    ExceptionMapping(psycopg.Error, 500, "Vector DB Error: "),
    ExceptionMapping(PoolTimeout, 500, "Vector DB Error: "),
    ExceptionMapping(StoreError, 500, "Vector DB Error: "),
    ExceptionMapping(DatabaseUnavailableError, 503, "Vector DB Error: ", RETRY_HEADERS),
    ExceptionMapping(TransactionConflictError, 503, "Vector DB Error: ", RETRY_HEADERS),
    ExceptionMapping(LoaderError, 500, "Resource Loader Error: "),
    ExceptionMapping(LlmError, 500, "LLM Error: "),
    ExceptionMapping(EmbeddingServiceError, 500, "Embedding Request Error: "),
)


def register_error_handlers(app: Quart) -> None:
    """Install the contract's error shape for every mapped exception, HTTP errors, 422 and real faults."""

    for mapping in EXCEPTION_MAP:
        app.register_error_handler(mapping.exc_type, _mapped_handler(mapping))

    @app.errorhandler(ContractError)
    async def contract_error(exc: ContractError) -> Response:
        return json_message(exc.message, exc.status, retry_headers_for_caller(exc.headers))

    @app.errorhandler(SourceBusyError)
    async def source_busy(exc: SourceBusyError) -> Response:
        # PHP 4.0.3+ keeps the request's sources or action queued on `cc-retry: true` (RetryIndexException)
        return json_message(str(exc), 503, RETRY_HEADERS)

    @app.errorhandler(BodyValidationError)
    async def body_invalid(exc: BodyValidationError) -> Response:
        return json_message({"detail": exc.detail}, 422)

    @app.errorhandler(ValidationError)
    async def model_invalid(exc: ValidationError) -> Response:
        # a pydantic error escaping a service is a server fault, not the client's body
        return _fault(exc)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        return json_message({"detail": exc.name}, status)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        return _fault(exc)


def _mapped_handler(mapping: ExceptionMapping) -> Any:
    async def handler(exc: BaseException) -> Response:
        what = f"{request.method} {request.path}"
        shown = str(exc)
        if mapping.status == 503:
            # the database or a service is away for a while: one line, no traceback per request
            log.warning("%s: %s: %s", what, type(exc).__name__, exc)
        elif mapping.status >= 500:
            shown = log_failure(log, what, exc)
        else:
            log.info("%s refused: %s", what, exc)
        return json_message(f"{mapping.prefix}{shown}", mapping.status, retry_headers_for_caller(mapping.headers))

    return handler


def _fault(exc: BaseException) -> Response:
    log.error("unexpected error in %s %s", request.method, request.path, exc_info=exc)
    return json_message(
        f"Internal error in {request.method} {request.path}: {type(exc).__name__}; the traceback is in the app log "
        "($APP_PERSISTENT_STORAGE/logs, or GET /downloadLogs)",
        500,
    )

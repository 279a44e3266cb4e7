"""The embedder's Quart app: POST /v1/embeddings, GET /v1/models, GET /health."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from quart import Quart, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from quart_app.asgi_connection import RequestScopedConnection
from quart_app.embedder.errors import EmbedderClosedError
from quart_app.embedder.openai_wire import WireError, embedding_response, error_body, parse_embedding_request
from quart_app.embedder.runtime import EmbeddingRuntime
from quart_app.embedder.scheduler import EmbeddingScheduler
from quart_app.request_ids import RequestIdMiddleware

log = logging.getLogger(__name__)

DEFAULT_BATCH_TOKENS = 8192
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
OWNER = "context-chat-backend"
SCHEDULER_EXTENSION = "embedding_scheduler"


def create_embedder_app(
    runtime: EmbeddingRuntime,
    max_inputs: int,
    max_request_tokens: int,
    *,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Quart:
    """An app serving the loaded `runtime`; requests over `max_inputs` inputs or `max_request_tokens` get a 413."""
    app = Quart(__name__)
    # a request the server cancels (its graceful timeout at a stop) takes its handler with it
    app.asgi_http_class = RequestScopedConnection
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    scheduler = EmbeddingScheduler(runtime, batch_tokens)
    app.extensions[SCHEDULER_EXTENSION] = scheduler

    @app.before_serving
    async def start_scheduler() -> None:
        await scheduler.start()
        log.info(
            "embedder serving model %s (%d-d, max %d tokens, at most %d inputs / %d tokens per request)",
            runtime.model_id,
            runtime.dimension,
            runtime.max_tokens,
            max_inputs,
            max_request_tokens,
        )

    @app.after_serving
    async def stop_scheduler() -> None:
        await scheduler.close()

    @app.post("/v1/embeddings")
    async def embeddings() -> tuple[Response, int]:
        started = time.perf_counter()
        raw = await request.get_data(as_text=False)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WireError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
        parsed = parse_embedding_request(body, dimension=runtime.dimension, max_inputs=max_inputs)
        counts = await scheduler.count_tokens(parsed.inputs, parsed.input_type)
        tokens = sum(min(count, runtime.max_tokens) for count in counts)
        if tokens > max_request_tokens:
            raise WireError(
                413,
                f"the request holds {tokens} tokens (after truncation to {runtime.max_tokens} per input); this "
                f"embedder takes at most {max_request_tokens} per request, split the batch",
                code="too_many_tokens",
                param="input",
            )
        log.debug("queued %d %s input(s), %d tokens", len(parsed.inputs), parsed.input_type, tokens)
        vectors = await scheduler.embed(parsed.inputs, parsed.input_type, tokens)
        log.debug(
            "embedded %d %s input(s), %d tokens, in %.0f ms",
            len(parsed.inputs),
            parsed.input_type,
            tokens,
            (time.perf_counter() - started) * 1000,
        )
        body_out = embedding_response(
            vectors, model=runtime.model_id, tokens=tokens, encoding_format=parsed.encoding_format
        )
        return jsonify(body_out), 200

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_card(runtime)]}

    @app.get("/v1/models/<path:model_id>")
    async def model(model_id: str) -> tuple[dict[str, Any], int]:
        if model_id != runtime.model_id:
            raise WireError(
                404,
                f"model {model_id!r} is not served here; this embedder serves {runtime.model_id!r}",
                code="model_not_found",
                param="model",
            )
        return _model_card(runtime), 200

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": runtime.model_id, "dimension": runtime.dimension}

    @app.errorhandler(WireError)
    async def wire_error(exc: WireError) -> tuple[dict[str, Any], int]:
        if exc.status >= 500:
            log.warning("embedding request failed: %s", exc.message)
        return exc.body(), exc.status

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> tuple[dict[str, Any], int]:
        status = exc.code or 500
        code = "request_too_large" if status == 413 else (exc.name or "http_error").lower().replace(" ", "_")
        message = f"{exc.name}: {exc.description}" if exc.description else str(exc.name)
        return error_body(message, error_type="invalid_request_error", code=code), status

    @app.errorhandler(EmbedderClosedError)
    async def closed(exc: EmbedderClosedError) -> tuple[dict[str, Any], int]:
        return error_body(str(exc), error_type="service_unavailable_error", code="shutting_down"), 503

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> tuple[dict[str, Any], int]:
        log.exception("embedding request failed unexpectedly")
        message = f"the embedder failed: {type(exc).__name__}: {exc}"
        return error_body(message, error_type="server_error", code="internal_error"), 500

    # the app's request id (forwarded with each call) on the lines logged for it
    app.asgi_app = RequestIdMiddleware(app.asgi_app, access_log=False)  # type: ignore[method-assign,assignment]
    return app


def embedder_scheduler(app: Quart) -> EmbeddingScheduler:
    """The scheduler an app from create_embedder_app() runs its runtime on."""
    scheduler: EmbeddingScheduler = app.extensions[SCHEDULER_EXTENSION]
    return scheduler


def _model_card(runtime: EmbeddingRuntime) -> dict[str, Any]:
    return {
        "id": runtime.model_id,
        "object": "model",
        "owned_by": OWNER,
        "dimension": runtime.dimension,
        "max_tokens": runtime.max_tokens,
    }

"""Async client of an OpenAI-compatible embedding service: our embedder program or any external one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, cast

import httpx
import numpy as np

from appliance.embedding_config import EmbeddingConfig
from appliance.model_catalogue import NO_PREFIXES, ModelEntry, ModelPrefixes
from appliance.url_redaction import redacted_url
from quart_app.request_ids import forward_request_id
from quart_app.runtimes.errors import EmbeddingClientClosedError, EmbeddingServiceError
from quart_app.runtimes.service_error_text import explanation, redacted_reason

log = logging.getLogger(__name__)

InputType = Literal["query", "passage"]
# statuses where the same request may succeed later; every other 4xx is the request's own fault
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
# statuses that say the service (or the gateway before it) cannot take requests now, whatever the texts: an outage
UNAVAILABLE_STATUSES = frozenset({408, 429, 502, 503, 504})
# matches the message of every `unavailable` error below (a PostgreSQL and Python regex), e.g. in chunks.last_error
UNAVAILABLE_ERROR_PATTERN = (
    r"^(cannot reach the embedding service at |[A-Z]+ \S+ (timed out \(|answered ("
    + "|".join(str(status) for status in sorted(UNAVAILABLE_STATUSES))
    + r"): ))"
)
_MAX_ERROR_CHARS = 300
# vectors are stored as 32-bit floats; pgvector refuses NaN and infinity
_FLOAT32_MAX = 3.4028234663852886e38
_DIMENSION_PROBE = "dimension probe"


class EmbeddedVectors(list[list[float]]):
    """One vector per text, in order, with the model id the service's responses named (None: they named none)."""

    def __init__(self, vectors: list[list[float]], reported_model: str | None) -> None:
        super().__init__(vectors)
        self.reported_model = reported_model


@dataclass(frozen=True)
class EmbeddingServiceInfo:
    """What GET /v1/models tells about the served model (None = the service does not say)."""

    model: str | None
    dimension: int | None
    max_tokens: int | None


def service_prefixes(config: EmbeddingConfig, catalogue: dict[str, ModelEntry]) -> ModelPrefixes:
    """The prefixes the app must add itself: none for our embedder (it adds them from input_type); for an external
    service the configured ones, else the catalogue's when `model_name` is a catalogue id."""
    if config.workers > 0:
        return NO_PREFIXES
    if config.query_prefix or config.passage_prefix:
        return ModelPrefixes(query=config.query_prefix, passage=config.passage_prefix)
    entry = catalogue.get(config.model_name or "")
    return NO_PREFIXES if entry is None else entry.prefixes


class EmbeddingClient:
    """POSTs to `{base_url}/embeddings` (base_url as upstream: e.g. http://127.0.0.1:5000/v1).

    Our embedder adds model prefixes itself from `input_type`; for an external service set
    `send_input_type=False` and give the model's `prefixes` (see `service_prefixes`).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        timeout_s: float = 1800.0,
        prefixes: ModelPrefixes = NO_PREFIXES,
        *,
        send_input_type: bool = True,
        batch_size: int = 64,
        concurrency: int = 4,
        request_retries: int = 0,
        retry_backoff_s: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        # upstream beta4 configs name the full endpoint
        self._base_path = url.path.rstrip("/").removesuffix("/embeddings")
        self._base = url.copy_with(path=self._base_path or "/")
        self._base_url = str(self._base).rstrip("/")
        # httpx sends the URL's user:password as Basic auth; messages, logs and repr show it without the password
        self._shown_url = redacted_url(self._base_url)
        self._model = model
        self._prefixes = prefixes
        self._send_input_type = send_input_type
        self._timeout_s = timeout_s
        self._batch_size = batch_size
        # bounds the passage requests in flight; queries do not take a slot, so a search never waits for indexing
        self._passage_slots = asyncio.Semaphore(concurrency)
        self._request_retries = request_retries
        self._retry_backoff_s = retry_backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # the API key goes first, as upstream's
        auth = httpx.BasicAuth(*basic_auth) if basic_auth is not None and not api_key else None
        self._http = httpx.AsyncClient(
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            transport=transport,
            event_hooks={"request": [forward_request_id]},
        )
        self._closed = False
        self._dimension: int | None = None
        log.info(
            "embedding client for %s (model %s, auth %s)",
            self._shown_url,
            model or "default",
            "bearer" if api_key else "basic" if auth is not None else "none",
        )

    def __repr__(self) -> str:
        return f"EmbeddingClient(base_url={self._shown_url!r}, model={self._model!r}, closed={self._closed})"

    @property
    def base_url(self) -> str:
        return self._base_url

    async def __aenter__(self) -> EmbeddingClient:
        self._check_open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await self._http.aclose()

    async def embed(self, texts: list[str], input_type: InputType = "passage") -> EmbeddedVectors:
        """One vector per text, in order, naming the model the responses named; raises EmbeddingServiceError (see
        `retryable`).

        More than `batch_size` texts go out as several requests, up to `concurrency` of them at once for passages.
        """
        self._check_open()
        if not texts:
            return EmbeddedVectors([], None)
        inputs = self._prefixes.apply(texts, input_type)
        parts = [inputs[start : start + self._batch_size] for start in range(0, len(inputs), self._batch_size)]
        if len(parts) == 1:
            vectors = await self._embed_part(parts[0], input_type)
        else:
            answers = await self._embed_parts(parts, input_type)
            models = {part.reported_model for part in answers}
            if len(models) > 1:
                raise EmbeddingServiceError(
                    f"the embedding service at {self._shown_url} named models {sorted(map(str, models))} in the"
                    " answers to one call: it is switching models; retry later",
                    status=None,
                    retryable=True,
                    unavailable=True,
                )
            vectors = EmbeddedVectors([vector for part in answers for vector in part], models.pop())
        if len({len(v) for v in vectors}) > 1:
            raise EmbeddingServiceError(
                f"the embedding service at {self._shown_url} returned vectors of different lengths",
                status=None,
                retryable=False,
            )
        if self._dimension is None and vectors:
            self._dimension = len(vectors[0])
        return vectors

    async def _embed_parts(self, parts: list[list[str]], input_type: InputType) -> list[EmbeddedVectors]:
        """The parts' vectors in order; the first failure cancels the other requests and is raised."""
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._embed_part(part, input_type)) for part in parts]
        except BaseExceptionGroup as failed:
            first = failed.exceptions[0]
            if isinstance(first, EmbeddingServiceError):
                raise first from None
            raise
        return [task.result() for task in tasks]

    async def _embed_part(self, inputs: list[str], input_type: InputType) -> EmbeddedVectors:
        """One request (in a passage slot), sent again after a server error up to `request_retries` times."""
        body: dict[str, Any] = {"input": inputs}
        if self._model:
            body["model"] = self._model
        if self._send_input_type:
            body["input_type"] = input_type
        slot = self._passage_slots if input_type == "passage" else contextlib.nullcontext()
        async with slot:
            for retry in range(self._request_retries + 1):
                try:
                    response = await self._request("POST", "/embeddings", json=body)
                    return _parse_vectors(response, len(inputs), self._shown_url)
                except EmbeddingServiceError as exc:
                    # an outage pauses the worker (EmbedderOutage); an error about the texts will not go away
                    if exc.unavailable or not exc.retryable or retry == self._request_retries:
                        raise
                    wait_s = self._retry_backoff_s * 2**retry
                    log.warning(
                        "embedding request of %d texts failed (%s); sending it again in %g s (retry %d of %d)",
                        len(inputs),
                        exc.message,
                        wait_s,
                        retry + 1,
                        self._request_retries,
                    )
                    await asyncio.sleep(wait_s)
        raise AssertionError("unreachable: the last try returns or raises")

    async def info(self) -> EmbeddingServiceInfo:
        """The served model's id, dimension and max tokens from GET /models; fields the service omits are None."""
        self._check_open()
        try:
            response = await self._request("GET", "/models")
        except EmbeddingServiceError as exc:
            if exc.status in (404, 405):
                return EmbeddingServiceInfo(model=self._model, dimension=None, max_tokens=None)
            raise
        cards = _json(response, self._shown_url).get("data")
        if not isinstance(cards, list) or not cards:
            return EmbeddingServiceInfo(model=self._model, dimension=None, max_tokens=None)
        card = next((c for c in cards if isinstance(c, dict) and c.get("id") == self._model), cards[0])
        card = card if isinstance(card, dict) else {}
        return EmbeddingServiceInfo(
            model=card.get("id") if isinstance(card.get("id"), str) else self._model,
            dimension=_positive_int(card.get("dimension")),
            max_tokens=_positive_int(card.get("max_tokens")),
        )

    async def dimension(self) -> int:
        """The vector dimension: from GET /models when the service reports it, else from embedding a probe text."""
        if self._dimension is None:
            reported = (await self.info()).dimension
            self._dimension = reported or len((await self.embed([_DIMENSION_PROBE], "passage"))[0])
        return self._dimension

    async def reported_model(self) -> str | None:
        """The model id the service's embedding responses name now (None: they name none), from embedding a probe."""
        return (await self.embed([_DIMENSION_PROBE], "passage")).reported_model

    def _check_open(self) -> None:
        if self._closed:
            raise EmbeddingClientClosedError(
                f"the embedding client for {self._shown_url} is closed; create a new EmbeddingClient"
            )

    async def _request(self, method: str, path: str, json: dict[str, Any] | None = None) -> httpx.Response:
        # under the base URL's path, before its query (a gateway's ?api-version= or ?api-key=)
        url = self._base.copy_with(path=self._base_path + path)
        shown = redacted_url(str(url))
        try:
            response = await self._http.request(method, url, json=json)
        except httpx.TimeoutException as exc:
            raise EmbeddingServiceError(
                f"{method} {shown} timed out ({type(exc).__name__}, timeout {self._timeout_s:g} s); retry later or"
                " raise embedding.request_timeout",
                status=None,
                retryable=True,
                unavailable=True,
            ) from exc
        except httpx.TransportError as exc:
            raise EmbeddingServiceError(
                f"cannot reach the embedding service at {shown}: {type(exc).__name__}: {exc}; is it running?",
                status=None,
                retryable=True,
                unavailable=True,
            ) from exc
        if response.status_code >= 400:
            sent = json.get("input") if json is not None else None
            raise _status_error(method, shown, response, sent if isinstance(sent, list) else [])
        return response


def _status_error(method: str, url: str, response: httpx.Response, sent: list[str]) -> EmbeddingServiceError:
    """The status, a fixed explanation and the service's reason without the texts sent: some services repeat them."""
    status = response.status_code
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    reason = redacted_reason(_error_detail(response), sent)
    detail = explanation(status) + (f" ({reason})" if reason else "")
    hint = ""
    if status in (401, 403):
        hint = "; check the API key (embedding.api_key / CC_EM_APIKEY) or CC_EM_USERNAME / CC_EM_PASSWORD"
    elif status == 413:
        hint = "; send fewer or shorter inputs per request (embedding.batch_tokens)"
    return EmbeddingServiceError(
        f"{method} {url} answered {status}: {detail}{hint}",
        status=status,
        retryable=retryable,
        unavailable=status in UNAVAILABLE_STATUSES,
    )


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:_MAX_ERROR_CHARS] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
        if isinstance(message, str):
            return message[:_MAX_ERROR_CHARS]
    return str(body)[:_MAX_ERROR_CHARS]


def _json(response: httpx.Response, shown_url: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise EmbeddingServiceError(
            f"the embedding service at {shown_url} answered {response.status_code} without a JSON object; "
            "is base_url an OpenAI-compatible endpoint (usually ending in /v1)?",
            status=response.status_code,
            retryable=False,
        )
    return cast(dict[str, Any], body)


def _parse_vectors(response: httpx.Response, expected: int, shown_url: str) -> EmbeddedVectors:
    body = _json(response, shown_url)
    data = body.get("data")
    if not isinstance(data, list) or len(data) != expected:
        got = len(data) if isinstance(data, list) else "no"
        raise EmbeddingServiceError(
            f"the embedding service at {shown_url} returned {got} embeddings for {expected} inputs",
            status=response.status_code,
            retryable=False,
        )
    ordered = sorted(data, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
    vectors: list[list[float]] = []
    for item in ordered:
        embedding = item.get("embedding") if isinstance(item, dict) else None
        # checked in numpy: per-value Python checks cost ~0.3 ms a 384-d vector, on the event loop that serves queries
        values = np.array(embedding) if isinstance(embedding, list) and embedding else None
        if values is None or values.ndim != 1 or values.dtype.kind not in "iuf":
            raise EmbeddingServiceError(
                f"the embedding service at {shown_url} returned an embedding that is not a list of numbers",
                status=response.status_code,
                retryable=False,
            )
        # Python servers write NaN and Infinity into JSON; stored, such a vector failed its batch's write every time
        if not (np.isfinite(values).all() and np.abs(values).max() <= _FLOAT32_MAX):
            raise EmbeddingServiceError(
                f"the embedding service at {shown_url} returned an embedding with a value that is not a finite 32-bit"
                " float (NaN, infinity or beyond 3.4e38)",
                status=response.status_code,
                retryable=False,
            )
        vectors.append(values.astype(np.float64).tolist())
    model = body.get("model")
    return EmbeddedVectors(vectors, model if isinstance(model, str) and model else None)


def _positive_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

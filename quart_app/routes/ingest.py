"""PUT /loadSources: multipart `sources` parts -> IngestService -> {"loaded_sources", "sources_to_retry"}."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from quart import Blueprint, Response, current_app, request

from quart_app.asgi_body import ClientDisconnectedError, body_stream
from quart_app.engine import engine
from quart_app.http_errors import RETRY_HEADERS, BodyValidationError, ContractError, json_message
from quart_app.lifecycle import lifecycle, require_enabled
from quart_app.loaders.registry import provider_item_mimetype
from quart_app.multipart_sources import (
    MIB,
    MultipartError,
    ReceivedPart,
    TooManyPartsError,
    UploadTooLargeError,
    multipart_boundary,
    read_source_parts,
)
from quart_app.services.ingest import IncomingSource
from quart_app.services.source_order import Ticket
from quart_app.services.source_spool import SourceSpool
from quart_app.source_fields import (
    FILES_PROVIDER,
    MAX_PROVIDER_ID_CHARS,
    MAX_SOURCE_ID_CHARS,
    id_problem,
    is_valid_source_id,
    length_problem,
    parse_bigint,
    shown,
)
from quart_app.store import DatabaseUnavailableError

log = logging.getLogger(__name__)

blueprint = Blueprint("ingest", __name__)
# its body is read by the route from the socket (asgi_body), only once a parser slot is free
STREAMED_ROUTE = ("PUT", "/loadSources")

# upstream's literal strings (the typo in "Invaild" is part of the contract)
INVALID_HEADERS = "Invaild/missing headers for: {filename}"
INVALID_FILENAME = "Invalid source filename for: {title}"
NO_SOURCES = "No sources provided"
BETA_ALL_LOADED = "All sources loaded"
BETA_NOT_ALL_LOADED = "Error: All sources were not loaded, check logs for more info"
WORKER_LIMIT = "Document parser worker limit reached, try again in some time or consider increasing the limit"
# upstream 4.0.3+ waits 10 minutes for a parser slot, then asks the PHP app to retry
GATE_WAIT_S = 600.0
GATE_EXTENSION = "ccb_ingest_gate"


def _gate() -> asyncio.Semaphore:
    """At most doc_parser_worker_limit (ingest.concurrent_requests) requests stream and parse at once."""
    gate: asyncio.Semaphore | None = current_app.extensions.get(GATE_EXTENSION)
    if gate is None:
        config = lifecycle().settings.config
        gate = asyncio.Semaphore(config.doc_parser_worker_limit or config.ingest.concurrent_requests)
        current_app.extensions[GATE_EXTENSION] = gate
    return gate


@dataclass(frozen=True)
class RejectedPart:
    """A part that is not indexed: dropped from both answer lists (the PHP app then removes it from its queue), its
    reason logged with the status upstream would have answered."""

    source_id: str
    message: str
    status: int


def _user_ids(headers: dict[str, str]) -> list[str]:
    # 4.0+: userIds comma-joined; beta (PHP 4.0.0-beta2/3): one userId
    raw = headers.get("userids")
    if raw is None:
        raw = headers.get("userid", "")
    return [user.strip() for user in raw.split(",") if user.strip()]


def _id_header_problem(headers: dict[str, str]) -> str | None:
    """Why an id header cannot be stored (a NUL, a control character, too long for an index), or None: such a part
    would otherwise fail in the database and be retried forever."""
    ids = [("type", headers["type"], id_problem(headers["type"]))]
    ids.append(("provider", headers["provider"], id_problem(headers["provider"], MAX_PROVIDER_ID_CHARS)))
    ids += [("userIds", user, id_problem(user)) for user in _user_ids(headers)]
    return next((f"{name} {shown(value)} {problem}" for name, value, problem in ids if problem), None)


def validate_part(part: ReceivedPart, max_part_bytes: int) -> IncomingSource | RejectedPart:
    """Upstream's per-part checks; a title may be empty (4.5+) but its header must be present."""
    headers = part.headers
    title = headers.get("title")
    modified = headers.get("modified", "").strip()
    required = (headers.get("type", "").strip(), modified, headers.get("provider", "").strip())
    if title is None or not _user_ids(headers) or not all(required) or not modified.isdecimal():
        return RejectedPart(part.filename, INVALID_HEADERS.format(filename=part.filename), 400)
    if parse_bigint(modified) is None:
        return RejectedPart(part.filename, INVALID_HEADERS.format(filename=part.filename), 400)
    if problem := _id_header_problem(headers):
        message = f"{INVALID_HEADERS.format(filename=part.filename)}: {problem}"
        return RejectedPart(part.filename, message, 400)
    if problem := length_problem(part.filename, MAX_SOURCE_ID_CHARS):
        return RejectedPart(part.filename, f"{INVALID_FILENAME.format(title=title)}: the source id {problem}", 400)
    if not part.filename.strip() or not is_valid_source_id(part.filename):
        return RejectedPart(part.filename, INVALID_FILENAME.format(title=title), 400)
    if part.too_large or part.path is None:
        message = (
            f"File {part.filename} is larger than the per-file limit of {max_part_bytes // MIB} MiB "
            "(ingest.max_part_mb); it was not indexed"
        )
        return RejectedPart(part.filename, message, 413)
    mimetype, provider = headers["type"].strip(), headers["provider"].strip()
    if provider != FILES_PROVIDER:
        mimetype = provider_item_mimetype(mimetype)
    return IncomingSource(
        source_id=part.filename,
        user_ids=_user_ids(headers),
        title=title,
        mimetype=mimetype,
        modified=int(modified),
        provider=provider,
        path=part.path,
        size=part.size,
        content_hash=part.sha256,
        readers_complete="userids" in headers,
    )


def _valid_sources(parts: list[ReceivedPart], max_part_bytes: int) -> list[IncomingSource]:
    """The parts to index, one per source id; each refused part is logged with its reason."""
    valid: dict[str, IncomingSource] = {}
    for part in parts:
        outcome = validate_part(part, max_part_bytes)
        if isinstance(outcome, RejectedPart):
            log.warning("loadSources: source %r refused (%d): %s", outcome.source_id, outcome.status, outcome.message)
            continue
        if outcome.source_id in valid:
            # the PHP app sends its queue in order: the later part is the newer content and reader list
            log.warning("loadSources: source %s appears twice in one request; the later one is used", outcome.source_id)
        valid[outcome.source_id] = outcome
    return list(valid.values())


@blueprint.put("/loadSources")
@require_enabled
async def load_sources() -> Response:
    boundary = multipart_boundary(request.headers.get("Content-Type", ""))
    if boundary is None:
        raise BodyValidationError(
            [{"type": "missing", "loc": ["body", "sources"], "msg": "Field required", "input": None}]
        )
    max_request = lifecycle().settings.config.ingest.max_request_mb * MIB
    if (request.content_length or 0) > max_request:
        raise ContractError(str(UploadTooLargeError(max_request)), 413)
    # the body stays unread in the socket until a slot is free: a waiting upload holds no memory
    gate = _gate()
    # the readers in this request are as of now: an access change or delete arriving while it waits wins
    async with engine().order.arrival() as arrival:
        try:
            await asyncio.wait_for(gate.acquire(), GATE_WAIT_S)
        except TimeoutError:
            raise ContractError(WORKER_LIMIT, 503, RETRY_HEADERS) from None
        try:
            return await _load_sources(boundary, arrival)
        finally:
            gate.release()


async def _load_sources(boundary: bytes, arrival: Ticket) -> Response:
    limits = lifecycle().settings.config.ingest
    max_part, max_request = limits.max_part_mb * MIB, limits.max_request_mb * MIB
    try:
        spool = SourceSpool(lifecycle().settings.storage.spool_dir, max_part)
        parts = await read_source_parts(body_stream(request.scope), boundary, spool, max_request, limits.max_parts)
    except (UploadTooLargeError, TooManyPartsError) as exc:
        raise ContractError(str(exc), 413) from None
    except (MultipartError, ClientDisconnectedError) as exc:
        raise ContractError(f"Error: {exc}", 400) from None
    try:
        if not parts:
            raise ContractError(NO_SOURCES, 400)
        valid = _valid_sources(parts, max_part)
        if not valid:
            # as a mixed batch's refused parts: on a 4xx PHP 5.3 keeps the batch queued for good (SubmitContentJob
            # retries it at the head of its queue every 5 minutes, IndexerJob at the end of its queue)
            return _answer(parts, loaded=[], retry=[])
        opened = engine()
        # a source held by another request raises SourceBusyError: 503 + cc-retry (http_errors)
        report = await opened.ingest.ingest(valid, arrival=arrival)
        if len(report.retry) == len(valid) and not opened.db.available:
            # nothing was done: a 503 + cc-retry re-queues the whole batch in every PHP app from 4.0.2 on, while
            # PHP < 4.0.6 would read a 200 with sources_to_retry as "done"
            raise DatabaseUnavailableError(
                f"PostgreSQL is not reachable; none of the {len(valid)} source(s) was indexed, retry the batch once"
                " the database is back"
            )
    finally:
        await asyncio.to_thread(_remove_all, parts)
    # upstream drops failed sources from both lists; the ingest service logged each one's reason, and the document
    # row keeps it (GET /status)
    return _answer(parts, loaded=report.loaded, retry=report.retry)


def _answer(parts: list[ReceivedPart], loaded: list[str], retry: list[str]) -> Response:
    if all(_is_beta(part) for part in parts):
        return _beta_answer(retry)
    return json_message({"loaded_sources": loaded, "sources_to_retry": retry})


def _is_beta(part: ReceivedPart) -> bool:
    """PHP 4.0.0-beta2/3 send a single `userId` header and read no lists from the answer."""
    return "userid" in part.headers and "userids" not in part.headers


def _beta_answer(retry: list[str]) -> Response:
    # beta's PHP throws on any non-2xx: only a transient failure (worth retrying) is reported as one
    if retry:
        return json_message(BETA_NOT_ALL_LOADED, 500)
    return json_message(BETA_ALL_LOADED)


def _remove_all(parts: list[ReceivedPart]) -> None:
    for part in parts:
        part.remove()

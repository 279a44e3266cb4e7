"""Brings a claimed document item into the spool: a content provider's text as it came, a file downloaded from
Nextcloud (GET …/files/{id}) with in-process retries for transient answers, asking the next reader on a 404.

What cannot be fetched comes back as a FileUnavailableError that says whether it ever will be and whose failure it
is, so the documents loop can acknowledge it as failed, keep it for a later try, or leave it locked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from appliance.config import PullConfig
from quart_app.background_loops import LoopHandle, backoff
from quart_app.loaders.registry import provider_item_mimetype
from quart_app.nextcloud import NextcloudAuthError, NextcloudClient, NextcloudError, NextcloudRequestError
from quart_app.pull.pull_gate import FILE_PATH, PullGate
from quart_app.pull.queue_items import DocumentItem
from quart_app.services.errors import SourceTooLargeError, SpoolError
from quart_app.services.ingest import IncomingSource
from quart_app.services.source_spool import SourceSpool, SpooledFile
from quart_app.source_fields import storable_text

log = logging.getLogger(__name__)

# GET …/files/{id} answers this when the file is gone: it will not come
GONE_FILE_STATUS = 404
# "could not be opened for reading": fopen() failed, which on S3 object storage is also any failed read of the object
# (a timeout, a SlowDown); tried again like a 5xx, then acknowledged as failed, not left locked for 24 h
UNREADABLE_FILE_STATUS = 422
# readers asked in turn when Nextcloud answers 404 for one (a share since taken back, a stale mount): the file may
# still be there for the next
READERS_ASKED = 3


class FileUnavailableError(Exception):
    """The file cannot be fetched now; `permanent` says whether it ever will be, `the_files_own` whether the failure is
    the file's (not our credentials', nor a stop's), so that a later try that fails may give up on the file."""

    def __init__(self, message: str, *, permanent: bool, the_files_own: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.the_files_own = the_files_own


class DocumentFetcher:
    """`prepare()` spools one item; at most `concurrent_fetches` downloads run at once."""

    def __init__(
        self, nextcloud: NextcloudClient, gate: PullGate, spool: SourceSpool, pull: PullConfig, concurrent_fetches: int
    ) -> None:
        self._nc = nextcloud
        self._gate = gate
        self._spool = spool
        self._pull = pull
        self._fetch_slots = asyncio.Semaphore(concurrent_fetches)

    async def prepare(
        self, item: DocumentItem, handle: LoopHandle, spooled: list[SpooledFile]
    ) -> SpooledFile | FileUnavailableError:
        """Spool `item`'s content (also appended to `spooled`, for clean-up), or say why it cannot be had."""
        if item.content is None and item.size > self._spool.max_bytes:
            return FileUnavailableError(
                f"the file has {item.size} bytes, above ingest.max_part_mb ({self._spool.max_bytes} bytes)",
                permanent=True,
            )
        result: SpooledFile | FileUnavailableError
        try:
            if item.content is not None:
                content = storable_text(item.content).encode("utf-8")
                result = await self._spool.spool(item.source_id, _one_piece(content))
            else:
                async with self._fetch_slots:
                    result = await self._fetch(item, handle)
        except SourceTooLargeError as exc:
            return FileUnavailableError(str(exc), permanent=True)
        except SpoolError as exc:
            return FileUnavailableError(str(exc), permanent=False)
        if isinstance(result, SpooledFile):
            spooled.append(result)
        return result

    async def _fetch(self, item: DocumentItem, handle: LoopHandle) -> SpooledFile | FileUnavailableError:
        """GET …/files/{id}?userId= with in-process retries for transient answers (context_chat#264); a spool error
        (too large, disk full) is not retried."""
        file_id = item.source_id.split(": ", 1)[1]
        readers = item.user_ids[:READERS_ASKED]
        asked = 0
        last = ""
        unreadable = False
        attempt = 0
        while attempt < self._pull.fetch_attempts:
            attempt += 1
            try:
                return await self._nc.download(
                    FILE_PATH.format(file_id=file_id),
                    self._spool,
                    name=item.source_id,
                    params={"userId": readers[asked]},
                )
            except NextcloudError as exc:
                if exc.status == 404 and asked + 1 < len(readers):
                    asked += 1
                    attempt -= 1  # another reader is another question, not another try of this one
                    log.info("%s: not found for reader %d of %d; asking the next", item.source_id, asked, len(readers))
                    continue
                if exc.status == GONE_FILE_STATUS:
                    return FileUnavailableError(str(exc), permanent=True)
                retried = (400, 408, UNREADABLE_FILE_STATUS)
                if isinstance(exc, NextcloudRequestError | NextcloudAuthError) and exc.status not in retried:
                    # 401/412: our credentials, not the file; another 4xx (403, 409 from a proxy): tried again later
                    return FileUnavailableError(
                        str(exc), permanent=False, the_files_own=not isinstance(exc, NextcloudAuthError)
                    )
                last = str(exc)
                unreadable = exc.status == UNREADABLE_FILE_STATUS
                if exc.transient and (outage := await self._gate.wait_for_nextcloud(handle)) is not False:
                    if outage is None:
                        break
                    # Nextcloud was away (maintenance, a restart): not a try of this file, which would run out of
                    # tries and stay locked for 24 h
                    attempt -= 1
                    continue
                handle.status.count("fetch_retries")
                wait = exc.wait_before_retry(
                    backoff(self._pull.fetch_backoff_s, self._pull.fetch_backoff_max_s, attempt),
                    self._pull.fetch_backoff_max_s,
                )
                if attempt < self._pull.fetch_attempts:
                    await handle.sleep(wait)
                if handle.stopping.is_set():
                    break
        return FileUnavailableError(
            f"gave up after {self._pull.fetch_attempts} tries: {last}",
            permanent=unreadable and not handle.stopping.is_set(),
        )


async def _one_piece(data: bytes) -> AsyncIterator[bytes]:
    """A provider item's text as the byte stream the spool takes."""
    yield data


def incoming_source(item: DocumentItem, spooled: SpooledFile) -> IncomingSource:
    """The spooled item as the ingest service takes it."""
    return IncomingSource(
        source_id=item.source_id,
        user_ids=item.user_ids,
        title=item.title,
        # a provider's text arrives as text whatever document type it names
        mimetype=item.mimetype if item.content is None else provider_item_mimetype(item.mimetype),
        modified=item.modified,
        provider=item.provider,
        path=spooled.path,
        size=spooled.size,
        content_hash=spooled.sha256,
    )

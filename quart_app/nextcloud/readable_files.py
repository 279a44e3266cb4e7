"""Which candidate files the asking user can still read, asked of Nextcloud's WebDAV SEARCH (push mode, PHP app <= 5.3).

A PHP app <= 5.3 on Nextcloud 30+ never tells the backend of an unshare (it listens only for mount events), so the
index still lists a former recipient among a file's readers. Before a push-mode answer or search uses a file, one
SEARCH as the user (AppAPI's signature works on WebDAV too) lists which of the candidates' file ids are in the user's
folder, shares included; the others are left out. Provider sources (mail, calendar) are not files and are kept.

A user who never logged in has no home folder yet (files only shared to them): Nextcloud answers their SEARCH with a
500 (the folder `/<user>/files` not found). That is not an outage: one PROPFIND of their WebDAV root as them makes
Nextcloud set the (empty) folder up, as any first access does (no login, no skeleton files), and the SEARCH asked again
finds the files shared with them.

When Nextcloud does not answer (timeout, 5xx, refused), the question fails with a 503 naming why, instead of being
answered: the index cannot tell a user's own file from a shared one, and an answer from all the files would quote
text the user may have lost, one from none of them would say "no documents" to a user who has some. Nextcloud is the
caller in push mode, so it is up and its user sees the error at once and can ask again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from urllib.parse import quote
from xml.etree import ElementTree

from quart_app.nextcloud.client import NextcloudClient
from quart_app.nextcloud.errors import NextcloudError, NextcloudHomeNotSetUpError
from quart_app.nextcloud.readable_check_wait import ReadableCheckWait
from quart_app.services.answer import DocSearchResult, log_left_out
from quart_app.services.errors import ReadabilityUnknownError

log = logging.getLogger(__name__)

FILE_SOURCE_PREFIX = "files__default: "
SEARCH_PATH = "/remote.php/dav/"
# Nextcloud's FileSearchBackend::OPERATOR_LIMIT: comparisons one SEARCH may hold
IDS_PER_SEARCH = 100
_OC_FILEID = "{http://owncloud.org/ns}fileid"
# a PROPFIND of the user's root for its file id: Nextcloud creates a missing home folder to answer it
HOME_PROPFIND = (
    b'<?xml version="1.0" encoding="UTF-8"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    b"<d:prop><oc:fileid/></d:prop></d:propfind>"
)


def file_ids(sources: Sequence[DocSearchResult]) -> dict[str, int]:
    """The Nextcloud file id of each source that is a file (`files__default: <fileid>`), by source id."""
    ids: dict[str, int] = {}
    for source in sources:
        source_id = source["source_id"]
        if source_id.startswith(FILE_SOURCE_PREFIX) and (raw := source_id.removeprefix(FILE_SOURCE_PREFIX)).isdigit():
            ids[source_id] = int(raw)
    return ids


def search_body(user_id: str, ids: Sequence[int]) -> bytes:
    """A SEARCH for the files among `ids` anywhere in the user's folder (their own files and those shared with them)."""
    comparisons = "".join(f"<d:eq><d:prop><oc:fileid/></d:prop><d:literal>{i}</d:literal></d:eq>" for i in ids)
    where = comparisons if len(ids) == 1 else f"<d:or>{comparisons}</d:or>"
    # Nextcloud urldecodes the user's name in the scope once (its principal backend): a raw "+" named another user
    scope = f"/files/{quote(user_id, safe='')}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<d:searchrequest xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:basicsearch>'
        "<d:select><d:prop><oc:fileid/></d:prop></d:select>"
        f"<d:from><d:scope><d:href>{scope}</d:href><d:depth>infinity</d:depth></d:scope></d:from>"
        f"<d:where>{where}</d:where><d:orderby/>"
        f"<d:limit><d:nresults>{len(ids)}</d:nresults></d:limit>"
        "</d:basicsearch></d:searchrequest>"
    ).encode()


def found_ids(multistatus: bytes) -> set[int]:
    """The file ids a SEARCH answer lists."""
    try:
        root = ElementTree.fromstring(multistatus)
    except ElementTree.ParseError as exc:
        raise NextcloudError(f"SEARCH {SEARCH_PATH}: the answer is not a WebDAV multistatus ({exc})") from None
    return {int(text) for element in root.iter(_OC_FILEID) if (text := (element.text or "").strip()).isdigit()}


async def readable_file_ids(nc: NextcloudClient, user_id: str, ids: Sequence[int], wait: ReadableCheckWait) -> set[int]:
    """Which of `ids` the user can read now; one SEARCH per IDS_PER_SEARCH ids, sent together, given what is left of
    the question's `wait`. A user whose home Nextcloud has not set up has it set up, then is searched again, within
    the same wait."""
    batches = [ids[start : start + IDS_PER_SEARCH] for start in range(0, len(ids), IDS_PER_SEARCH)]
    try:
        answers = await _search(nc, user_id, batches, wait)
    except NextcloudHomeNotSetUpError:
        log.info("Nextcloud has not set up the asking user's home (never logged in): setting it up, searching again")
        home = home_path(user_id)
        await wait.call(
            f"PROPFIND {home}",
            lambda left_s: nc.dav("PROPFIND", home, user=user_id, body=HOME_PROPFIND, timeout_s=left_s, depth="0"),
        )
        answers = await _search(nc, user_id, batches, wait)
    return set().union(*(found_ids(answer) for answer in answers))


def home_path(user_id: str) -> str:
    """The user's WebDAV root, the user's name percent-encoded as in the SEARCH scope."""
    return f"{SEARCH_PATH}files/{quote(user_id, safe='')}/"


async def _search(
    nc: NextcloudClient, user_id: str, batches: list[Sequence[int]], wait: ReadableCheckWait
) -> list[bytes]:
    async def searches(left_s: float) -> list[bytes]:
        return await asyncio.gather(
            *(
                nc.dav("SEARCH", SEARCH_PATH, user=user_id, body=search_body(user_id, batch), timeout_s=left_s)
                for batch in batches
            )
        )

    return await wait.call(f"SEARCH {SEARCH_PATH}", searches)


class UnreadableFilesByDav:
    """AnswerService's `unreadable` check for the push routes (/query, /docSearch): the candidate files Nextcloud
    does not find in the user's folder. ReadabilityUnknownError when Nextcloud does not answer; one per question,
    its rounds' requests sharing the wait `timeout_s` (ReadableCheckWait)."""

    def __init__(self, nc: NextcloudClient, timeout_s: float) -> None:
        self._nc = nc
        self._wait = ReadableCheckWait(timeout_s)

    async def __call__(self, user_id: str, sources: list[DocSearchResult]) -> set[str]:
        ids = file_ids(sources)
        if not ids:
            return set()
        try:
            readable = await readable_file_ids(self._nc, user_id, sorted(set(ids.values())), self._wait)
        except NextcloudError as exc:
            raise ReadabilityUnknownError(len(ids), str(exc)) from None
        gone = {source_id for source_id, file_id in ids.items() if file_id not in readable}
        log_left_out(log, gone)
        return gone

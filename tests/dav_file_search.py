"""Nextcloud's WebDAV SEARCH by file id, for the fake Nextclouds (tests/retrieval/fake_nextcloud.py, tests/pull).

What Nextcloud 34 answers to `SEARCH /remote.php/dav/` as an AppAPI-signed user (checked on the real one,
shared/realnc): a 207 multistatus listing, with its `oc:fileid`, each asked file found in the scope `/files/<user>`
(own files and those shared with the user; the user's name in it urldecoded: a raw "+" names another user, whose
folder fails the search with a 500, or no one, a 404); a file the user cannot read is simply not listed. At most 100
comparisons per search (FileSearchBackend::OPERATOR_LIMIT), else 400. A user who never logged in has no home folder
yet: their search fails with a 500 `OCP\\Files\\NotFoundException` naming `/<user>/files`, until a PROPFIND of their
WebDAV root as them (`PROPFIND /remote.php/dav/files/<user>/`, asking for `oc:fileid`) makes Nextcloud set it up; from
then on their search finds the files shared with them (bench/results/push_never_logged_in_realnc.txt). The fake finds
every asked id except those a test took from the user (`revoke`: an unshare the PHP app never sent); a user Nextcloud
does not know gets 401; a test can make searches hang (`stall`) or name users who never logged in (`never_logged_in`).
"""

from __future__ import annotations

import threading
from collections import deque
from urllib.parse import unquote, unquote_plus
from xml.etree import ElementTree

SEARCH_PATH = "/remote.php/dav"
HOME_PREFIX = "/remote.php/dav/files/"
OPERATOR_LIMIT = 100
_DAV = "{DAV:}"
_OC_FILEID = "{http://owncloud.org/ns}fileid"
MULTISTATUS_HEAD = (
    '<?xml version="1.0"?>\n<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns"'
    ' xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">'
)


class DavFileSearch:
    """The SEARCH route's state and answers; thread-safe (the fakes serve from threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revoked: dict[str, set[int]] = {}
        # the users Nextcloud knows, when set: AppAPI's WebDAV auth answers any other 401 (None: every user)
        self.users: set[str] | None = None
        # HTTP statuses answered to the next searches, in order (503: Nextcloud in trouble)
        self.faults: deque[int] = deque()
        # (user, file ids asked) of every search answered 207, in order
        self.searches: list[tuple[str, list[int]]] = []
        # users whose home folder Nextcloud has not set up (never logged in); a PROPFIND of their root sets it up
        self.never_logged_in: set[str] = set()
        # the users whose home a PROPFIND set up, in order; HTTP statuses answered to the next PROPFINDs, in order
        self.homes_set_up: list[str] = []
        self.propfind_faults: deque[int] = deque()
        # cleared by `stall`: searches wait for `resume` (Nextcloud hanging); set when a search began waiting
        self._answering = threading.Event()
        self._answering.set()
        self.stalled = threading.Event()

    def stall(self) -> None:
        """Searches get no answer until `resume` (a Nextcloud that hangs; the client's timeout must end them)."""
        self._answering.clear()

    def resume(self) -> None:
        """Stalled searches and later ones are answered again."""
        self._answering.set()

    def revoke(self, user: str, *file_ids: int) -> None:
        """The user can no longer read these files (anna unshared them): searches no longer list them."""
        with self._lock:
            self._revoked.setdefault(user, set()).update(file_ids)

    def answer(self, user: str, body: bytes) -> tuple[int, bytes]:
        """(status, XML body) for a SEARCH sent as `user`."""
        if not self._answering.is_set():
            self.stalled.set()
            self._answering.wait()
        with self._lock:
            if self.faults:
                status = self.faults.popleft()
                return status, _error("Sabre\\DAV\\Exception\\ServiceUnavailable", "scripted fault")
            if self.users is not None and user not in self.users:
                return 401, _error("Sabre\\DAV\\Exception\\NotAuthenticated", "AppAPIAuth has not passed")
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            return 400, _error("Sabre\\DAV\\Exception\\BadRequest", "the body is not XML")
        scope = root.findtext(f".//{_DAV}from/{_DAV}scope/{_DAV}href") or ""
        if not scope.startswith("/files/"):
            return 400, _error("InvalidArgumentException", f"scope {scope!r} is not the user's folder")
        # Nextcloud's principal backend urldecodes the name (PHP's urldecode: "+" is a space too)
        named = unquote_plus(scope.removeprefix("/files/"))
        if named != user:
            if self.users is not None and named not in self.users:
                return 404, _error("Sabre\\DAV\\Exception\\NotFound", f"Principal with name {named} not found")
            # another user's folder is an empty collection to this one, and a search in it fails
            return 500, _error("InvalidArgumentException", "Search is only supported on directories")
        with self._lock:
            if user in self.never_logged_in:
                return 500, _error("OCP\\Files\\NotFoundException", f"/{user}/files")
        comparisons = root.findall(f".//{_DAV}where//{_DAV}eq")
        if len(comparisons) > OPERATOR_LIMIT:
            return 400, _error("InvalidArgumentException", "maximum operator limit of 100 exceeded")
        asked = [
            int(eq.findtext(f"{_DAV}literal") or "0") for eq in comparisons if eq.find(f".//{_OC_FILEID}") is not None
        ]
        with self._lock:
            self.searches.append((user, asked))
            found = [file_id for file_id in asked if file_id not in self._revoked.get(user, set())]
        responses = "".join(
            f"<d:response><d:href>/remote.php/dav/files/{user}/file-{file_id}.txt</d:href><d:propstat><d:prop>"
            f"<oc:fileid>{file_id}</oc:fileid></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
            for file_id in found
        )
        return 207, f"{MULTISTATUS_HEAD}{responses}</d:multistatus>".encode()

    def propfind(self, user: str, path: str) -> tuple[int, bytes]:
        """(status, XML body) for a PROPFIND of `path` sent as `user`; the fake knows only the user's own root."""
        with self._lock:
            if self.propfind_faults:
                status = self.propfind_faults.popleft()
                return status, _error("Sabre\\DAV\\Exception\\ServiceUnavailable", "scripted fault")
            if self.users is not None and user not in self.users:
                return 401, _error("Sabre\\DAV\\Exception\\NotAuthenticated", "AppAPIAuth has not passed")
            if unquote(path.removeprefix(HOME_PREFIX)).rstrip("/") != user:
                return 400, _error("Sabre\\DAV\\Exception\\BadRequest", "the fake answers only the user's own root")
            if user in self.never_logged_in:
                self.never_logged_in.discard(user)
                self.homes_set_up.append(user)
        response = (
            f"<d:response><d:href>{path}</d:href><d:propstat><d:prop><oc:fileid>1</oc:fileid></d:prop>"
            "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
        )
        return 207, f"{MULTISTATUS_HEAD}{response}</d:multistatus>".encode()


def _error(exception: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">'
        f"<s:exception>{exception}</s:exception><s:message>{message}</s:message></d:error>"
    ).encode()

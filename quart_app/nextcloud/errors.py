"""Errors of the Nextcloud client, one class per kind of answer; `transient` says whether a retry can help."""

from __future__ import annotations

# the longest a Retry-After is honoured: a server asking for more is asked again after this long
LONGEST_RETRY_AFTER_S = 300.0


class NextcloudError(Exception):
    """A call to Nextcloud failed; `status` is the HTTP (or OCS meta) status when there was an answer, `retry_after_s`
    the wait its Retry-After header asked for (429 and 503, from Nextcloud or a reverse proxy)."""

    transient = False

    def __init__(self, message: str, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s

    def wait_before_retry(self, own_backoff_s: float, longest_s: float = LONGEST_RETRY_AFTER_S) -> float:
        """The pause before the next try: our own backoff, or the server's Retry-After when that is longer, at most
        `longest_s` (a proxy asking for hours must not stall a loop that long)."""
        if self.retry_after_s is None:
            return own_backoff_s
        return max(own_backoff_s, min(self.retry_after_s, longest_s))


class NextcloudNotConfiguredError(NextcloudError):
    """NEXTCLOUD_URL (or the AppAPI identity) is not set, so Nextcloud cannot be called at all."""


class NextcloudClosedError(NextcloudError):
    """The client was used after aclose()."""


class NextcloudNotFoundError(NextcloudError):
    """404: the route or the object does not exist (a PHP app <= 5.3 has no queue routes)."""


class NextcloudAuthError(NextcloudError):
    """401/412 ("ExApp required"): AppAPI did not accept our APP_ID/APP_SECRET."""


class NextcloudHomeNotSetUpError(NextcloudError):
    """WebDAV as a user whose home folder Nextcloud has not set up yet (never logged in): 500 NotFoundException."""


class NextcloudRequestError(NextcloudError):
    """Another 4xx: Nextcloud refused the request as sent."""


class NextcloudRateLimitedError(NextcloudError):
    """429: rate limited."""

    transient = True

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message, 429, retry_after_s)


class NextcloudServerError(NextcloudError):
    """5xx: Nextcloud failed; worth retrying later."""

    transient = True


class NextcloudTimeoutError(NextcloudError):
    """No answer within the timeout (nc_py_api calls this 408)."""

    transient = True

    def __init__(self, message: str) -> None:
        super().__init__(message, 408)


class NextcloudUnreachableError(NextcloudError):
    """The connection failed or broke (Nextcloud down, restarting, wrong NEXTCLOUD_URL)."""

    transient = True

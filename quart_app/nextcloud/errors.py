"""Errors of the Nextcloud client, one class per kind of answer; `transient` says whether a retry can help."""

from __future__ import annotations


class NextcloudError(Exception):
    """A call to Nextcloud failed; `status` is the HTTP (or OCS meta) status when there was an answer."""

    transient = False

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NextcloudNotConfiguredError(NextcloudError):
    """NEXTCLOUD_URL (or the AppAPI identity) is not set, so Nextcloud cannot be called at all."""


class NextcloudClosedError(NextcloudError):
    """The client was used after aclose()."""


class NextcloudNotFoundError(NextcloudError):
    """404: the route or the object does not exist (a PHP app <= 5.3 has no queue routes)."""


class NextcloudAuthError(NextcloudError):
    """401/412 ("ExApp required"): AppAPI did not accept our APP_ID/APP_SECRET."""


class NextcloudRequestError(NextcloudError):
    """Another 4xx: Nextcloud refused the request as sent."""


class NextcloudRateLimitedError(NextcloudError):
    """429: rate limited; `retry_after_s` is the server's Retry-After when it sent one."""

    transient = True

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message, 429)
        self.retry_after_s = retry_after_s


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

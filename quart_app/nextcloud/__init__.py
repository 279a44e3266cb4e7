"""The one seam to Nextcloud: every OCS call (init progress, TaskProcessing, queues, files, resolve/enrich)."""

from quart_app.nextcloud.client import NextcloudClient
from quart_app.nextcloud.errors import (
    NextcloudAuthError,
    NextcloudClosedError,
    NextcloudError,
    NextcloudHomeNotSetUpError,
    NextcloudNotConfiguredError,
    NextcloudNotFoundError,
    NextcloudRateLimitedError,
    NextcloudRequestError,
    NextcloudServerError,
    NextcloudTimeoutError,
    NextcloudUnreachableError,
)

__all__ = [
    "NextcloudAuthError",
    "NextcloudClient",
    "NextcloudClosedError",
    "NextcloudError",
    "NextcloudHomeNotSetUpError",
    "NextcloudNotConfiguredError",
    "NextcloudNotFoundError",
    "NextcloudRateLimitedError",
    "NextcloudRequestError",
    "NextcloudServerError",
    "NextcloudTimeoutError",
    "NextcloudUnreachableError",
]

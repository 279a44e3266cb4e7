"""The process's role from APP_ROLE, read as upstream 5.4 reads it, plus our embedding-worker role."""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Mapping

logger = logging.getLogger(__name__)


class AppRole(enum.StrEnum):
    """What one replica runs; ``normal`` is the whole appliance."""

    NORMAL = "normal"
    # the document queue: claim, fetch, parse, chunk, store
    INDEXING = "indexing"
    # the action queue: deletes and access changes
    UPDATESPROC = "updatesproc"
    # TaskProcessing, /trigger, the push routes, repairs and config creation
    REQUESTPROC = "requestproc"
    # ours: only drains the embedding queue
    EMBEDDING_WORKER = "embedding-worker"


def app_role(environ: Mapping[str, str] | None = None) -> AppRole:
    """The role APP_ROLE names; empty or unknown means ``normal``, as upstream's ``get_app_role`` decides."""
    raw = (os.environ if environ is None else environ).get("APP_ROLE", "").strip().lower()
    if not raw:
        return AppRole.NORMAL
    try:
        return AppRole(raw)
    except ValueError:
        logger.warning(
            "APP_ROLE=%r is not a role (%s); running as normal", raw, ", ".join(role.value for role in AppRole)
        )
        return AppRole.NORMAL

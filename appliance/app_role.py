"""The process's role from APP_ROLE, read as upstream 5.4 reads it, plus our embedding-worker role.

`ROLE_DUTIES` is the one table of what each role runs: the app's loops and routes, the supervisord programs and the
start-up setup all look their duty up here (`has_duty`), never at the role itself.
"""

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


class Duty(enum.StrEnum):
    """One job of a replica; a role is a set of them."""

    # start-up: run the repair steps and create config.yaml (the other roles wait for that file)
    SETUP = "setup"
    # may run the embedded PostgreSQL: one box only, replicas share one EXTERNAL_DB
    EMBEDDED_DATABASE = "embedded-database"
    # the parse pool (worker processes): the document queue and PUT /loadSources need it
    PARSING = "parsing"
    # pull: claim files and content items from the PHP app's document queue and ingest them
    DOCUMENT_QUEUE = "document-queue"
    # pull: deletes and access changes from the PHP app's action queue
    ACTION_QUEUE = "action-queue"
    # pull: TaskProcessing chat and search tasks, and POST /trigger that announces them
    TASKS = "tasks"
    # push (PHP app <= 5.3): /loadSources, /query, /docSearch, the deletes and access changes
    PUSH_ROUTES = "push-routes"
    # the embedding-queue worker: embeds the chunks ingest queued
    EMBEDDING = "embedding"
    # the status history sampler behind the status page's charts (one writer is enough)
    STATUS_HISTORY = "status-history"


ROLE_DUTIES: Mapping[AppRole, frozenset[Duty]] = {
    AppRole.NORMAL: frozenset(Duty),
    # upstream's indexing replica stores embedded documents, so it also drains the embedding queue: the three
    # roles AppAPI deploys from info.xml then index completely without an embedding-worker replica
    AppRole.INDEXING: frozenset({Duty.PARSING, Duty.DOCUMENT_QUEUE, Duty.EMBEDDING}),
    AppRole.UPDATESPROC: frozenset({Duty.ACTION_QUEUE}),
    AppRole.REQUESTPROC: frozenset({Duty.SETUP, Duty.PARSING, Duty.TASKS, Duty.PUSH_ROUTES, Duty.STATUS_HISTORY}),
    AppRole.EMBEDDING_WORKER: frozenset({Duty.EMBEDDING}),
}

# duties that embed text (passages or questions): a role with none of them needs no embedder program
EMBEDDER_DUTIES = frozenset({Duty.EMBEDDING, Duty.TASKS, Duty.PUSH_ROUTES})
# duties that answer questions: a role with none of them loads no LLM
ANSWER_DUTIES = frozenset({Duty.TASKS, Duty.PUSH_ROUTES})
# the duties that ingest or change access: they take source claims (quart_app/store/claim_store.py)
CLAIM_DUTIES = frozenset({Duty.DOCUMENT_QUEUE, Duty.ACTION_QUEUE, Duty.PUSH_ROUTES})


def has_duty(role: AppRole, duty: Duty) -> bool:
    return duty in ROLE_DUTIES[role]


def needs_any(role: AppRole, duties: frozenset[Duty]) -> bool:
    return bool(ROLE_DUTIES[role] & duties)


def replica_roles(duty: Duty) -> list[AppRole]:
    """The roles of a split deployment that do `duty` (normal, the whole appliance, aside)."""
    return [role for role, duties in ROLE_DUTIES.items() if role is not AppRole.NORMAL and duty in duties]


def named_role(environ: Mapping[str, str] | None = None) -> AppRole | None:
    """The role APP_ROLE names (empty: ``normal``), or None when it names none."""
    raw = (os.environ if environ is None else environ).get("APP_ROLE", "").strip().lower()
    if not raw:
        return AppRole.NORMAL
    try:
        return AppRole(raw)
    except ValueError:
        return None


def app_role(environ: Mapping[str, str] | None = None) -> AppRole:
    """The role APP_ROLE names; empty or unknown means ``normal``, as upstream's ``get_app_role`` decides."""
    role = named_role(environ)
    if role is None:
        raw = (os.environ if environ is None else environ).get("APP_ROLE", "")
        logger.warning(
            "APP_ROLE=%r is not a role (%s); running as normal", raw, ", ".join(known.value for known in AppRole)
        )
        return AppRole.NORMAL
    return role

"""Access updates: allow/deny per source or per provider, and declarative per source (contract section 3.2).

Denying the last reader removes the document and its chunks. Unlike upstream 4.x, the provider variant really
works, and a missing source is reported (False) instead of raising, so the route can answer 200 as 4.1.1+ does.
Each change holds what it touches in the SourceOrder, so a load of the same source that is already being ingested
commits first and cannot restore a reader afterwards.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Literal

from quart_app.services.errors import InvalidRequestError
from quart_app.services.id_lists import BATCH, clean_ids, required
from quart_app.services.source_order import SourceOrder, provider_key, source_key
from quart_app.store import Database
from quart_app.store import access_store as store

logger = logging.getLogger(__name__)

AccessOp = Literal["allow", "deny"]


def _op(op: str) -> AccessOp:
    if op not in ("allow", "deny"):
        raise InvalidRequestError(f"access op {op!r} is not known; use 'allow' or 'deny'")
    return "allow" if op == "allow" else "deny"


async def update_access(db: Database, order: SourceOrder, op: str, user_ids: list[str], source_id: str) -> bool:
    """Allow or deny the users on one source; False if the source is not stored."""
    return await update_access_sources(db, order, op, user_ids, [source_id]) > 0


async def update_access_sources(
    db: Database, order: SourceOrder, op: str, user_ids: list[str], source_ids: list[str]
) -> int:
    """Allow or deny the users on several sources; returns how many of them are stored."""
    action = _op(op)
    users = clean_ids(user_ids, "user id")
    ids = clean_ids(source_ids, "source id")
    async with order.change(map(source_key, ids)):
        found = await _update_sources(db, action, users, ids)
    if found < len(ids):
        logger.info("access %s: %d of %d source id(s) not stored; ignored", action, len(ids) - found, len(ids))
    return found


async def _update_sources(db: Database, action: AccessOp, users: list[str], ids: list[str]) -> int:
    found = 0
    for start in range(0, len(ids), BATCH):
        part = ids[start : start + BATCH]
        async with db.connection() as conn:
            found += len(await store.existing_sources(conn, part))
        if action == "allow":
            await db.run_transaction(partial(store.allow, user_ids=users, source_ids=part), "granting access")
        else:
            work = partial(store.deny, user_ids=users, source_ids=part)
            _rows, orphans = await db.run_transaction(work, "denying access")
            if orphans:
                logger.info("access denied: %d document(s) without readers removed", orphans)
    return found


async def update_access_provider(db: Database, order: SourceOrder, op: str, user_ids: list[str], provider: str) -> int:
    """Allow or deny the users on every document of a provider; returns access rows added or removed."""
    action = _op(op)
    users = clean_ids(user_ids, "user id")
    key = required(provider, "provider id")
    async with order.change([provider_key(key)]):
        if action == "allow":
            work = partial(store.allow_provider, user_ids=users, provider=key)
            return await db.run_transaction(work, "granting access to a provider")
        deny = partial(store.deny_provider, user_ids=users, provider=key)
        rows, orphans = await db.run_transaction(deny, "denying access to a provider")
    if orphans:
        logger.info("provider access denied: %d document(s) without readers removed", orphans)
    return rows


async def update_access_declarative(db: Database, order: SourceOrder, user_ids: list[str], source_id: str) -> bool:
    """Exactly these users may read the source; False if the source is not stored."""
    users = clean_ids(user_ids, "user id")
    sid = required(source_id, "source id")
    async with order.change([source_key(sid)]):
        found = await db.run_transaction(partial(store.declare, user_ids=users, source_id=sid), "declaring readers")
    if not found:
        logger.info("declarative access: source not stored; ignored")
    return found

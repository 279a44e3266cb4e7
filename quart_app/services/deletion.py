"""Deleting documents by id, provider or user (upstream 4.0-5.3 semantics, plus the beta4 per-user variants).

A document no user may read any more is removed together with its chunks. Long id lists are sent as arrays
(`= ANY(%s)`, never one parameter per id) and split into transactions of `id_lists.BATCH` ids. Each delete holds
what it touches in the SourceOrder, so a load already being ingested commits first and cannot resurrect a document.
A transaction PostgreSQL rolls back as a deadlock victim runs again (Database.run_transaction); if it keeps
conflicting, the route answers 503 + cc-retry.
"""

from __future__ import annotations

import logging
from functools import partial

from quart_app.services.id_lists import BATCH, clean_ids, required
from quart_app.services.source_order import SourceOrder, bare_provider_key, provider_key, source_key, user_key
from quart_app.source_fields import FILES_PROVIDER, is_valid_provider_id
from quart_app.store import Database
from quart_app.store import access_store as store

logger = logging.getLogger(__name__)


async def delete_sources(db: Database, order: SourceOrder, source_ids: list[str]) -> int:
    """Delete the documents (chunks and access cascade); returns how many existed."""
    ids = clean_ids(source_ids, "source id")
    deleted = 0
    async with order.change(map(source_key, ids)):
        for start in range(0, len(ids), BATCH):
            part = ids[start : start + BATCH]
            deleted += await db.run_transaction(partial(store.delete_sources, source_ids=part), "deleting sources")
    logger.info("deleted %d of %d requested source(s)", deleted, len(ids))
    return deleted


async def delete_provider(db: Database, order: SourceOrder, provider: str) -> int:
    """Delete every document of a provider, for all users."""
    key = required(provider, "provider key")
    async with order.change([provider_key(key)]):
        deleted = await db.run_transaction(partial(store.delete_provider, provider=key), "deleting a provider")
    logger.info("deleted %d source(s) of provider %s", deleted, key)
    return deleted


async def delete_named_provider(db: Database, order: SourceOrder, provider: str) -> int:
    """Delete a provider as the PHP app names it: a full key, or a bare provider id (an app disable in PHP < 5.5,
    context_chat#258), which means each stored content provider of that name."""
    key = required(provider, "provider key")
    if is_valid_provider_id(key):
        return await delete_provider(db, order, key)
    # loads hold the bare id too: the first documents of a provider, not stored yet, commit first or are found stale
    async with order.change([bare_provider_key(key)]):
        deleted = 0
        for full_key in await _provider_keys(db, key):
            deleted += await delete_provider(db, order, full_key)
    return deleted


async def _provider_keys(db: Database, key: str) -> list[str]:
    """The stored keys whose provider part is the bare id `key`."""
    async with db.connection() as conn:
        stored = await store.stored_providers(conn)
    # the files provider is not a content provider: an app disable can never mean it
    keys = [name for name in stored if name != FILES_PROVIDER and name.split("__", 1)[-1] == key]
    logger.info("bare provider id %r means %s", key, keys or "no stored provider")
    return keys


async def delete_provider_for_all_users(db: Database, order: SourceOrder, provider: str) -> int:
    """beta4 name of `delete_provider`."""
    return await delete_provider(db, order, provider)


async def delete_user(db: Database, order: SourceOrder, user_id: str) -> int:
    """Remove a user's access everywhere and the documents only they could read; returns documents removed."""
    user = required(user_id, "user id")
    async with order.change([user_key(user)]):
        rows, documents = await db.run_transaction(partial(store.delete_user, user_id=user), "deleting a user")
    logger.info("user removed: %d access row(s), %d orphaned document(s) deleted", rows, documents)
    return documents


async def delete_user_sources(db: Database, order: SourceOrder, user_id: str, source_ids: list[str]) -> int:
    """beta4 `deleteSources(userId, sourceNames)`: the user loses these sources; orphans are removed."""
    user = required(user_id, "user id")
    ids = clean_ids(source_ids, "source id")
    documents = 0
    async with order.change(map(source_key, ids)):
        for start in range(0, len(ids), BATCH):
            part = ids[start : start + BATCH]
            work = partial(store.delete_user_sources, user_id=user, source_ids=part)
            _rows, gone = await db.run_transaction(work, "deleting a user's sources")
            documents += gone
    return documents


async def delete_user_provider(db: Database, order: SourceOrder, user_id: str, provider: str) -> int:
    """beta4 `deleteSourcesByProvider(userId, providerKey)`: the user loses the provider's sources."""
    user = required(user_id, "user id")
    key = required(provider, "provider key")
    async with order.change([provider_key(key)]):
        work = partial(store.delete_user_provider, user_id=user, provider=key)
        _rows, documents = await db.run_transaction(work, "deleting a user's provider")
    return documents


async def count_documents_by_provider(db: Database) -> dict[str, int]:
    """Indexed documents per provider, e.g. {"files__default": 1234}; {} when empty."""
    async with db.connection() as conn:
        return await store.count_by_provider(conn)

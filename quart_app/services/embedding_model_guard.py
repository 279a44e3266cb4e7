"""Guards the index against an embedding service that switched models behind the same URL.

Vectors of another dimension than the stored ones, or responses naming another model than the stored vectors'
responses did, mean the service now serves another model: embedding then waits, as in an outage (attempts untouched),
until a restart binds the new model and re-embeds, instead of failing every chunk or mixing two models in one index.
"""

from __future__ import annotations

from quart_app.runtimes.errors import EmbeddingServiceError
from quart_app.store import Database
from quart_app.store.migrator import StoredModel, record_reported_model, stored_model


class StoredModelGuard:
    """The model the store's vectors come from, read at the first claim (and again when a response differs)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._stored_model: StoredModel | None = None

    async def read_once(self) -> None:
        """Read the stored model unless it is known already."""
        if self._stored_model is None:
            await self._read_stored_model()

    async def _read_stored_model(self) -> None:
        async with self._db.connection() as conn:
            self._stored_model = await stored_model(conn)

    async def check_dimension(self, dimension: int) -> None:
        """Vectors of another length than the stored ones: the service now serves another model, so embedding
        waits (as in an outage, attempts untouched) instead of failing every chunk."""
        if self._stored_model is None or self._stored_model.dimension == dimension:
            return
        await self._read_stored_model()  # another replica may have bound the new model meanwhile
        if self._stored_model is None or self._stored_model.dimension == dimension:
            return
        model_id, stored = self._stored_model.model_id, self._stored_model.dimension
        raise EmbeddingServiceError(
            f"the embedding service returned {dimension}-d vectors, but the stored vectors are {stored}-d from model"
            f" {model_id!r}: the service now serves another model. Restart the app to bind the new model and"
            f" re-embed every chunk with it, or point embedding.base_url / CC_EM_BASE_URL back at {model_id!r};"
            " embedding waits until then",
            status=None,
            retryable=True,
            unavailable=True,
        )

    async def check_reported_model(self, reported: str) -> None:
        """A response naming another model than the one the stored vectors' responses named: the service now serves
        another model of the same dimension, so embedding waits (as for another dimension) instead of mixing them."""
        if self._stored_model is None or self._stored_model.reported_model == reported:
            return
        if self._stored_model.reported_model is None:
            # the first response since the model was bound: it names the model the index's vectors come from
            async with self._db.connection() as conn:
                await record_reported_model(conn, self._stored_model.model_id, reported)
        await self._read_stored_model()  # another worker may have recorded it, or a restart bound another model
        if self._stored_model is None or self._stored_model.reported_model in (None, reported):
            return
        known = self._stored_model.reported_model
        raise EmbeddingServiceError(
            f"the embedding service's responses name model {reported!r}, but the stored vectors come from"
            f" {known!r}: the service now serves another model. Restart the app to bind the new model and re-embed"
            f" every chunk with it, or point embedding.base_url / CC_EM_BASE_URL back at {known!r}; embedding waits"
            " until then",
            status=None,
            retryable=True,
            unavailable=True,
        )

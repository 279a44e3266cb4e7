"""Errors raised by the embedder program and its runtimes."""

from pathlib import Path


class EmbedderError(Exception):
    """Base class of every error the embedder raises on purpose."""


class RuntimeLoadError(EmbedderError):
    """A model could not be loaded into an embedding runtime."""


class ModelFileUnreadableError(RuntimeLoadError):
    """A runtime cannot read a model or tokenizer file (damaged, cut short, or another format); `path` names it."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


class RuntimeUnavailableError(RuntimeLoadError):
    """The Python package a runtime needs (e.g. llama_cpp) is not installed."""


class EmbeddingFailedError(EmbedderError):
    """The runtime failed while embedding a batch."""


class EmbedderClosedError(EmbedderError):
    """The embedding scheduler was used after it was closed."""

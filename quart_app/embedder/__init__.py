"""The embedder program: embedding runtimes (ONNX, llama.cpp) behind an OpenAI-compatible HTTP API."""

from quart_app.embedder.app import create_embedder_app
from quart_app.embedder.runtime import EmbeddingRuntime, InputType

__all__ = ["EmbeddingRuntime", "InputType", "create_embedder_app"]

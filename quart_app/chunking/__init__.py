"""Token-budgeted recursive chunking of normalized document text."""

from .chunker import Chunk, TokenChunker, default_chunk_tokens, default_overlap_tokens, embedding_text, prefix_tokens
from .chunker_spec import ChunkerSpec
from .errors import ChunkerConfigError, ChunkerError, ChunkerInputError
from .separators import rules_for

__all__ = [
    "Chunk",
    "ChunkerConfigError",
    "ChunkerError",
    "ChunkerInputError",
    "ChunkerSpec",
    "TokenChunker",
    "default_chunk_tokens",
    "default_overlap_tokens",
    "embedding_text",
    "prefix_tokens",
    "rules_for",
]

"""What a parse worker needs to build its own chunker: picklable, so it crosses the process boundary."""

from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from .chunker import TokenChunker


@dataclass(frozen=True, slots=True)
class ChunkerSpec:
    """`ChunkerSpec(tokenizer_file, 254, 25).build()` -> the `TokenChunker` the engine configured."""

    # the embedding model's tokenizer.json; chunk sizes are measured in its tokens
    tokenizer_file: Path
    chunk_tokens: int
    overlap_tokens: int | None = None

    def build(self) -> TokenChunker:
        """Load the tokenizer and make the chunker (raises ChunkerConfigError for impossible sizes)."""
        return TokenChunker(Tokenizer.from_file(str(self.tokenizer_file)), self.chunk_tokens, self.overlap_tokens)

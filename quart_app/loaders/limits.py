"""Per-file resource limits applied while parsing and chunking documents."""

from dataclasses import dataclass

from .errors import DocumentTooLargeError

MIB = 1024 * 1024
# bench/parse_memory.py, worst case (one token and 4 bytes per character): a worker's address space grows by ~15
# bytes per character of text above ~70 MB; with a margin, each MB of memory_mb above TEXT_BASE_MB holds this many
TEXT_BASE_MB = 128
TEXT_BYTES_PER_CHAR = 24
# the app holds a document's chunks while it writes them (~8 bytes per character at worst, two documents at once)
MAX_TEXT_CHARS = 20_000_000


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Limits for one document parse; the defaults suit a 2-core, 4 GB machine."""

    # wall-clock seconds one file may take before its worker is killed
    timeout_s: float = 120.0
    # address space a worker may grow by while parsing and chunking (MB above its idle size); enforced with
    # RLIMIT_AS; it also sets max_text_chars
    memory_mb: int = 1024
    # files above this are refused before any parsing (upstream's MAX_FILE_SIZE is 100 MiB)
    max_file_mb: int = 100
    # zip-based formats: sum of the declared uncompressed member sizes
    max_uncompressed_mb: int = 1024
    # zip-based formats: uncompressed/compressed ratio allowed for any member of at least 1 MiB
    max_compression_ratio: float = 200.0
    # zip-based formats: number of archive members
    max_zip_members: int = 20_000

    def __post_init__(self) -> None:
        for name in ("timeout_s", "memory_mb", "max_file_mb", "max_uncompressed_mb", "max_compression_ratio"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"ParseLimits.{name} must be > 0, got {value!r}; use a positive number")
        if self.max_zip_members <= 0:
            raise ValueError(f"ParseLimits.max_zip_members must be > 0, got {self.max_zip_members}")
        if self.memory_mb <= TEXT_BASE_MB:
            raise ValueError(
                f"ParseLimits.memory_mb must be > {TEXT_BASE_MB} (what a worker needs besides the text), "
                f"got {self.memory_mb}"
            )

    @property
    def max_text_chars(self) -> int:
        """The longest text a document may have: what memory_mb holds in the worst case, at most MAX_TEXT_CHARS."""
        return min(MAX_TEXT_CHARS, (self.memory_mb - TEXT_BASE_MB) * MIB // TEXT_BYTES_PER_CHAR)

    def text_too_long(self, name: str, kind: str) -> DocumentTooLargeError:
        """The error for a document whose text is longer than max_text_chars."""
        limit = self.max_text_chars
        if limit < MAX_TEXT_CHARS:
            fix = f"the most ingest.parse_memory_mb={self.memory_mb} can chunk; raise that setting or split the file"
        else:
            fix = "the most one document may have; split the file"
        return DocumentTooLargeError(f"{name} ({kind}): the text is longer than {limit:,} characters, {fix}")

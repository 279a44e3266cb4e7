"""Per-file resource limits applied while parsing documents."""

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Limits for one document parse; the defaults suit a 2-core, 4 GB machine."""

    # wall-clock seconds one file may take before its worker is killed
    timeout_s: float = 120.0
    # address space a worker may grow by while parsing (MB above its idle size); enforced with RLIMIT_AS
    memory_mb: int = 1024
    # files above this are refused before any parsing (upstream's MAX_FILE_SIZE is 100 MiB)
    max_file_mb: int = 100
    # zip-based formats: sum of the declared uncompressed member sizes
    max_uncompressed_mb: int = 1024
    # zip-based formats: uncompressed/compressed ratio allowed for any member of at least 1 MiB
    max_compression_ratio: float = 200.0
    # zip-based formats: number of archive members
    max_zip_members: int = 20_000
    # upper bound on extracted text kept per document (characters), so one file cannot flood the chunk store
    max_text_chars: int = 50_000_000

    def __post_init__(self) -> None:
        for name in ("timeout_s", "memory_mb", "max_file_mb", "max_uncompressed_mb", "max_compression_ratio"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"ParseLimits.{name} must be > 0, got {value!r}; use a positive number")
        if self.max_zip_members <= 0 or self.max_text_chars <= 0:
            raise ValueError("ParseLimits.max_zip_members and max_text_chars must be > 0")

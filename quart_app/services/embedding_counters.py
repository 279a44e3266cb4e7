"""The counters of an embedding worker's work (read by tests and benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class WorkerCounters:
    """Work done by this worker object (all its tasks)."""

    batches: int = 0
    chunks_embedded: int = 0
    texts_sent: int = 0
    cache_hits: int = 0
    failed_batches: int = 0
    # batches dropped because another worker took them over (the lease could not be renewed in time)
    leases_lost: int = 0
    # wall-clock seconds spent waiting for the embedding service, summed over loops
    embed_seconds: float = 0.0

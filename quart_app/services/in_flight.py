"""Which sources this process is ingesting right now, so one source is never processed twice at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from quart_app.services.errors import SourceBusyError


class InFlightSources:
    """Claims are check-and-add with no await in between, so they are atomic on the event loop."""

    def __init__(self) -> None:
        self._busy: set[str] = set()

    def __len__(self) -> int:
        return len(self._busy)

    def snapshot(self) -> frozenset[str]:
        """The source ids being processed now (for logs and status)."""
        return frozenset(self._busy)

    @contextmanager
    def claim(self, source_ids: list[str]) -> Iterator[None]:
        """Hold every id for the duration of the block, or raise SourceBusyError without holding any."""
        busy = sorted(set(source_ids) & self._busy)
        if busy:
            raise SourceBusyError(busy)
        claimed = set(source_ids)
        self._busy |= claimed
        try:
            yield
        finally:
            self._busy -= claimed

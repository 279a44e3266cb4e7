"""Errors of the chunker."""


class ChunkerError(Exception):
    """Base class of chunker errors."""


class ChunkerConfigError(ChunkerError, ValueError):
    """Chunk size or overlap settings that cannot work; the message names the setting and the allowed range."""


class ChunkerInputError(ChunkerError, ValueError):
    """The text handed to the chunker was not normalized."""

"""Errors of the LLM backends (nc_texttotext, llama, ctransformer, extractive)."""


class LlmError(Exception):
    """The language model backend failed to produce an answer; the message names the backend and the fix."""


class LlmUnavailableError(LlmError):
    """The backend cannot be used at all (no provider installed, model file missing, package not installed)."""


class LlmTaskFailedError(LlmError):
    """The remote task ended as failed or cancelled, or did not finish within the timeout."""


class LlmClosedError(LlmError):
    """The backend was used after close()."""

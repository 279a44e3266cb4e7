"""Errors of retrieval and answering; routes map ContextError to upstream's 400 ContextException response."""


class AnswerError(Exception):
    """A question could not be answered; the message says why and what to do."""


class ContextError(AnswerError):
    """Nothing the user may read matched (upstream's ContextException; the message is the upstream string)."""


class PromptTooLongError(AnswerError):
    """The LLM context is too small even for the template plus the reserved answer tokens."""


class ScopeError(AnswerError):
    """The scope type is not 'provider' or 'source'."""

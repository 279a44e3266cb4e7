"""Errors of retrieval and answering; routes map ContextError to upstream's 400 ContextException response."""


class AnswerError(Exception):
    """A question could not be answered; the message says why and what to do."""


class ContextError(AnswerError):
    """Nothing the user may read matched (upstream's ContextException; the message is the upstream string)."""


class QueryNotEmbeddedError(ContextError):
    """The question could not be embedded and the full-text leg alone found nothing: the message says the embedding
    service is why, where upstream's "please index a few documents first" would send the user the wrong way."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"No documents retrieved: the question could not be embedded ({reason}) and the full-text search alone"
            " found no match; ask again once the embedding service answers"
        )


class PromptTooLongError(AnswerError):
    """The LLM context is too small even for the template plus the reserved answer tokens."""


class QuestionTooLongError(AnswerError):
    """The question has more characters than retrieval.max_question_chars allows (400: the client must shorten it)."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"The question is too long: {length:,} characters, at most {limit:,} are accepted"
            " (retrieval.max_question_chars); shorten the question"
        )
        self.length = length
        self.limit = limit


class ScopeError(AnswerError):
    """The scope type is not 'provider' or 'source'."""

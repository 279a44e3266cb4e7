"""Errors of retrieval and answering; routes map ContextError to upstream's 400 ContextException response."""


class AnswerError(Exception):
    """A question could not be answered; the message says why and what to do."""


class ContextError(AnswerError):
    """Nothing the user may read matched (upstream's ContextException; the message is the upstream string)."""


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

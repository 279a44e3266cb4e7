"""The extractive backend: no generation; the answer quotes the best passages with their titles and sources."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance.llm_config import ExtractiveConfig
from quart_app.runtimes.llm_backend import approximate_token_count

EXTRACTIVE_HEADER = (
    "This is an extractive answer: no language model is configured, so these are the passages of your documents"
    " that best match the question, quoted as they are."
)
UNAVAILABLE_HEADER = (
    "This is an extractive answer: the configured language model ({backend}) is not available ({reason}), so these"
    " are the passages of your documents that best match the question, quoted as they are."
)
EMPTY_ANSWER_HEADER = (
    "This is an extractive answer: the configured language model ({backend}) gave an empty answer, so these are the"
    " passages of your documents that best match the question, quoted as they are."
)
STANDALONE_HEADER = (
    "This is an extractive answer: no Nextcloud is configured (NEXTCLOUD_URL is not set), so the configured language"
    " model (nc_texttotext, Nextcloud's text-to-text tasks) cannot be asked; these are the passages of your documents"
    " that best match the question, quoted as they are. For generated answers without Nextcloud, set `llm: llama`"
    " in config.yaml."
)
NO_CONTEXT_ANSWER = (
    "This is an extractive answer: no language model is configured (llm: extractive), and a question asked without"
    " document context has no passages to quote. Configure an LLM backend (nc_texttotext, llama or ctransformer)"
    " to get generated answers."
)


@dataclass(frozen=True, slots=True)
class QuotedPassage:
    """A passage to quote: its document title, its source id and the text."""

    title: str
    source_id: str
    text: str


class ExtractiveBackend:
    """Always correct about what it is: it never pretends to have generated anything."""

    name = "extractive"
    quotes_passages = True

    def __init__(self, config: ExtractiveConfig, header: str = EXTRACTIVE_HEADER) -> None:
        self._config = config
        # the first paragraph of every answer: why passages are quoted instead of generated text
        self.header = header

    @property
    def n_ctx(self) -> int:
        return self._config.n_ctx

    @property
    def max_tokens(self) -> int:
        # nothing is generated; the whole budget goes to the quoted passages
        return 0

    @property
    def max_passages(self) -> int:
        return self._config.max_passages

    def count_tokens(self, text: str) -> int:
        """The documented approximation (see approximate_token_count): the answer is text, not a model prompt."""
        return approximate_token_count(text)

    def plain_text(self, text: str) -> str:
        """As it is: no model reads it."""
        return text

    def answer_from_passages(
        self, passages: Sequence[QuotedPassage], header: str | None = None
    ) -> tuple[str, list[str]]:
        """(answer text, source ids quoted, best first); at most max_passages within the n_ctx budget."""
        header = self.header if header is None else header
        parts = [header]
        used = self.count_tokens(header)
        sources: list[str] = []
        for passage in passages[: self.max_passages]:
            quoted = "\n".join("> " + line for line in passage.text.strip().splitlines() if line.strip())
            block = f"{len(parts)}. {passage.title or passage.source_id} ({passage.source_id}):\n{quoted}"
            cost = self.count_tokens(block)
            if used + cost > self.n_ctx and sources:
                break
            parts.append(block)
            used += cost
            if passage.source_id not in sources:
                sources.append(passage.source_id)
        return "\n\n".join(parts), sources

    async def generate(self, prompt: str, user_id: str, stop: Sequence[str] = ()) -> str:
        """Called only without context (use_context=False): says plainly that nothing can be generated."""
        return NO_CONTEXT_ANSWER

    async def aclose(self) -> None:
        return None

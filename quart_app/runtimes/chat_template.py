"""The chat template a GGUF model carries (tokenizer.chat_template), rendered as the prompt of one question."""

from __future__ import annotations

from dataclasses import dataclass

from quart_app.runtimes.errors import ChatTemplateError

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"


@dataclass(frozen=True, slots=True)
class ModelChatTemplate:
    """A model's Jinja2 chat template with its tokens, rendered by llama-cpp-python's chat formatter.

    `bos_token` is "" for a tokenizer that adds BOS to every prompt itself (llama.cpp does then): a template opening
    with {{ bos_token }} would otherwise give it twice. `eos_token` ends the model's turn (the stop string)."""

    origin: str
    text: str
    bos_token: str
    eos_token: str

    def prompt(self, system: str | None, user: str) -> str:
        """The prompt of one user turn, after a system turn when given, up to where the assistant writes. A template
        that refuses or drops a system turn (Gemma, some Mistral ones) gets the system text at the start of the
        user's turn."""
        if system is not None:
            try:
                prompt = self._render([{"role": "system", "content": system}, {"role": "user", "content": user}])
            except ChatTemplateError:
                prompt = ""
            if system in prompt:
                return prompt
            user = f"{system}\n\n{user}"
        return self._render([{"role": "user", "content": user}])

    def _render(self, messages: list[dict[str, str]]) -> str:
        from jinja2 import TemplateError
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:
            formatter = Jinja2ChatFormatter(self.text, self.eos_token, self.bos_token, add_generation_prompt=True)
            return str(formatter(messages=messages).prompt)  # type: ignore[arg-type]
        # a template's raise_exception() raises ValueError in some llama-cpp-python versions, TemplateError in others
        except (TemplateError, ValueError) as exc:
            raise ChatTemplateError(f"the chat template of {self.origin} cannot be rendered: {exc}") from exc

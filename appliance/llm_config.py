"""The `llm` section: one entry per LLM backend, the first key written wins (LLM_BACKENDS)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from appliance.config_section import ConfigSection

# upstream's instruction: the start of its default template, and the system message of a model's own chat template
ANSWER_INSTRUCTION = (
    "Answer based only on this context and do not add any imaginative details. Make sure to use the same language as"
    " the question in your answer."
)
DEFAULT_TEMPLATE = ANSWER_INSTRUCTION + "\n{context}\n\n{question}\n"
DEFAULT_NO_CTX_TEMPLATE = "{question}\n"
# a template value: the chat template the model file carries (GGUF tokenizer.chat_template)
AUTO_TEMPLATE = "auto"


class _LlmCommon(ConfigSection):
    template: str = Field(DEFAULT_TEMPLATE, description="prompt with {context} and {question}")
    no_ctx_template: str = Field(DEFAULT_NO_CTX_TEMPLATE, description="prompt with {question} for useContext=false")
    end_separator: str = Field("", description="stop string (e.g. <|im_end|> for ChatML models)")
    max_tokens: int = Field(512, ge=1, description="new tokens the LLM may generate")
    context_tokens: int = Field(
        3000,
        ge=0,
        description="most tokens of retrieved text in one prompt, counted like n_ctx (~7,000 characters at 3000);"
        " 0 = all that n_ctx - max_tokens leaves. A smaller prompt is answered faster and keeps the model on the"
        " best passages",
    )


class _GeneratingLlm(_LlmCommon):
    """A backend that writes the answer: its prompt and max_tokens share the context window n_ctx."""

    n_ctx: int  # declared by each backend with its own default
    # template `auto` takes the model file's chat template: only a GGUF carries one
    reads_model_template: ClassVar[bool] = False

    @field_validator("template", "no_ctx_template", mode="before")
    @classmethod
    def _auto_only_with_a_model_template(cls, template: Any) -> Any:
        if template == AUTO_TEMPLATE and not cls.reads_model_template:
            raise ValueError(
                "auto (the model file's own chat template) works only with llm.llama (a GGUF carries it); write the"
                " prompt here"
            )
        return template

    @field_validator("template")
    @classmethod
    def _template_reads_context_and_question(cls, template: str) -> str:
        if template == AUTO_TEMPLATE:
            return template
        # the prompt is this text with both filled in: one missing, and answers ignore the documents or the question
        missing = [name for name in ("{context}", "{question}") if name not in template]
        if missing:
            raise ValueError(
                f"has no {' and no '.join(missing)}; the prompt is this text with the retrieved passages put at"
                " {context} and the question at {question}: add both"
            )
        return template

    @field_validator("no_ctx_template")
    @classmethod
    def _no_ctx_template_reads_question(cls, template: str) -> str:
        if template != AUTO_TEMPLATE and "{question}" not in template:
            raise ValueError("has no {question}; without it the question never reaches the LLM: add it")
        return template

    @model_validator(mode="after")
    def _answer_leaves_room_for_the_prompt(self) -> _GeneratingLlm:
        # pack_prompt fits the prompt into n_ctx - max_tokens: with nothing left every question fails
        if self.max_tokens >= self.n_ctx:
            raise ValueError(
                f"max_tokens {self.max_tokens} leaves no room for the prompt in n_ctx {self.n_ctx}; lower max_tokens"
                " well below n_ctx (the shipped configs keep 512) or raise n_ctx"
            )
        return self


class NcTextToTextConfig(_GeneratingLlm):
    n_ctx: int = Field(8192, ge=64, description="context budget, counted with the approximate tokenizer")
    timeout_s: float = Field(1800.0, gt=0, description="overall time for one Nextcloud task")
    poll_interval_s: float = Field(5.0, gt=0, description="seconds between polls of the Nextcloud task")


class LlamaConfig(_GeneratingLlm):
    reads_model_template: ClassVar[bool] = True

    model: str = Field("smollm2-135m-instruct-q4_1", description="model catalogue id or GGUF path")
    template: str = Field(
        AUTO_TEMPLATE, description="prompt with {context} and {question}; auto: the GGUF's own chat template"
    )
    no_ctx_template: str = Field(
        AUTO_TEMPLATE, description="prompt with {question} for useContext=false; auto: the GGUF's own chat template"
    )
    end_separator: str = Field("", description="stop string; empty with a template auto: the model's end of turn")
    n_ctx: int = Field(4096, ge=64, description="context window in tokens")
    n_batch: int = Field(512, ge=1, description="tokens per llama.cpp batch")
    n_threads: int = Field(0, ge=0, description="0 = one per core")
    n_gpu_layers: int = Field(0, description="layers offloaded to the GPU (-1 = all)")
    temperature: float = Field(0.2, ge=0, description="sampling temperature; 0 = greedy")


class CTransformerConfig(_GeneratingLlm):
    model: str = Field(..., description="GGML model file (relative to model_files)")
    model_type: str = Field("llama", description="ctransformers model type (gpt2, llama, ...)")
    n_ctx: int = Field(2048, ge=64, description="context window in tokens")
    threads: int = Field(0, ge=0, description="CPU threads; 0 = one per core")
    gpu_layers: int = Field(0, ge=0, description="layers offloaded to the GPU")
    temperature: float = Field(0.2, ge=0, description="sampling temperature; 0 = greedy")


class ExtractiveConfig(_LlmCommon):
    n_ctx: int = Field(4096, ge=64, description="budget for the quoted passages, in approximate tokens")
    max_passages: int = Field(3, ge=1, description="passages quoted in one answer")


LlmConfig = NcTextToTextConfig | LlamaConfig | CTransformerConfig | ExtractiveConfig
LLM_BACKENDS: dict[str, type[_LlmCommon]] = {
    "nc_texttotext": NcTextToTextConfig,
    "llama": LlamaConfig,
    "ctransformer": CTransformerConfig,
    "extractive": ExtractiveConfig,
}

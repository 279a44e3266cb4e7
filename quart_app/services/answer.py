"""Answers and document search over what a user may read, shaped exactly like upstream's /query and /docSearch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NotRequired, Protocol, TypedDict

from appliance.llm_config import (
    ANSWER_INSTRUCTION,
    AUTO_TEMPLATE,
    DEFAULT_NO_CTX_TEMPLATE,
    DEFAULT_TEMPLATE,
    LLM_BACKENDS,
    ExtractiveConfig,
    LlmConfig,
)
from quart_app.runtimes.code_fences import has_text_outside_fence_lines
from quart_app.runtimes.errors import ChatTemplateError, LlmUnavailableError
from quart_app.runtimes.llm_backend import CarriesChatTemplate, LlmBackend
from quart_app.runtimes.llm_extractive import (
    EMPTY_ANSWER_HEADER,
    UNAVAILABLE_HEADER,
    ExtractiveBackend,
    QuotedPassage,
)
from quart_app.services.context_assembly import ContextPiece
from quart_app.services.cross_lingual_gate import CrossLingualVectors
from quart_app.services.errors import ContextError, ReadableCheckSpentError, SourcesRevokedError
from quart_app.services.prompt_packing import PackedPrompt, pack_prompt
from quart_app.services.retrieval import (
    PassageReranker,
    QueryEmbedder,
    RetrievalService,
    RetrievedChunk,
    make_scope,
)
from quart_app.store.search_filters import Scope, excluding
from quart_app.store.search_store import ConnectionSource, SearchStore

if TYPE_CHECKING:
    from appliance.config import AppConfig

log = logging.getLogger(__name__)

NO_DOCUMENTS = "No documents retrieved, please index a few documents first"
# most chunks (/query) or documents (/docSearch) one request may ask for: pgvector's largest hnsw.ef_search, so the
# vector leg could not find more anyway (upstream's PHP app asks for 10-30)
MAX_CTX_LIMIT = 1000
# answers written at most per question while sources are unshared under them: each can take minutes on CPU
ANSWER_ATTEMPTS = 2
# candidate rounds while unreadable files crowd out readable ones (answers: 1, 2, 4, 8 x ctx_limit chunks; /docSearch
# and pull search tasks: 2, 4, 8, 16 x limit documents): each costs one retrieval and one check of its new documents
# only (push: a SEARCH, pull: enrich_sources; ~0.15 s on a loaded Nextcloud); a user who lost 15 of every 16 top files
# still gets the full list, and one question asks about at most 16 x limit files
FILL_ROUNDS = 4


class QueryResult(TypedDict):
    """An answer: upstream's /query response body (`output`, `sources`) and the sources' titles as the check after
    generating read them (a pull task's output names them; the /query route sends only the body)."""

    output: str
    sources: list[str]
    titles: dict[str, str]


# an answer before its sources are checked: the text and the source ids it drew on, best first
Draft = tuple[str, list[str]]


class DocSearchResult(TypedDict):
    """One item of upstream's /docSearch response body; `passage` only when asked for (ours)."""

    source_id: str
    title: str
    passage: NotRequired[str]


@dataclass(frozen=True, slots=True)
class Templates:
    """The prompt settings of the active LLM section: templates, stop string, and how the context is laid out
    (`context_tokens`: most tokens of retrieved text per prompt, None = all n_ctx leaves; `in_document_order`:
    chunks grouped per source in document order, overlaps removed)."""

    template: str
    no_ctx_template: str
    end_separator: str = ""
    context_tokens: int | None = None
    in_document_order: bool = False


class UnreadableCheck(Protocol):
    """Which of these documents Nextcloud says the user can no longer read (asked before anything reaches the LLM);
    ReadableCheckSpentError when it can tell nothing more within the question (the fill then stops)."""

    async def __call__(self, user_id: str, sources: list[DocSearchResult]) -> set[str]: ...


def log_left_out(logger: logging.Logger, source_ids: set[str]) -> None:
    """The warning of an UnreadableCheck (push or pull mode) that leaves documents out, in the checker's logger."""
    if source_ids:
        logger.warning(
            "left out %d document(s) Nextcloud no longer shows the user (an unshare the PHP app did not send): %s",
            len(source_ids),
            ", ".join(sorted(source_ids)),
        )


class AnswerService:
    """Retrieve -> pack by the LLM's tokenizer -> generate; the extractive backend quotes instead of generating."""

    def __init__(self, retrieval: RetrievalService, llm: LlmBackend, templates: Templates) -> None:
        self._retrieval = retrieval
        self._llm = llm
        self._templates = templates

    def llm_report(self) -> dict[str, Any]:
        """Which language model answers, for GET /status."""
        return {"backend": self._llm.name, "n_ctx": self._llm.n_ctx, "max_tokens": self._llm.max_tokens}

    def check_question(self, question: str) -> None:
        """Raise QuestionTooLongError for a question over retrieval.max_question_chars (before any work on it)."""
        self._retrieval.check_question(question)

    @property
    def _stop(self) -> list[str]:
        return [self._templates.end_separator] if self._templates.end_separator else []

    async def _pack(self, question: str, chunks: Sequence[RetrievedChunk] | None) -> PackedPrompt:
        pieces = [ContextPiece(c.source_id, c.title, c.text, c.start) for c in chunks or ()]
        settings = self._templates
        template = settings.template if chunks is not None else settings.no_ctx_template
        # the whole prompt is tokenised once per candidate piece: tens of milliseconds to seconds of CPU
        return await asyncio.to_thread(
            pack_prompt, template, question, pieces, self._llm.count_tokens, self._llm.plain_text, self._llm.n_ctx,
            self._llm.max_tokens, settings.context_tokens, settings.in_document_order,
        )  # fmt: skip

    def _extractive(self, chunks: Sequence[RetrievedChunk]) -> Draft | None:
        if not isinstance(self._llm, ExtractiveBackend):
            return None
        return self._llm.answer_from_passages([QuotedPassage(c.title, c.source_id, c.text) for c in chunks])

    def _quoted_instead(self, chunks: Sequence[RetrievedChunk], header: str) -> Draft:
        """The configured LLM gave no answer: quote the best passages under `header` (why), rather than fail or say
        nothing."""
        passages = [QuotedPassage(c.title, c.source_id, c.text) for c in chunks]
        return ExtractiveBackend(ExtractiveConfig()).answer_from_passages(passages, header)

    async def query(
        self,
        user_id: str,
        question: str,
        use_context: bool = True,
        scope_type: str | None = None,
        scope_list: Sequence[str] | None = None,
        ctx_limit: int = 20,
        unreadable: UnreadableCheck | None = None,
        generating: Callable[[], None] | None = None,
    ) -> QueryResult:
        """{output, sources}; raises ContextError when nothing the user may read matches. `unreadable`: documents
        it names are left out of the context (Nextcloud knows of an access change the backend was never sent) and
        the next chunks fill their places.
        An answer one of whose sources the user lost while it was written (an unshare or delete arriving during the
        minutes an LLM can take) is thrown away and the question answered again from what the user may still read:
        dropping only the source would hand over text drawn from that document. `generating` is called when a prompt
        is ready and the LLM starts on it."""
        self.check_question(question)
        if not use_context:
            packed = await self._pack(question, None)
            return {"output": await self._llm.generate(packed.prompt, user_id, self._stop), "sources": [], "titles": {}}
        for _ in range(ANSWER_ATTEMPTS):
            output, sources = await self._answer_from_context(
                user_id, question, scope_type, scope_list, ctx_limit, unreadable, generating
            )
            titles = await self._retrieval.titles(user_id, sources) if sources else {}
            lost = len(set(sources) - titles.keys())
            if not lost:
                return {"output": output, "sources": sources, "titles": titles}
            log.info("query: %d source(s) unshared or deleted while the answer was written; answering again", lost)
        raise SourcesRevokedError(ANSWER_ATTEMPTS)

    async def _answer_from_context(
        self,
        user_id: str,
        question: str,
        scope_type: str | None,
        scope_list: Sequence[str] | None,
        ctx_limit: int,
        unreadable: UnreadableCheck | None,
        generating: Callable[[], None] | None,
    ) -> Draft:
        scope = make_scope(scope_type, scope_list)
        chunks = await _readable(
            user_id, ctx_limit, scope, lambda k, left: self._retrieval.retrieve(user_id, question, k, left), unreadable
        )
        if not chunks:
            # 4.x-5.3 use this one message for scoped and unscoped queries alike
            raise ContextError(NO_DOCUMENTS)
        extractive = self._extractive(chunks)
        if extractive is not None:
            return extractive
        packed = await self._pack(question, chunks)
        log.info("query: %d of %d chunks in a %d-token prompt", packed.pieces_used, len(chunks), packed.prompt_tokens)
        if generating is not None:
            generating()
        try:
            output = await self._llm.generate(packed.prompt, user_id, self._stop)
        except LlmUnavailableError as exc:
            log.warning("LLM backend %s unavailable, answering with quoted passages: %s", self._llm.name, exc)
            return self._quoted_instead(chunks, UNAVAILABLE_HEADER.format(backend=self._llm.name, reason=exc))
        if not has_text_outside_fence_lines(output):
            # blank, only a stop string (a small model ending its turn at once) or a code block opened and closed
            # empty: the user would read nothing
            log.warning("LLM backend %s gave an empty answer, answering with quoted passages", self._llm.name)
            return self._quoted_instead(chunks, EMPTY_ANSWER_HEADER.format(backend=self._llm.name))
        return output, packed.sources

    async def doc_search(
        self,
        user_id: str,
        query: str,
        limit: int,
        scope_type: str | None = None,
        scope_list: Sequence[str] | None = None,
        with_passages: bool = False,
        unreadable: UnreadableCheck | None = None,
    ) -> list[DocSearchResult]:
        """Unique documents, best first; [] (not an error) when nothing matches, as upstream's /docSearch.
        `with_passages` adds each document's best passage (`ccb search`; never sent to Nextcloud). `unreadable`:
        documents it names are left out and the next candidates fill their places."""
        self.check_question(query)
        scope = make_scope(scope_type, scope_list)
        chunks = await _readable(
            user_id,
            limit,
            scope,
            lambda n, left: self._retrieval.candidate_documents(user_id, query, n, left),
            unreadable,
        )
        results: list[DocSearchResult] = []
        for chunk in chunks:
            hit: DocSearchResult = {"source_id": chunk.source_id, "title": chunk.title}
            if with_passages:
                hit["passage"] = chunk.text
            results.append(hit)
        return results


# how a search gets its candidates for n, less the documents found lost so far: chunks, or documents with their best
# chunk, best first
Candidates = Callable[[int, Scope | None], Awaitable[list[RetrievedChunk]]]


async def _readable(
    user_id: str, limit: int, scope: Scope | None, candidates_for: Candidates, unreadable: UnreadableCheck | None
) -> list[RetrievedChunk]:
    """The best `limit` candidates whose documents `unreadable` leaves in, in rank order. While the ones it names
    leave fewer, the search is asked again for twice as many among the documents not found lost (FILL_ROUNDS at
    most), each new document checked once: a user who lost most of the top-ranked files still gets `limit` from
    further down; a check that can tell nothing more (ReadableCheckSpentError) ends the rounds with what it confirmed.
    Nothing left out: one retrieval and one check; no check (standalone use): one retrieval."""
    if unreadable is None:
        return (await candidates_for(limit, scope))[:limit]
    gone: set[str] = set()
    checked: set[str] = set()
    seen: set[int] = set()
    readable: list[RetrievedChunk] = []
    wanted = limit
    for _ in range(FILL_ROUNDS):
        # lost documents left out in SQL: of many chunks each, they would fill every leg's chunk top-k again
        candidates = await candidates_for(wanted, excluding(scope, gone))
        new = [doc for doc in _documents_of(candidates) if doc["source_id"] not in checked]
        spent = False
        if new:
            try:
                gone |= await unreadable(user_id, new)
            except ReadableCheckSpentError:
                # nothing more can be confirmed: this round's new documents stay out and no round follows
                gone |= {doc["source_id"] for doc in new}
                spent = True
            checked.update(doc["source_id"] for doc in new)
        readable = [chunk for chunk in candidates if chunk.source_id not in gone]
        # a round of chunks may bring only more chunks of documents checked before: they count as further down too
        fresh = {chunk.chunk_id for chunk in candidates} - seen
        seen |= fresh
        # enough; nothing left out (a short list is all there is); nothing beyond what earlier rounds brought; or
        # the check's wait spent
        if len(readable) >= limit or not gone or not fresh or wanted >= MAX_CTX_LIMIT or spent:
            break
        wanted = min(2 * wanted, MAX_CTX_LIMIT)
    return readable[:limit]


def titled_sources(result: QueryResult) -> list[DocSearchResult]:
    """The answer's unique sources, in order, with their titles."""
    titles = result["titles"]
    return [{"source_id": sid, "title": titles[sid]} for sid in dict.fromkeys(result["sources"]) if sid in titles]


def _documents_of(chunks: Sequence[RetrievedChunk]) -> list[DocSearchResult]:
    """The distinct documents of `chunks`, in order."""
    documents: dict[str, DocSearchResult] = {}
    for chunk in chunks:
        documents.setdefault(chunk.source_id, {"source_id": chunk.source_id, "title": chunk.title})
    return list(documents.values())


def build_answer_service(
    config: AppConfig,
    db: ConnectionSource,
    embedder: QueryEmbedder,
    llm: LlmBackend,
    reranker: PassageReranker | None = None,
    cross_lingual: CrossLingualVectors | None = None,
    main_reads_language_within: float | None = None,
) -> AnswerService:
    """The service as the app wires it: retrieval settings and the active LLM section's templates from config;
    `main_reads_language_within`: the main model's catalogue reads_language_within (CrossLingualGate)."""
    retrieval = RetrievalService(
        SearchStore(db), embedder, config.retrieval, reranker, cross_lingual, main_reads_language_within
    )
    return AnswerService(retrieval, llm, prompt_templates(config.llm, llm))


def prompt_templates(section: LlmConfig, llm: LlmBackend) -> Templates:
    """The LLM section's prompt settings. A template `auto` is the model file's own chat template (upstream's
    instruction as its system turn), whose end of turn is the stop string unless end_separator names one; a model
    file without a usable one gets upstream's plain-text template. Logs which template answers and where it is from."""
    template, no_ctx_template, stop = section.template, section.no_ctx_template, section.end_separator
    # the section's key: the backend answering may be another one (extractive standing in for nc_texttotext)
    section_name = next(name for name, kind in LLM_BACKENDS.items() if type(section) is kind)
    configured = f"config.yaml (llm.{section_name})"
    origin = no_ctx_origin = configured
    if AUTO_TEMPLATE in (template, no_ctx_template):
        try:
            chat = llm.chat_template() if isinstance(llm, CarriesChatTemplate) else None
            if chat is None:
                raise ChatTemplateError("the model file carries no chat template")
            stop = stop or chat.eos_token
            if template == AUTO_TEMPLATE:
                template = _checked(chat.prompt(ANSWER_INSTRUCTION + "\n{context}", "{question}"), "{context}")
                origin = f"the model's own chat template, {chat.origin}"
            if no_ctx_template == AUTO_TEMPLATE:
                no_ctx_template = _checked(chat.prompt(None, "{question}"))
                no_ctx_origin = f"the model's own chat template, {chat.origin}"
        except ChatTemplateError as exc:
            log.warning(
                "llm %s: template auto, but %s: answering with upstream's plain-text template; set llm.%s.template"
                " to the model's chat format",
                llm.name, exc, llm.name,
            )  # fmt: skip
            if template == AUTO_TEMPLATE:
                template, origin = DEFAULT_TEMPLATE, "upstream's plain-text default"
            if no_ctx_template == AUTO_TEMPLATE:
                no_ctx_template, no_ctx_origin = DEFAULT_NO_CTX_TEMPLATE, "upstream's plain-text default"
    origins = (
        f"templates from {origin}"
        if origin == no_ctx_origin
        else f"template from {origin}, no-context template from {no_ctx_origin}"
    )
    log.info("llm %s: prompt %s, stop string %r", llm.name, origins, stop)
    return Templates(template, no_ctx_template, stop, section.context_tokens or None, True)


def _checked(prompt: str, *placeholders: str) -> str:
    """The rendered chat template, when it kept {question} and `placeholders` (where the prompt is filled) once."""
    dropped = [name for name in ("{question}", *placeholders) if prompt.count(name) != 1]
    if dropped:
        raise ChatTemplateError(f"its chat template does not keep {' and '.join(dropped)} once")
    return prompt

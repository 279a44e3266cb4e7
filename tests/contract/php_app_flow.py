"""The push flow of the PHP app <= 5.3 and AppAPI over HTTP only, reusable against any running appliance."""

from __future__ import annotations

from typing import Any

import httpx
from contract_kit import APP_SECRET, SourcePart, guzzle_multipart, signed_headers

DOCS = {
    "files__default: 1": (b"The Ethical AI Rating: a green label means open model, data and code.", ["alice", "bob"]),
    "files__default: 2": (b"Budget 2025: the Berlin office travel budget is 12000 euros.", ["alice"]),
    "files__default: 3": (b"Holiday plan: hiking in the Alps in July, sleeping in a tent.", ["bob", "carol"]),
    "notes__meeting: 9": (b"Meeting notes: the green label review happens every Friday.", ["alice", "carol"]),
}


def run_php_app_flow(base: str, secret: str = APP_SECRET) -> None:
    """What a fresh appliance must do for AppAPI and the PHP app, over HTTP only (no knowledge of our code)."""
    with httpx.Client(base_url=base, timeout=120) as http:

        def call(method: str, path: str, body: Any = None, user: str = "") -> tuple[int, Any]:
            response = http.request(method, path, json=body, headers=signed_headers(user, secret=secret))
            return response.status_code, response.json()

        def sources(user: str, query: str, **extra: Any) -> set[str]:
            status, answer = call("POST", "/query", {"userId": user, "query": query, **extra}, user)
            if status == 400:
                assert answer["error"].startswith("Context Retrieval Error: "), answer
                return set()
            assert status == 200, answer
            return set(answer["sources"])

        def count() -> Any:
            return call("POST", "/countIndexedDocuments")[1]

        # AppAPI: heartbeat (unsigned), then enable
        assert http.get("/heartbeat").json() == {"status": "ok"}
        assert call("GET", "/enabled") == (200, {"enabled": False})
        assert call("POST", "/query", {"userId": "alice", "query": "q"}) == (
            503,
            {"error": "Context Chat is disabled, enable it from AppAPI to use it."},
        )
        assert call("PUT", "/enabled?enabled=1") == (200, {"error": ""})
        assert call("GET", "/", user="alice") == (200, "Hello, alice!")

        # unsigned and wrongly signed requests
        refused = {"error": "Invalid signature of the request"}
        assert (http.get("/").status_code, http.get("/").json()) == (401, refused)
        wrong = http.post("/query", json={"userId": "a", "query": "q"}, headers=signed_headers(secret="nope-123"))
        assert (wrong.status_code, wrong.json()) == (401, refused)
        wrong_app = http.post("/countIndexedDocuments", headers=signed_headers(secret=secret, app_id="another_app"))
        assert wrong_app.status_code == 401

        # index for several users, shared files
        parts = [
            SourcePart(sid, text, user_ids=users, title=f"Documents/{sid[-1]}.txt", provider=sid.split(":")[0])
            for sid, (text, users) in DOCS.items()
        ]
        body, content_type = guzzle_multipart(parts)
        headers = {**signed_headers(secret=secret), "Content-Type": content_type}
        response = http.put("/loadSources", content=body, headers=headers)
        assert response.status_code == 200
        assert sorted(response.json()["loaded_sources"]) == sorted(DOCS)
        assert response.json()["sources_to_retry"] == []
        assert count() == {"files__default": 3, "notes__meeting": 1}

        # queries with and without scopes
        assert "files__default: 2" in sources("alice", "Berlin office travel budget")
        assert "files__default: 2" not in sources("bob", "Berlin office travel budget")
        assert sources("carol", "green label", scopeType="source", scopeList=["notes__meeting: 9"]) == {
            "notes__meeting: 9"
        }
        assert sources("alice", "green label", scopeType="provider", scopeList=["notes__meeting"]) == {
            "notes__meeting: 9"
        }
        status, hits = call("POST", "/docSearch", {"userId": "bob", "query": "hiking tent Alps", "ctxLimit": 3}, "bob")
        assert status == 200 and "files__default: 3" in {h["source_id"] for h in hits}

        # revoke access
        ok = (200, {"message": "Access updated"})
        assert call("POST", "/updateAccess", {"op": "deny", "userIds": ["bob"], "sourceId": "files__default: 1"}) == ok
        assert "files__default: 1" not in sources("bob", "Ethical AI Rating green label")
        assert "files__default: 1" in sources("alice", "Ethical AI Rating green label")

        # deletes by source, provider and user
        deleted = (200, {"message": "All valid sources deleted"})
        assert call("POST", "/deleteSources", {"sourceIds": ["files__default: 2"]}) == deleted
        assert count() == {"files__default": 2, "notes__meeting": 1}
        assert call("POST", "/deleteProvider", {"providerKey": "notes__meeting"}) == deleted
        assert count() == {"files__default": 2}
        assert call("POST", "/deleteUser", {"userId": "carol"}) == (200, {"message": "User deleted"})
        assert "files__default: 3" in sources("bob", "hiking tent Alps")
        assert call("POST", "/deleteUser", {"userId": "bob"}) == (200, {"message": "User deleted"})
        assert count() == {"files__default": 1}
        assert call("GET", "/status")[1]["documents"]["indexed"] == 1

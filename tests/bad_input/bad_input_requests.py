"""Whole requests that must be refused with a clear 4xx: malformed JSON, wrong types, absurd values, megabyte
questions, broken multipart framing, oversized bodies and bad HTTP/auth headers."""

from __future__ import annotations

import base64
import gzip
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bad_input_http import Headers, RawRequest
from bad_input_sources import multipart, part
from contract_kit import signed_headers

MB = 1_000_000
REFUSED = frozenset({"4xx"})
ANSWERED = frozenset({"2xx", "4xx"})
# bodies that are valid for each JSON route and touch nothing the suite indexed
ROUTES: dict[str, dict[str, Any]] = {
    "/query": {"userId": "fuzzer", "query": "harbour crane"},
    "/docSearch": {"userId": "fuzzer", "query": "harbour crane"},
    "/updateAccess": {"op": "allow", "userIds": ["nobody"], "sourceId": "files__default: 4242"},
    "/updateAccessDeclarative": {"userIds": ["nobody"], "sourceId": "files__default: 4242"},
    "/updateAccessProvider": {"op": "allow", "userIds": ["nobody"], "providerId": "files__nothing"},
    "/deleteSources": {"sourceIds": ["files__default: 4242"]},
    "/deleteProvider": {"providerKey": "files__nothing"},
    "/deleteUser": {"userId": "nobody"},
    "/deleteSourcesByProvider": {"userId": "nobody", "providerKey": "files__nothing"},
    "/deleteSourcesByProviderForAllUsers": {"providerKey": "files__nothing"},
}


@dataclass(frozen=True)
class RequestCase:
    """A request whose answer must be one of `allowed` ("2xx", "4xx"; never "5xx", "closed" or "hang")."""

    name: str
    kind: str
    build: Callable[[], RawRequest] = field(repr=False)
    allowed: frozenset[str] = REFUSED
    # when the exact status matters (413 for a body over a limit)
    statuses: frozenset[int] | None = None
    # the app answers with its JSON error shape (False: the HTTP server refuses before the app sees it)
    app_level: bool = True
    # the answer must not echo the input back in full
    max_answer_bytes: int | None = None
    # a line that must not appear in the app log (forged through a control character)
    forged_log_line: str | None = None


def signed(user: str = "fuzzer") -> Headers:
    return [(name.encode(), value.encode()) for name, value in signed_headers(user).items()]


def json_request(path: str, body: bytes, user: str = "fuzzer") -> RawRequest:
    return RawRequest("POST", path.encode(), [*signed(user), (b"Content-Type", b"application/json")], body)


def _json(path: str, body: dict[str, Any]) -> Callable[[], RawRequest]:
    return lambda: json_request(path, json.dumps(body).encode())


def _mangled(path: str, mangle: Callable[[bytes], bytes], valid: bytes) -> RawRequest:
    return json_request(path, mangle(valid))


def _short(path: str) -> str:
    return path.strip("/")


def malformed_json() -> Iterator[RequestCase]:
    bodies: dict[str, Callable[[bytes], bytes]] = {
        "truncated": lambda valid: valid[: len(valid) // 2],
        "trailing-garbage": lambda valid: valid + b" }x",
        "single-quotes": lambda valid: valid.replace(b'"', b"'"),
        "nan": lambda valid: b'{"x": NaN}',
        "bom": lambda valid: b"\xef\xbb\xbf" + valid,
        "invalid-utf8": lambda valid: valid.replace(b'"', b'"\xff\xfe', 1),
        "deep-nesting": lambda valid: b"[" * 100_000 + b"]" * 100_000,
        "null": lambda valid: b"null",
        "array": lambda valid: b"[]",
        "huge-number": lambda valid: b"1e999999",
        "empty": lambda valid: b"",
        "1mb-whitespace": lambda valid: b" " * MB,
        "lone-surrogate-key": lambda valid: b'{"\\ud800": 1}',
    }
    for path, valid in ROUTES.items():
        encoded = json.dumps(valid).encode()
        for label, mangle in bodies.items():
            yield RequestCase(
                f"json-{label}-{_short(path)}",
                "malformed-json",
                partial(_mangled, path, mangle, encoded),
            )


def _wrong_values(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return ["maybe", 2]
    if isinstance(value, int):
        return ["abc", 1.5]
    if isinstance(value, list):
        # not [1, 2]: the PHP app sends a numeric user id as a JSON number, which userIds take
        return ["files__default: 1", [1.5, True]]
    if value in ("allow", "deny"):
        return ["maybe", None]
    return [123, ["a"], {"a": 1}, None]


def wrong_types() -> Iterator[RequestCase]:
    for path, valid in ROUTES.items():
        fields = {**valid, "useContext": True, "ctxLimit": 20} if path in ("/query", "/docSearch") else valid
        for name, value in fields.items():
            for n, wrong in enumerate(_wrong_values(value)):
                body = {**fields, name: wrong}
                yield RequestCase(f"type-{name}-{n}-{_short(path)}", "wrong-type", _json(path, body))
        for name in valid:
            body = {key: value for key, value in valid.items() if key != name}
            yield RequestCase(f"missing-{name}-{_short(path)}", "wrong-type", _json(path, body))


def query_values() -> Iterator[RequestCase]:
    """Absurd ctxLimit, empty and odd scopes, unicode-edge ids and users on /query and /docSearch."""
    for path in ("/query", "/docSearch"):
        base = ROUTES[path]
        limits: dict[str, tuple[Any, frozenset[str]]] = {
            "zero": (0, REFUSED),
            "negative": (-1, REFUSED),
            "1e23": (10**23, REFUSED),
            "2pow63": (2**63, REFUSED),
            "2pow31": (2**31, REFUSED),
            "million": (10**6, REFUSED),
            "string-20": ("20", ANSWERED),
            "string-abc": ("abc", REFUSED),
            "float": (1.5, REFUSED),
            "true": (True, ANSWERED),
            "null": (None, REFUSED),
            "string-1e23": ("1e23", REFUSED),
        }
        for label, (limit, allowed) in limits.items():
            yield RequestCase(
                f"ctxlimit-{label}-{_short(path)}", "ctx-limit", _json(path, {**base, "ctxLimit": limit}), allowed
            )
        scopes: dict[str, dict[str, Any]] = {
            "source-empty": {"scopeType": "source", "scopeList": []},
            "provider-empty": {"scopeType": "provider", "scopeList": []},
            "blank-ids": {"scopeType": "source", "scopeList": ["", " "]},
            "type-without-list": {"scopeType": "source"},
            "list-without-type": {"scopeList": ["files__default: 1"]},
            "20000-ids": {"scopeType": "source", "scopeList": [f"files__default: {n}" for n in range(20_000)]},
            "nul-id": {"scopeType": "source", "scopeList": ["files__default: 1\x00"]},
            "folder-type": {"scopeType": "folder", "scopeList": ["files__default: 1"]},
        }
        for label, scope in scopes.items():
            allowed = REFUSED if label == "folder-type" else ANSWERED
            yield RequestCase(f"scope-{label}-{_short(path)}", "empty-scope", _json(path, {**base, **scope}), allowed)
        users = {"nul": "fuzz\x00er", "10k": "u" * 10_000, "rtl": "\u202efuzzer", "blank": " \t "}
        for label, user in users.items():
            allowed = REFUSED if label == "blank" else ANSWERED
            yield RequestCase(
                f"user-{label}-{_short(path)}", "unicode-id", _json(path, {**base, "userId": user}), allowed
            )


def megabyte_questions() -> Iterator[RequestCase]:
    rng = random.Random("questions")
    questions: dict[str, Callable[[], str]] = {
        "one-word": lambda: "a" * MB,
        "distinct-words": lambda: " ".join("".join(rng.choices("abcdefghijklmnop", k=6)) for _ in range(MB // 7)),
        "one-sentence-repeated": lambda: "Where is the harbour crane? " * (MB // 28),
        "identifiers": lambda: " ".join(f"cfg.key_{n}:val/{n}" for n in range(MB // 22)),
        "cjk-no-spaces": lambda: "\u6e2f\u53e3\u8d77\u91cd\u673a" * (MB // 15),
        "ideographic-spaces": lambda: "crane" + "\u3000" * (MB // 3),
    }
    for path in ("/query", "/docSearch"):
        for label, question in questions.items():

            def build(p: str = path, q: Callable[[], str] = question) -> RawRequest:
                return json_request(p, json.dumps({**ROUTES[p], "query": q()}).encode())

            yield RequestCase(f"question-1mb-{label}-{_short(path)}", "megabyte-question", build)


def unicode_ids() -> Iterator[RequestCase]:
    ids = {
        "nul": "files__default: 1\x00",
        "rtl": "files__default: \u202e1",
        "trailing-newline": "files__default: 1\n",
        "10k": "files__default: " + "1" * 10_000,
        "traversal": "files__default: ../../etc/passwd",
        "lone-surrogate": "files__default: \ud800",
    }
    for label, source_id in ids.items():
        # json.dumps escapes a lone surrogate as \ud800, which the parser must refuse or keep as text
        allowed = ANSWERED if label == "10k" else REFUSED
        access = {**ROUTES["/updateAccess"], "sourceId": source_id}
        yield RequestCase(f"access-id-{label}", "unicode-id", _json("/updateAccess", access), allowed)
        delete = {"sourceIds": [source_id]}
        yield RequestCase(f"delete-id-{label}", "unicode-id", _json("/deleteSources", delete), ANSWERED)
    yield RequestCase("delete-user-nul", "unicode-id", _json("/deleteUser", {"userId": "nobody\x00"}), ANSWERED)
    yield RequestCase(
        "provider-key-traversal", "unicode-id", _json("/deleteProvider", {"providerKey": "../__x"}), REFUSED
    )


def oversized_json() -> Iterator[RequestCase]:
    def padded(megabytes: int) -> RawRequest:
        return json_request("/deleteUser", json.dumps({"userId": "nobody", "padding": "x" * (megabytes * MB)}).encode())

    yield RequestCase("json-9mb-body", "oversized-body", lambda: padded(9), statuses=frozenset({413}))
    yield RequestCase("json-14mb-body", "oversized-body", lambda: padded(14), statuses=frozenset({413}))
    yield RequestCase(
        "json-422-echo-1mb",
        "oversized-body",
        lambda: json_request("/deleteSources", json.dumps({"sourceIds": "x" * MB}).encode()),
        max_answer_bytes=64_000,
    )


def _load(body: bytes, content_type: bytes | None) -> RawRequest:
    headers = signed()
    if content_type is not None:
        headers.append((b"Content-Type", content_type))
    return RawRequest("PUT", b"/loadSources", headers, body)


def multipart_framing() -> Iterator[RequestCase]:
    good = part("files__default: 77", b"Harbour crane report.")
    body, content_type = multipart([good])
    ct = content_type
    framings: dict[str, Callable[[], RawRequest]] = {
        "no-content-type": lambda: _load(body, None),
        "no-boundary": lambda: _load(body, b"multipart/form-data"),
        "json-content-type": lambda: _load(body, b"application/json"),
        "other-boundary": lambda: _load(body, b"multipart/form-data; boundary=somethingelse"),
        "random-body": lambda: _load(random.Random(5).randbytes(200_000), ct),
        "no-closing-boundary": lambda: _load(body[: -len(b"--\r\n") - 30], ct),
        "empty-body": lambda: _load(b"", ct),
        "preamble-only": lambda: _load(b"just a preamble\r\n", ct),
        "other-field-only": lambda: _load(body.replace(b'name="sources"', b'name="other"'), ct),
        "1mb-part-headers": lambda: _load(b"--fuzzboundary0123456789abcdef\r\nX: " + b"h" * MB, ct),
        "gzip-encoding-claimed": lambda: RawRequest(
            "PUT",
            b"/loadSources",
            [*signed(), (b"Content-Type", ct), (b"Content-Encoding", b"gzip")],
            gzip.compress(body),
        ),
        "mixed-content-type": lambda: _load(body, b"multipart/mixed; boundary=fuzzboundary0123456789abcdef"),
    }
    for label, build in framings.items():
        yield RequestCase(f"multipart-{label}", "multipart-framing", build)
    yield RequestCase(
        "multipart-lf-line-endings", "multipart-framing", lambda: _load(body.replace(b"\r\n", b"\n"), ct), ANSWERED
    )
    yield RequestCase(
        "multipart-200-char-boundary",
        "multipart-framing",
        lambda: _load(*multipart([good], b"b" * 200)),
        ANSWERED,
    )
    big = part("files__default: 78", b"x" * (3 * 1024 * 1024 + 1000))  # over ingest.max_part_mb = 3 (MiB)
    # refused for good like any bad part: a 4xx would keep it in the PHP app's queue
    yield RequestCase(
        "oversized-part-alone", "oversized-body", lambda: _load(*multipart([big])), frozenset({"2xx"}), frozenset({200})
    )
    huge = part("files__default: 79", b"x" * (13 * MB))
    yield RequestCase(
        "oversized-request-13mb",
        "oversized-body",
        lambda: _load(*multipart([good, huge])),
        statuses=frozenset({413}),
    )


def too_many_parts() -> Iterator[RequestCase]:
    def build() -> RawRequest:
        same = part("files__default: 80", b"Harbour crane report.")
        return _load(*multipart([same] * 20_000))

    yield RequestCase("multipart-20000-parts", "too-many-parts", build)


def http_headers() -> Iterator[RequestCase]:
    query = json.dumps(ROUTES["/query"]).encode()
    valid = signed()
    auth = dict(valid)[b"AUTHORIZATION-APP-API"]
    others = [(name, value) for name, value in valid if name != b"AUTHORIZATION-APP-API"]

    def post(headers: Headers, target: bytes = b"/query") -> Callable[[], RawRequest]:
        return lambda: RawRequest("POST", target, [*headers, (b"Content-Type", b"application/json")], query)

    def authorization(value: bytes) -> Headers:
        return [*others, (b"AUTHORIZATION-APP-API", value)]

    unsigned: dict[str, Headers] = {
        "no-auth-headers": [],
        "not-base64": authorization(b"%%%not base64%%%"),
        "base64-non-utf8": authorization(base64.b64encode(b"\xff\xfe:\xff")),
        "no-colon": authorization(base64.b64encode(b"fuzzer")),
        "wrong-app-id": [(b"EX-APP-ID", b"another_app"), *valid[1:]],
        "non-ascii-app-id": [(b"EX-APP-ID", b"\xff\xfe"), *valid[1:]],
    }
    for label, headers in unsigned.items():
        yield RequestCase(f"auth-{label}", "auth-header", post(headers), statuses=frozenset({401}))
    # hypercorn refuses a header section this large before the app sees it (431, no body)
    huge = post(authorization(base64.b64encode(b"u" * 75_000 + b":secret")))
    yield RequestCase("auth-100kb-authorization", "auth-header", huge, statuses=frozenset({401, 431}), app_level=False)
    duplicated = {
        "wrong-then-right": [
            *others,
            (b"AUTHORIZATION-APP-API", b"d3Jvbmc6d3Jvbmc="),
            (b"AUTHORIZATION-APP-API", auth),
        ],
        "right-then-wrong": [
            *others,
            (b"AUTHORIZATION-APP-API", auth),
            (b"AUTHORIZATION-APP-API", b"d3Jvbmc6d3Jvbmc="),
        ],
    }
    for label, headers in duplicated.items():
        yield RequestCase(f"auth-duplicated-{label}", "auth-header", post(headers), frozenset({"2xx", "4xx"}))
    protocol: dict[str, Callable[[], RawRequest]] = {
        "1mb-header-value": post([*valid, (b"X-Fuzz", b"v" * MB)]),
        "2000-headers": post([*valid, *((b"X-F%d" % n, b"1") for n in range(2000))]),
        "space-in-header-name": post([*valid, (b"X Fuzz", b"1")]),
        "control-char-in-path": post(valid, b"/query\x1b[2J"),
        "100kb-path": post(valid, b"/" + b"p" * 100_000),
        "1mb-query-string": lambda: RawRequest("PUT", b"/enabled?enabled=" + b"1" * MB, valid),
        "garbage-request-line": lambda: RawRequest("\x16\x03\x01", b"\x00\x00", [], framing=False),
    }
    for label, build in protocol.items():
        # 2000 one-byte headers fit h11's 16 KiB header limit: served normally
        allowed = ANSWERED if label == "2000-headers" else REFUSED
        yield RequestCase(f"http-{label}", "http-protocol", build, allowed, app_level=False)
    # the client sends a broken or short body, then closes its side: the server must not wait for more
    ended = frozenset({"4xx", "closed"})

    def half_closed(extra: Headers, body: bytes) -> Callable[[], RawRequest]:
        framing = [(b"Host", b"127.0.0.1"), (b"Content-Length", str(len(query)).encode())]
        return lambda: RawRequest("POST", b"/query", [*framing, *valid, *extra], body, framing=False, half_close=True)

    chunked = half_closed([(b"Transfer-Encoding", b"chunked")], query)  # JSON is no chunked framing
    yield RequestCase("http-length-and-chunked", "http-protocol", chunked, ended, app_level=False)
    short = half_closed([], query[:10])
    yield RequestCase("http-body-shorter-than-length", "http-protocol", short, ended, app_level=False)

    # unsigned, so the auth middleware logs the refused path: an encoded newline must not start a line of its own
    yield RequestCase(
        "http-newline-in-path",
        "http-protocol",
        post([], b"/nothing%0a2026-01-01%2000:00:00,000%20CRITICAL%20forged%20line"),
        statuses=frozenset({401}),
        forged_log_line="2026-01-01 00:00:00,000 CRITICAL forged line",
    )
    yield RequestCase(
        "http-enabled-maybe", "http-protocol", lambda: RawRequest("PUT", b"/enabled?enabled=maybe", valid)
    )
    yield RequestCase("http-unknown-path", "http-protocol", post(valid, b"/nothing"), statuses=frozenset({404}))
    yield RequestCase(
        "http-wrong-method",
        "http-protocol",
        lambda: RawRequest("GET", b"/loadSources", valid),
        statuses=frozenset({405}),
    )


def slow_clients() -> Iterator[RequestCase]:
    """A client that sends part of its body and then nothing: the server must give up on it, not wait forever."""
    query = json.dumps(ROUTES["/query"]).encode()

    def stalled() -> RawRequest:
        framing = [(b"Host", b"127.0.0.1"), (b"Content-Length", str(len(query)).encode())]
        return RawRequest("POST", b"/query", [*framing, *signed()], query[:10], framing=False)

    yield RequestCase("http-body-never-finished", "slow-client", stalled, frozenset({"4xx", "closed"}), app_level=False)

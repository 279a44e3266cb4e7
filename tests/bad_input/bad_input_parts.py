"""Bad part headers and unicode-edge source ids, each beside a good part in one PUT /loadSources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypedDict, Unpack

from bad_input_sources import FAILED, LOADED, REFUSED, PartSpec, SourceCase, part

TEXT = b"Harbour crane report: the quay gantry lifted forty containers before the storm."
ANY = frozenset({FAILED, LOADED, REFUSED})


class PartOptions(TypedDict, total=False):
    """How `part` breaks a part's headers."""

    drop: tuple[str, ...]
    replace: dict[str, bytes]
    extra: tuple[tuple[bytes, bytes], ...]
    filename: bytes


def _case(name: str, kind: str, allowed: frozenset[str], **options: Unpack[PartOptions]) -> SourceCase:
    def build(sid: str) -> PartSpec:
        return part(sid, TEXT, **options)

    return SourceCase(name, kind, build, allowed)


def header_cases() -> Iterator[SourceCase]:
    refused = frozenset({REFUSED})
    for header in ("userIds", "title", "type", "modified", "provider"):
        yield _case(f"missing-{header}", "missing-header", refused, drop=(header,))
        # an empty title is valid (PHP 4.5+ sends one for files without a name)
        empty_ok = frozenset({LOADED}) if header == "title" else refused
        yield _case(f"empty-{header}", "missing-header", empty_ok, replace={header: b""})
    yield _case("blank-user-list", "missing-header", refused, replace={"userIds": b" , ,, "})
    duplicated = {
        "type": (b"text/plain", b"application/pdf"),
        "userIds": (b"fuzzer", b"mallory"),
        "modified": (b"1733000000", b"not-a-number"),
        "provider": (b"files__default", b""),
    }
    for header, (first, second) in duplicated.items():
        yield _case(
            f"duplicated-{header}",
            "duplicated-header",
            ANY,
            replace={header: first},
            extra=((header.encode(), second),),
        )
    overlong = {
        "title-100k": ("title", b"T" * 100_000),
        "users-5000": ("userIds", b",".join(b"user%d" % n for n in range(5000))),
        "user-id-200k": ("userIds", b"u" * 200_000),
        "provider-10k": ("provider", b"p" * 10_000),
        "modified-10k-digits": ("modified", b"9" * 10_000),
    }
    for label, (header, value) in overlong.items():
        yield _case(f"overlong-{label}", "overlong-header", ANY, replace={header: value})
    yield _case("overlong-header-name", "overlong-header", frozenset({LOADED}), extra=((b"X" * 10_000, b"1"),))
    modified = {
        "negative": (b"-1", refused),
        "exponent": (b"1e9", refused),
        "superscript-two": ("\u00b2".encode(), refused),
        "hex": (b"0x10", refused),
        "padded": (b"  1733000000  ", frozenset({LOADED})),
        "arabic-indic-digits": ("\u0661\u0667\u0663\u0663".encode(), ANY),
        "beyond-int64": (b"99999999999999999999", ANY),
        "zero": (b"0", frozenset({LOADED})),
    }
    for label, (value, allowed) in modified.items():
        yield _case(f"modified-{label}", "modified", allowed, replace={"modified": value})
    nul = {"userIds": b"fuzz\x00er", "provider": b"files\x00__default", "type": b"text/\x00plain", "title": b"a\x00b"}
    for header, value in nul.items():
        yield _case(f"nul-in-{header}", "control-chars", ANY, replace={header: value})
    yield _case("latin1-title", "control-chars", frozenset({LOADED}), replace={"title": b"Gr\xfc\xdfe.txt"})
    # CR and LF would end the header line (Guzzle refuses them in a header value)
    controls = bytes(c for c in range(1, 32) if c not in (10, 13))
    yield _case("control-chars-in-title", "control-chars", frozenset({LOADED}), replace={"title": controls})
    yield _case("rtl-override-title", "control-chars", frozenset({LOADED}), replace={"title": "\u202etxt.exe".encode()})
    yield _case("base64-transfer-encoding", "encoding", ANY, extra=((b"Content-Transfer-Encoding", b"base64"),))
    yield _case(
        "part-content-type-pdf", "encoding", frozenset({LOADED}), extra=((b"Content-Type", b"application/pdf"),)
    )


def source_id_cases() -> Iterator[SourceCase]:
    refused = frozenset({REFUSED})
    ids = {
        "nul": b"files__default: 1\x00",
        "rtl-mark": "files__default: 1\u200f".encode(),
        "rtl-override": "files__default: \u202e1".encode(),
        "zero-width": "files__default: 1\u200b2".encode(),
        "utf8-surrogate": b"files__default: \xed\xa0\x80",
        "invalid-utf8": b"files__default: \xff\xfe",
        "path-traversal": b"files__default: ../../etc/passwd",
        "bare-traversal": b"../../../etc/passwd",
        "slash": b"files__default: 1/2",
        "backslashes": b"files__default: 1\\..\\2",
        "windows-path": b"C:\\Windows\\system.ini",
        "arabic-indic": "files__default: \u0661".encode(),
        "fullwidth-colon": "files__default\uff1a 1".encode(),
        "trailing-space": b"files__default: 1 ",
        "no-provider": b": 1",
        "10k-invalid": b"x" * 10_000,
        "empty": b"",
        "quote": b'files__default: 1\\"x',
        "percent-encoded": b"files__default%3A%201",
    }
    for label, raw in ids.items():

        def build(sid: str, filename: bytes = raw) -> PartSpec:
            return part(sid, TEXT, filename=filename)

        yield SourceCase(f"source-id-{label}", "source-id", build, refused)
    long_ids = {
        "10k-digits": b"files__default: " + b"1" * 10_000,
        "5k-provider": b"p" * 5_000 + b"__default: 1",
    }
    for label, raw in long_ids.items():

        def build_long(sid: str, filename: bytes = raw) -> PartSpec:
            return part(sid, TEXT, filename=filename)

        yield SourceCase(f"source-id-{label}", "source-id", build_long, ANY)

    def rfc2231_newline(sid: str) -> PartSpec:
        spec = part(sid, TEXT)
        disposition = b"form-data; name=\"sources\"; filename*=utf-8''files__default%3A%201%0A"
        return PartSpec(spec.filename, spec.content, spec.headers, disposition)

    yield SourceCase("source-id-rfc2231-newline", "source-id", rfc2231_newline, refused)

    def no_filename(sid: str) -> PartSpec:
        spec = part(sid, TEXT)
        return PartSpec(spec.filename, spec.content, spec.headers, b'form-data; name="sources"')

    yield SourceCase("source-id-missing", "source-id", no_filename, refused)

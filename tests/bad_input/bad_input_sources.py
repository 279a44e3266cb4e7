"""Bad `sources` parts, each sent beside a good one in a PUT /loadSources: broken, hostile and mislabelled files,
pathological text, bad part headers and unicode-edge source ids. Built from seeds when the case runs."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import bad_input_files as mf

# outcomes of the bad part: a per-source error in /status, refused with a logged reason, or indexed anyway
FAILED, REFUSED, LOADED = "failed", "refused", "loaded"
FAILED_OR_LOADED = frozenset({FAILED, LOADED})
MB = 1_000_000
# the text of every zipped document, for "binary labelled as text" and wrong mimetypes
OFFICE = (mf.DOCX, mf.XLSX, mf.XLSM, mf.PPTX, mf.ODT, mf.ODS, mf.EPUB)
TEXT_TYPES = ("text/plain", "text/markdown", "text/csv", "application/json", "text/x-rst", "text/org", "text/html")


@dataclass(frozen=True)
class PartSpec:
    """One multipart part: the filename (the source id), header lines and content, all raw bytes."""

    filename: bytes
    content: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    # a raw Content-Disposition value instead of form-data; name="sources"; filename="..."
    disposition: bytes | None = None

    def encode(self, boundary: bytes) -> bytes:
        disposition = self.disposition or b'form-data; name="sources"; filename="' + self.filename + b'"'
        lines = [b"--" + boundary, *(name + b": " + value for name, value in self.headers)]
        lines.append(b"Content-Disposition: " + disposition)
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.content + b"\r\n"


def part(
    source_id: str,
    content: bytes,
    mimetype: str = "text/plain",
    *,
    drop: tuple[str, ...] = (),
    replace: dict[str, bytes] | None = None,
    extra: tuple[tuple[bytes, bytes], ...] = (),
    filename: bytes | None = None,
) -> PartSpec:
    """A part as the PHP app builds it, with headers dropped, replaced or added."""
    values = {
        "userIds": b"fuzzer",
        "title": b"Documents/bad input.bin",
        "type": mimetype.encode(),
        "modified": b"1733000000",
        "provider": b"files__default",
        **(replace or {}),
    }
    headers = tuple((name.encode(), value) for name, value in values.items() if name not in drop)
    return PartSpec(filename if filename is not None else source_id.encode(), content, headers + extra)


def multipart(parts: list[PartSpec], boundary: bytes = b"fuzzboundary0123456789abcdef") -> tuple[bytes, bytes]:
    """(body, Content-Type value)."""
    body = b"".join(p.encode(boundary) for p in parts) + b"--" + boundary + b"--\r\n"
    return body, b"multipart/form-data; boundary=" + boundary


@dataclass(frozen=True)
class SourceCase:
    """A bad part sent beside a good one; the bad one must end as one of `allowed`, the good one must load."""

    name: str
    kind: str
    build: Callable[[str], PartSpec] = field(repr=False)
    allowed: frozenset[str]
    # an XXE case: this file's content must never become searchable
    secret: Path | None = None


def _file(name: str, kind: str, content: Callable[[], bytes], mimetype: str, allowed: frozenset[str]) -> SourceCase:
    return SourceCase(name, kind, lambda sid: part(sid, content(), mimetype), allowed)


def _transformed(transform: Callable[[bytes], bytes], mimetype: str) -> bytes:
    return transform(mf.real_file(mimetype))


def _random_bytes(seed: str, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _png(seed: str) -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random("png" + seed).randbytes(40_000)


def _between_words(junk: bytes) -> bytes:
    return b"Harbour crane report. " + junk * 2000 + b" Cargo manifest checked."


def _short(mimetype: str) -> str:
    return mimetype.rsplit("/", 1)[-1].rsplit(".", 1)[-1].replace("+", "-")


def office_and_pdf() -> Iterator[SourceCase]:
    """Truncated, bit-flipped and zeroed office and PDF files; every format's encrypted forms."""
    fail = frozenset({FAILED})
    for mimetype in (*OFFICE, mf.PDF):
        short = _short(mimetype)
        for fraction in (0.01, 0.25, 0.5, 0.75, 0.98):
            cut = mimetype != mf.PDF or fraction < 0.5  # pypdf recovers pages from a PDF missing only its tail

            def truncated(m: str = mimetype, f: float = fraction) -> bytes:
                data: bytes = mf.truncated(mf.real_file(m), f)
                return data

            yield _file(
                f"truncated-{short}-{fraction}", "truncated", truncated, mimetype, fail if cut else FAILED_OR_LOADED
            )
        for seed in range(4):

            def flipped(m: str = mimetype, s: int = seed) -> bytes:
                data: bytes = mf.flipped(mf.real_file(m), random.Random(f"flip-{m}-{s}"), 12)
                return data

            yield _file(f"flipped-{short}-{seed}", "corrupt", flipped, mimetype, FAILED_OR_LOADED)

        def zeroed(m: str = mimetype) -> bytes:
            data: bytes = mf.zeroed(mf.real_file(m), random.Random(f"zero-{m}"), 512)
            return data

        yield _file(f"zeroed-{short}", "corrupt", zeroed, mimetype, FAILED_OR_LOADED)
    for mimetype in OFFICE:
        short = _short(mimetype)
        yield _file(f"ole-encrypted-{short}", "encrypted", mf.ole_encrypted_package, mimetype, fail)
        yield _file(
            f"zip-encrypted-{short}", "encrypted", partial(_transformed, mf.encrypted_flag, mimetype), mimetype, fail
        )
        yield _file(
            f"zip-method-99-{short}", "corrupt", partial(_transformed, mf.unknown_method, mimetype), mimetype, fail
        )
    for algorithm in ("RC4-128", "AES-128", "AES-256"):
        yield _file(f"pdf-encrypted-{algorithm}", "encrypted", partial(mf.encrypted_pdf, algorithm), mf.PDF, fail)
    yield _file("pdf-header-only", "corrupt", lambda: b"%PDF-1.7\n%%EOF\n", mf.PDF, fail)
    yield _file("pdf-garbage-body", "corrupt", lambda: b"%PDF-1.7\n" + random.Random(3).randbytes(50_000), mf.PDF, fail)
    yield _file("pdf-cyclic-pages", "corrupt", mf.cyclic_page_tree, mf.PDF, fail)
    yield _file("pdf-count-2e9", "corrupt", mf.huge_count_pdf, mf.PDF, fail)
    yield _file("pdf-30k-text-operators", "corrupt", lambda: mf.text_operators_pdf(30_000), mf.PDF, FAILED_OR_LOADED)


def bombs() -> Iterator[SourceCase]:
    """Zip bombs (ratio, lying sizes, member count, overlapping entries) and XML entity bombs and XXE."""
    fail = frozenset({FAILED})
    for mimetype in OFFICE:
        short = _short(mimetype)
        yield _file(
            f"zip-ratio-bomb-{short}",
            "zip-bomb",
            partial(_transformed, partial(mf.ratio_bomb, megabytes=64), mimetype),
            mimetype,
            fail,
        )
        yield _file(
            f"zip-lying-sizes-{short}",
            "zip-bomb",
            partial(_transformed, partial(mf.lying_sizes, megabytes=64), mimetype),
            mimetype,
            FAILED_OR_LOADED,
        )
        yield _file(
            f"xml-billion-laughs-{short}",
            "xml-bomb",
            partial(mf.entity_document, mimetype, mf.BILLION_LAUGHS, mf.LAUGHS_REF),
            mimetype,
            FAILED_OR_LOADED,
        )
        yield _file(
            f"xml-quadratic-{short}",
            "xml-bomb",
            partial(mf.entity_document, mimetype, mf.QUADRATIC, "&big;" * 2000),
            mimetype,
            FAILED_OR_LOADED,
        )
    yield _file("zip-25000-members", "zip-bomb", lambda: mf.many_members(25_000), mf.XLSX, fail)
    yield _file("zip-overlapping-2000", "zip-bomb", lambda: mf.overlapping_members(2000), mf.DOCX, fail)
    yield _file("zip-overlapping-40000", "zip-bomb", lambda: mf.overlapping_members(40_000), mf.ODT, fail)
    xml = "application/xml"
    yield _file("xml-billion-laughs", "xml-bomb", lambda: mf.xml_document(mf.BILLION_LAUGHS, mf.LAUGHS_REF), xml, fail)
    yield _file("xml-quadratic", "xml-bomb", lambda: mf.xml_document(mf.QUADRATIC, "&big;" * 5000), xml, fail)
    yield _file("xml-200k-deep", "xml-bomb", lambda: mf.deep_xml(200_000), xml, FAILED_OR_LOADED)
    yield _file("html-100k-deep", "xml-bomb", lambda: mf.deep_html(100_000), "text/html", FAILED_OR_LOADED)


def xxe_cases(secret: Path) -> Iterator[SourceCase]:
    """External entities naming a file on the server: the file's text must never be indexed."""
    for mimetype in (*OFFICE, "application/xml"):
        short = _short(mimetype)

        def build(sid: str, m: str = mimetype) -> PartSpec:
            if m == "application/xml":
                return part(sid, mf.xml_document(mf.xxe(secret), "&xxe;"), m)
            return part(sid, mf.entity_document(m, mf.xxe(secret), "&xxe;"), m)

        yield SourceCase(f"xxe-{short}", "xxe", build, FAILED_OR_LOADED, secret)


def mislabelled() -> Iterator[SourceCase]:
    """Binary labelled as text, invalid UTF-8, and files declared as a type they are not."""
    for mimetype in TEXT_TYPES:
        short = _short(mimetype)
        yield _file(
            f"random-bytes-as-{short}",
            "binary-as-text",
            partial(_random_bytes, mimetype, 65_536),
            mimetype,
            frozenset({FAILED}),
        )
        yield _file(
            f"png-as-{short}",
            "binary-as-text",
            partial(_png, mimetype),
            mimetype,
            frozenset({FAILED}),
        )
    for source in (mf.DOCX, mf.PDF, mf.XLSX):
        yield _file(
            f"{_short(source)}-as-plain",
            "binary-as-text",
            partial(mf.real_file, source),
            "text/plain",
            FAILED_OR_LOADED,
        )
    yield _file("nuls-as-plain", "binary-as-text", lambda: b"\x00" * 100_000, "text/plain", frozenset({FAILED}))
    invalid = {
        "lone-continuation": b"\x80\x81\x82",
        "overlong-slash": b"\xc0\xaf",
        "surrogate-half": b"\xed\xa0\x80",
        "five-byte": b"\xf8\x88\x80\x80\x80",
        "truncated-sequence": b"\xe2\x82",
        "ff-fe": b"\xff\xfe",
        "above-u10ffff": b"\xf4\x90\x80\x80",
    }
    for label, junk in invalid.items():
        yield _file(
            f"invalid-utf8-{label}",
            "invalid-utf8",
            partial(_between_words, junk),
            "text/plain",
            FAILED_OR_LOADED,
        )
    yield _file(
        "utf16-without-bom",
        "invalid-utf8",
        lambda: "Harbour crane report ".encode("utf-16-le") * 3000,
        "text/plain",
        FAILED_OR_LOADED,
    )
    wrong = [
        (mf.DOCX, mf.PDF),
        (mf.PDF, mf.DOCX),
        (mf.XLSX, mf.PPTX),
        (mf.PPTX, mf.ODT),
        (mf.ODT, mf.XLSX),
        (mf.EPUB, mf.DOCX),
        ("text/html", "application/xml"),
        ("message/rfc822", "application/vnd.ms-outlook"),
        ("application/vnd.ms-outlook", "message/rfc822"),
        ("text/rtf", mf.PDF),
        (mf.PDF, "text/rtf"),
        (mf.DOCX, "application/vnd.ms-powerpoint"),
        (mf.XLSX, "application/vnd.ms-outlook"),
    ]
    for source, declared in wrong:
        yield _file(
            f"{_short(source)}-declared-{_short(declared)}",
            "wrong-mimetype",
            partial(mf.real_file, source),
            declared,
            FAILED_OR_LOADED,
        )
    text = b"Harbour crane report: the quay gantry lifted forty containers."
    odd_types = {
        "octet-stream": "application/octet-stream",
        "image-png": "image/png",
        "unknown": "application/x-fuzz",
        "upper-case": "TEXT/PLAIN",
        "charset-param": "text/plain; charset=utf-16",
        "many-semicolons": "text/plain;;;;",
        "10k-type": "text/" + "x" * 10_000,
        "nul-in-type": "text/plain\x00",
        "rtl-in-type": "text/\u202eplain",
    }
    for label, mimetype in odd_types.items():
        yield SourceCase(
            f"mimetype-{label}",
            "wrong-mimetype",
            partial(part, content=text, mimetype=mimetype),
            FAILED_OR_LOADED | {REFUSED},
        )
    yield _file("empty-file", "empty", lambda: b"", "text/plain", frozenset({FAILED}))
    yield _file("empty-docx", "empty", lambda: b"", mf.DOCX, frozenset({FAILED}))


def pathological_text() -> Iterator[SourceCase]:
    """1 MB lines, 1 MB whitespace runs of every kind, and runs of the chunker's separators."""
    lines: dict[str, tuple[str, Callable[[], bytes]]] = {
        "words": ("text/plain", lambda: mf.words_line(random.Random(1), MB)),
        "one-word": ("text/plain", lambda: b"a" * MB),
        "random-letters": ("text/plain", lambda: "".join(random.Random(2).choices("abcdefghij", k=MB)).encode()),
        "identifiers": ("text/plain", lambda: mf.words_line(random.Random(3), MB, separator=".")),
        "markdown-heading": ("text/markdown", lambda: b"# " + mf.words_line(random.Random(4), MB)),
        "csv-cell": ("text/csv", lambda: b"id;text\n1;" + mf.words_line(random.Random(5), MB)),
        "json-string": ("application/json", lambda: b'{"k": "' + mf.words_line(random.Random(6), MB) + b'"}'),
        "html-text-node": ("text/html", lambda: b"<p>" + b"x" * MB + b"</p>"),
        "xml-attribute": ("application/xml", lambda: b'<r a="' + b"y" * MB + b'">z</r>'),
        "rtf-text": ("text/rtf", lambda: b"{\\rtf1 " + mf.words_line(random.Random(7), MB) + b"}"),
    }
    for label, (mimetype, build) in lines.items():
        yield _file(f"1mb-line-{label}", "1mb-line", build, mimetype, FAILED_OR_LOADED)
    blanks = {
        "space": " ",
        "tab": "\t",
        "em-space": "\u2003",
        "ideographic-space": "\u3000",
        "fs-1c": "\x1c",
        "gs-1d": "\x1d",
        "rs-1e": "\x1e",
        "us-1f": "\x1f",
        "nbsp": "\u00a0",
        "line-separator": "\u2028",
        "paragraph-separator": "\u2029",
        "vt": "\x0b",
        "ff": "\x0c",
        "cr": "\r",
        "lf": "\n",
        "crlf": "\r\n",
        "zero-width-space": "\u200b",
        "mixed": " \t\u2003\u3000\x1c\x1d\x1e\x1f\u00a0\n",
    }
    for label, char in blanks.items():
        yield _file(
            f"1mb-run-{label}-alone",
            "1mb-whitespace",
            partial(mf.whitespace_run, char, MB),
            "text/plain",
            FAILED_OR_LOADED,
        )
        yield _file(
            f"1mb-run-{label}-between-words",
            "1mb-whitespace",
            partial(mf.whitespace_run, char, MB, ("Harbour crane report", "cargo manifest")),
            "text/markdown",
            FAILED_OR_LOADED,
        )
    separators = {
        "clause-commas": ("text/plain", ", "),
        "spaced-dashes": ("text/plain", " - "),
        "sentence-ends": ("text/plain", "a. "),
        "quoted-stops": ("text/plain", ".'"),
        "ellipsis-spaces": ("text/plain", "\u2026 "),
        "cjk-commas": ("text/plain", "\uff0c"),
        "json-brackets": ("application/json", "["),
        "json-commas": ("application/json", "},"),
        "table-bars": ("text/csv", " | "),
        "csv-empty-cells": ("text/csv", ";"),
        "markdown-headings": ("text/markdown", "\n# "),
        "org-stars": ("text/org", "\n* "),
        "rst-underlines": ("text/x-rst", "x\n===\n"),
        "blank-lines": ("text/plain", "\n \n"),
    }
    for label, (mimetype, unit) in separators.items():
        yield _file(
            f"1mb-separators-{label}",
            "1mb-separators",
            partial(mf.whitespace_run, unit, MB, ("start ", " end")),
            mimetype,
            FAILED_OR_LOADED,
        )

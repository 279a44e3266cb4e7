"""The admin status page in headless Chromium against a real app on a real database with the real embedder: reached
through AppAPI's proxy (the info.xml routes) and with the app secret, it renders /status's figures and a chart."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from appapi_proxy import appapi_proxy
from contract_kit import APP_SECRET, SourcePart, guzzle_multipart, signed_headers
from headless_chromium import VIRTUAL_TIME_BUDGET_MS, WINDOW, run_chromium
from live_app_kit import start_live_app
from PIL import Image
from server_process import ServerProcess
from waiting import wait_for

pytestmark = pytest.mark.slow

THROUGHPUT_RGB = (0x00, 0x82, 0xC9)
QUEUE_RGB = (0xE6, 0x55, 0x0D)
DOCUMENTS = 12
# page.js's REFRESH_MS
REFRESH_MS = 10_000
BROKEN_SOURCE = "files__default: 999"
# a sample every second: the seconds of indexing make a chart (one a minute in production)
HISTORY = {"interval_s": 1.0, "samples": 600}
# small batches: the queue drains in steps the samples see (8192 tokens in production)
WORKER = {"idle_poll_s": 0.2, "batch_tokens": 384}
FIGURES = {
    "documents-indexed": ("documents", "indexed"),
    "documents-failed": ("documents", "failed"),
    "chunks-embedded": ("chunks", "embedded"),
    "chunks-queued": ("chunks", "queued"),
    "chunks-failed": ("chunks", "failed"),
    "queue-depth": ("queue", "depth"),
}


def _document(number: int) -> bytes:
    """About four chunks of distinct text (identical chunks would be embedded once)."""
    paragraphs = [
        f"Report {number}, part {part}: the team reviewed the budget, the travel plans and the hiring of"
        f" {number * 7 + part} people for the office in the spring, then agreed on the next steps for section {part}."
        for part in range(8)
    ]
    return "\n\n".join(paragraphs).encode()


@pytest.fixture
def indexed_app(tmp_path: Path, fresh_dsn: str, embedder_url: str) -> Iterator[tuple[str, ServerProcess]]:
    """A live app that indexed DOCUMENTS documents (and failed one), with every chunk embedded and sampled."""
    base, server = start_live_app(
        tmp_path,
        fresh_dsn,
        embedder_url,
        status_history=HISTORY,
        embedding_worker=WORKER,
        retrieval={"cross_lingual": {"threads": 1}},
    )
    try:
        _index(base)
        yield base, server
    finally:
        server.stop()


def _index(base: str) -> None:
    parts = [SourcePart(f"files__default: {n}", _document(n), title=f"Reports/{n}.txt") for n in range(DOCUMENTS)]
    parts.append(SourcePart(BROKEN_SOURCE, b"%PDF-1.7 not a pdf", title="broken.pdf", mimetype="application/pdf"))
    with httpx.Client(base_url=base, timeout=120) as http:
        for start in range(0, len(parts), 10):
            body, content_type = guzzle_multipart(parts[start : start + 10])
            loaded = http.put("/loadSources", content=body, headers={**signed_headers(), "Content-Type": content_type})
            assert loaded.status_code == 200, loaded.text
        _wait_for(http, lambda report, history: report["chunks"]["queued"] == 0 and max(history["chunks_per_s"]) > 0)
        # one more sample after the queue drained: the chart ends where the figures stand
        last = len(_get(http, "/status/history")["at"])
        _wait_for(http, lambda report, history: len(history["at"]) > last)


def _get(http: httpx.Client, path: str) -> Any:
    response = http.get(path, headers=signed_headers("admin"))
    assert response.status_code == 200, response.text
    return response.json()


def _wait_for(http: httpx.Client, done: Any, timeout_s: float = 300.0) -> None:
    """Poll /status and /status/history until `done(report, history)` (a loaded machine embeds slowly)."""

    def reached() -> bool:
        report, history = _get(http, "/status"), _get(http, "/status/history")
        return bool(history["at"]) and bool(done(report, history))

    wait_for(reached, timeout_s, "the status figures and history to reach the expected state", interval=0.2)


class _Figures(HTMLParser):
    """Text of every element with an id, and the rows of the page's tables."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self._open: list[tuple[str, str | None]] = []
        self._table: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = dict(attrs).get("id")
        if tag == "table":
            self._table = ident
        if tag == "tr" and self._table:
            self.rows.setdefault(self._table, []).append([])
        if tag == "td" and self._table:
            self.rows[self._table][-1].append("")
        self._open.append((tag, ident))

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()
        if tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        for _tag, ident in self._open:
            if ident:
                self.by_id[ident] = self.by_id.get(ident, "") + data
        if self._open and self._open[-1][0] == "td" and self._table:
            self.rows[self._table][-1][-1] += data


def _figures(dom: str) -> _Figures:
    parsed = _Figures()
    parsed.feed(dom)
    return parsed


def _assert_page_shows(dom: str, report: dict[str, Any]) -> None:
    assert 'data-state="ready"' in dom, dom[-2000:]
    page = _figures(dom)
    for element, (section, key) in FIGURES.items():
        assert int(page.by_id[element].replace(",", "")) == report[section][key], element
    assert report["documents"]["indexed"] == DOCUMENTS and report["chunks"]["embedded"] > DOCUMENTS
    assert page.by_id["eta"] == "done"
    assert f"{report['embedding_model']['id']} ({report['embedding_model']['dimension']}-d)" in page.by_id["models"]
    leg = report["cross_lingual"]
    progress = "idle until a question in another language" if not leg["wanted"] else "chunks have its vector"
    assert f"cross-lingual leg{leg['model']}: " in page.by_id["models"] and progress in page.by_id["models"]
    loops = {row[0]: row[1] for row in page.rows["loops"] if row}
    assert set(loops) == set(report["loops"]) and loops["status_history"] == "running"
    [broken] = [row for row in page.rows["errors"] if row and row[1] == BROKEN_SOURCE]
    assert broken[0] == "document" and broken[2] == report["documents"]["failed_sources"][0]["error"] != ""


def _coloured_columns(image: Image.Image, rgb: tuple[int, int, int], tolerance: int = 40) -> set[int]:
    """x positions of pixels within `tolerance` of `rgb` (per channel)."""
    rgb_image = image.convert("RGB")
    width, height = rgb_image.size
    pixels = rgb_image.load()
    assert pixels is not None
    columns = set()
    for y in range(height):
        for x in range(width):
            r, g, b = pixels[x, y]  # type: ignore[misc]
            if abs(r - rgb[0]) <= tolerance and abs(g - rgb[1]) <= tolerance and abs(b - rgb[2]) <= tolerance:
                columns.add(x)
    return columns


def test_the_page_renders_the_status_figures_and_the_chart_for_admins_only(
    indexed_app: tuple[str, ServerProcess], tmp_path: Path
) -> None:
    """Through AppAPI's proxy (an admin's browser) and with the app secret as Basic password (no Nextcloud) the page
    shows /status's figures and draws both series; without either it shows nothing."""
    base, server = indexed_app
    screenshot = tmp_path / "status-page.png"
    with appapi_proxy(base) as proxied, httpx.Client(base_url=base, timeout=60) as http:
        proxied_dom = run_chromium(proxied + "status/page.html")
        run_chromium(proxied + "status/page.html", screenshot=screenshot)
        secret_dom = run_chromium(base.replace("http://", f"http://admin:{APP_SECRET}@") + "/status/page.html")
        anonymous_dom = run_chromium(base + "/status/page.html")
        report = _get(http, "/status")
    _assert_page_shows(proxied_dom, report)
    _assert_page_shows(secret_dom, report)
    assert "Documents" not in anonymous_dom and "data-state" not in anonymous_dom
    # the password in the page's URL, its Basic header and the session cookie are never logged
    assert APP_SECRET not in server.log_text()
    image = Image.open(screenshot)
    assert image.size == WINDOW
    # each series is a line drawn across the chart (a legend marker alone is a few pixels wide)
    for rgb in (THROUGHPUT_RGB, QUEUE_RGB):
        columns = _coloured_columns(image, rgb)
        assert len(columns) > 400, (rgb, len(columns))


def test_after_a_failed_refresh_the_page_keeps_its_figures_marked_stale_with_their_age(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    """The app goes away after the page's first refresh: the next one fails, and the page keeps the figures it has,
    says they are stale and still says when they were fetched, next to the error."""
    base, server = start_live_app(tmp_path, fresh_dsn, embedder_url)
    answered: set[str] = set()
    lock = threading.Lock()

    def stop_the_app_after_the_first_refresh(path: str) -> None:
        # the browser waits for this answer (virtual time stands still meanwhile), so the app is gone before the next
        with lock:
            answered.add(path)
            if {"/status", "/status/history"} <= answered:
                server.stop()

    try:
        with appapi_proxy(base, before_answer=stop_the_app_after_the_first_refresh) as proxied:
            dom = run_chromium(proxied + "status/page.html", virtual_time_ms=VIRTUAL_TIME_BUDGET_MS + REFRESH_MS)
    finally:
        server.stop()
    page = _figures(dom)
    assert 'data-state="stale"' in dom, page.by_id.get("updated")
    assert re.fullmatch(
        r"updated \d\d:\d\d:\d\d \(\d+ s ago\); figures stale, could not refresh: (\.\./status|history): HTTP 500",
        page.by_id["updated"],
    ), page.by_id["updated"]
    # the first refresh's figures (an empty index) are still there
    for element in FIGURES:
        assert page.by_id[element] == "0", element

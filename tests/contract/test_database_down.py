"""Database down, for real: the running server (hypercorn) under push traffic while its PostgreSQL is stopped
(fast shutdown) and started again. Every answer is a 200 or a 503 + cc-retry naming the database, the heartbeat
stays up, nothing acknowledged is lost, and the app recovers without a restart. The long run is
tests/soak/test_database_down_soak.py."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from contract_kit import APP_SECRET, signed_headers
from database_down_kit import PushTraffic, store_report, unclear_refusals
from headless_chromium import run_chromium
from live_app_kit import ccb_env, running_live_app
from restartable_postgres import RestartablePostgres
from server_process import ServerProcess
from waiting import wait_for

from appliance.ccb import EXIT_APP_ERROR

CCB = [sys.executable, "-c", "import sys; from appliance.ccb import main; sys.exit(main())"]
pytestmark = pytest.mark.slow
DOCUMENTS = 24


@pytest.fixture
def live_app(
    tmp_path: Path, restartable_pg: RestartablePostgres, embedder_url: str
) -> Iterator[tuple[str, ServerProcess]]:
    with running_live_app(tmp_path, restartable_pg.test_dsn, embedder_url) as app:
        yield app


def test_postgres_stopped_mid_traffic_is_a_clear_503_and_nothing_acknowledged_is_lost(
    live_app: tuple[str, ServerProcess], restartable_pg: RestartablePostgres
) -> None:
    base, server = live_app
    traffic = PushTraffic(base, restartable_pg.test_dsn, DOCUMENTS)
    traffic.start()
    try:
        wait_for(lambda: len(traffic.acknowledged) >= DOCUMENTS // 3, 120, "a third of the documents acknowledged")
        restartable_pg.stop_fast()
        stopped = time.time()
        # keep it down until every kind of request has met the outage
        wait_for(
            lambda: all(traffic.count(route, 503) >= 3 for route in ("/loadSources", "/query", "/updateAccess")),
            120,
            "503s on /loadSources, /query and /updateAccess",
        )
        restartable_pg.start()
        started = time.time()
        wait_for(lambda: traffic.done, 180, "every document acknowledged and shared after the outage")
        # the traffic may be done before a question met the database again (a 400 is not recorded while no chunk
        # has its vector): keep asking until one is answered
        wait_for(lambda: traffic.count("/query", 200, since=started) > 0, 120, "a /query answered after the outage")
    finally:
        traffic.join()
    outcomes = traffic.outcomes
    unexpected = [o for o in outcomes if o.status not in (200, 503)]
    assert unexpected == [], unexpected[:5]
    refused = [o for o in outcomes if o.status == 503]
    assert unclear_refusals(outcomes) == []
    assert all(o.status == 200 for o in outcomes if o.route == "/heartbeat")
    assert any(o.route == "/heartbeat" and stopped < o.at < started for o in outcomes)
    # served again without a restart of the app
    back = min(o.at for o in outcomes if o.route == "/query" and o.status == 200 and o.at > started)
    assert server.process is not None and server.process.poll() is None
    wait_for(
        lambda: store_report(restartable_pg.test_dsn)["unembedded_chunks"] == 0, 120, "the embedding queue drained"
    )
    report = store_report(restartable_pg.test_dsn)
    assert report["documents"] == sorted(traffic.acknowledged)
    assert len(traffic.acknowledged) == DOCUMENTS and report["duplicated_sources"] == 0
    assert report["bob"] == sorted(traffic.shared)
    log = server.log_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 2000 :][:4000]
    print(
        f"outage {started - stopped:.1f} s; {len(refused)} requests answered 503 + cc-retry; first /query 200 "
        f"{back - started:.1f} s after PostgreSQL accepted connections; {len(outcomes)} requests in all"
    )


def test_the_doctor_sends_the_admin_to_the_database_not_to_make_run(
    live_app: tuple[str, ServerProcess], restartable_pg: RestartablePostgres, tmp_path: Path
) -> None:
    """With PostgreSQL down the app still answers, with a 503 that names the database: the doctor's fix said to start
    the app with `make run`, which the running appliance refuses, instead of pointing at that answer."""
    base, _server = live_app
    restartable_pg.stop_fast()
    try:
        doctor = subprocess.run(
            [*CCB, "doctor", "--json"],
            env=ccb_env(base, tmp_path / "storage"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        restartable_pg.start()
    checks = json.loads(doctor.stdout.strip().splitlines()[-1])["checks"]
    app = next(check for check in checks if check["name"] == "app")
    assert app["outcome"] == "fail"
    assert app["detail"].startswith("GET /status: HTTP 503: Vector DB Error: PostgreSQL is not reachable"), app
    # its 503 carries the database's outage: the fix names it
    assert app["fix"].startswith("the app waits for PostgreSQL: start it (the postgres check above says how)"), app


def test_status_while_postgres_is_down_still_shows_the_programs_and_the_embedder_and_says_what_to_do(
    live_app: tuple[str, ServerProcess], restartable_pg: RestartablePostgres, tmp_path: Path
) -> None:
    """GET /status answered a bare 503 {"error"} while PostgreSQL was down, so `ccb status` showed one error line and
    lost supervisord's programs and the embedder exactly when the admin needs them. The 503 now carries everything
    that needs no database, the database marked unavailable with since when and why, and `ccb status` shows it with
    a database line that says what to do (exit 5, as for any 5xx)."""
    base, _server = live_app
    env = {**ccb_env(base, tmp_path / "storage"), "COLUMNS": "400"}
    restartable_pg.stop_fast()
    stopped = time.time()
    try:
        response = httpx.get(f"{base}/status", headers=signed_headers(), timeout=120)
        text = subprocess.run([*CCB, "status"], env=env, capture_output=True, text=True, timeout=120)
        as_json = subprocess.run([*CCB, "status", "--json"], env=env, capture_output=True, text=True, timeout=120)
    finally:
        restartable_pg.start()
    assert (response.status_code, response.headers.get("cc-retry")) == (503, "true")
    report = response.json()
    assert report["error"].startswith("Vector DB Error: PostgreSQL is not reachable"), report
    database = report["database"]
    assert database["state"] == "unavailable" and stopped - 1 < database["unavailable_since"] <= time.time()
    # the connection failure itself, not our paraphrase: the unix socket gone with the server, or (a reconnect that
    # came while the postmaster was still ending its sessions, as on a loaded machine) its refusal during the stop
    assert any(cause in database["last_error"] for cause in ("No such file or directory", "is shutting down")), database
    assert report["embedder"]["state"] == "available" and report["programs"] and report["hardware"]["arch"]
    assert report["role"]["name"] == "normal" and "engine_opening" in report["loops"]
    assert [report[part] for part in ("documents", "chunks", "queue", "eta_s")] == [None] * 4
    assert text.returncode == EXIT_APP_ERROR, text.stderr
    assert "Programs" in text.stdout and "embedding service  available" in text.stdout, text.stdout
    assert "database           unavailable since " in text.stdout, text.stdout
    assert "indexing and questions wait and resume by themselves once it is back: start it" in text.stdout
    assert text.stderr.startswith("error: Vector DB Error: PostgreSQL is not reachable"), text.stderr
    assert as_json.returncode == EXIT_APP_ERROR
    last = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert last["exit"] == EXIT_APP_ERROR and last["database"]["state"] == "unavailable" and last["programs"]


def _element_text(dom: str, ident: str) -> str:
    """The text of the page's element with this id (its markup's tags dropped)."""
    found = re.search(rf'<(\w+) id="{ident}"[^>]*>(.*?)</\1>', dom, re.S)
    assert found is not None, (ident, dom[:3000])
    return html.unescape(re.sub(r"<[^>]+>", "", found[2]))


def test_the_status_page_while_postgres_is_down_draws_the_partial_report_and_says_what_to_do(
    live_app: tuple[str, ServerProcess], restartable_pg: RestartablePostgres
) -> None:
    """The status page showed only "could not load the status: ../status: HTTP 503: Vector DB Error: …" during an
    outage, though the 503 carries the programs, the embedder and the database's outage: it now draws that report,
    with a banner saying since when and why the database is away and what to do."""
    base, _server = live_app
    restartable_pg.stop_fast()
    try:
        report = httpx.get(f"{base}/status", headers=signed_headers(), timeout=120).json()
        dom = run_chromium(base.replace("http://", f"http://admin:{APP_SECRET}@") + "/status/page.html")
    finally:
        restartable_pg.start()
    database = report["database"]
    assert database["state"] == "unavailable", report
    assert 'data-state="degraded"' in dom, _element_text(dom, "updated")
    assert "; HTTP 503: Vector DB Error: PostgreSQL is not reachable" in _element_text(dom, "updated")
    since = time.strftime("%H:%M:%S", time.localtime(database["unavailable_since"]))
    banner = _element_text(dom, "database-outage")
    assert banner.startswith(f"Database unavailable since {since} ("), banner
    assert f"{database['last_error']}. Indexing and questions wait and resume by themselves once it is back" in banner
    assert "start it (embedded: the postgres program below, `ccb logs postgres`)" in banner
    # what needs no database is drawn: the programs (here: why supervisord could not be asked), the loops
    models = _element_text(dom, "models")
    assert f"programs{report['programs']}" in models and "embedding modelunknown while the database" in models
    assert "engine_openingopened" in _element_text(dom, "loops")
    assert _element_text(dom, "documents-indexed") == "\u2013"  # number() of a figure the report lacks

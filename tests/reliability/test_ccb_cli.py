"""`ccb` against the whole appliance started as the README's quick start does: `make run`'s entrypoint with no
Nextcloud and no APP_SECRET. The real console-script entry point runs as a subprocess from a user's folder with only
APP_PERSISTENT_STORAGE set: it finds the app's address and the generated secret in the storage."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import pytest
from appliance_kit import REPO, clean_env
from appliance_stack import ApplianceStack, shipped_config
from local_ports import free_port

from appliance.ccb import EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE
from quart_app.runtimes.llm_extractive import STANDALONE_HEADER

pytestmark = pytest.mark.slow
DOCS = {
    "rating.txt": "The Ethical AI Rating: a green label means open model, data and code.",
    "notes/budget.md": "# Travel\n\nThe Berlin office travel budget for 2025 is 12000 euros.",
}


def ccb_command() -> list[str]:
    """What pip's `ccb` wrapper runs: the [project.scripts] entry of pyproject.toml."""
    entry = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["ccb"]
    module, _, attr = entry.partition(":")
    return [sys.executable, "-c", f"import sys; from {module} import {attr}; sys.exit({attr}())"]


def ccb(*args: str, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ccb_command(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_pdf(path: Path, text: str) -> None:
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    font = {NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1")}
    font[NameObject("/BaseFont")] = NameObject("/Helvetica")
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(DictionaryObject(font))})}
    )
    content = DecodedStreamObject()
    content.set_data(f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET".encode("latin-1"))
    page[NameObject("/Contents")] = writer._add_object(content)
    with path.open("wb") as handle:
        writer.write(handle)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApplianceStack, dict[str, str]]]:
    """The appliance with the shipped CPU config (first LLM nc_texttotext), no NEXTCLOUD_URL, no APP_SECRET, never
    enabled by anyone; and the environment a user's shell has (only APP_PERSISTENT_STORAGE)."""
    root = Path(tmp_path_factory.mktemp("ccb", numbered=True))
    config = shipped_config(free_port())
    config["llm"] = {"nc_texttotext": {}}
    stack = ApplianceStack(root, config, secret=None)
    try:
        stack.wait_healthy()
        env = {**clean_env(stack.storage.root), "PYTHONPATH": str(REPO)}
        yield stack, env
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's folder of mixed documents: txt, md, docx, pdf, an image no loader reads and a broken PDF."""
    base = Path(tmp_path_factory.mktemp("home"))
    docs = base / "docs"
    (docs / "notes").mkdir(parents=True)
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    document = docx.Document()
    document.add_paragraph("Holiday plan: hiking in the Alps in July, sleeping in a tent.")
    document.save(str(docs / "holiday.docx"))
    write_pdf(docs / "invoice.pdf", "Invoice number 4711 for the harbour crane rental")
    (docs / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF at all")
    return base


def test_the_quick_start_index_ask_search_status_delete_and_doctor(
    standalone: tuple[ApplianceStack, dict[str, str]], folder: Path
) -> None:
    stack, env = standalone
    indexed = ccb("index", "docs", "--user", "me", "--share", "friend", "--json", cwd=folder, env=env)
    report = json_of(indexed)
    # the broken PDF is the one failure: exit 1, with the parser's reason from the app
    assert indexed.returncode == EXIT_FAILED, indexed.stderr
    assert sorted(doc["title"] for doc in report["indexed"]) == [
        "docs/holiday.docx",
        "docs/invoice.pdf",
        "docs/notes/budget.md",
        "docs/rating.txt",
    ]
    assert [Path(doc["path"]).name for doc in report["skipped"]] == ["photo.png"]
    assert [Path(doc["path"]).name for doc in report["failed"]] == ["broken.pdf"]
    assert "pdf" in report["failed"][0]["reason"].lower(), report["failed"]
    # followed through embedding: nothing left in the queue when ccb returned
    assert report["chunks"]["queued"] == 0 and report["chunks"]["embedded"] >= 4 and report["chunks"]["failed"] == 0

    answer = ccb("ask", "How much is the Berlin office travel budget?", "--user", "me", "--json", cwd=folder, env=env)
    assert answer.returncode == 0, answer.stderr
    body = json_of(answer)
    # no Nextcloud: nc_texttotext cannot be asked, so the passages are quoted and the answer says why
    assert body["output"].startswith(STANDALONE_HEADER)
    assert "12000 euros" in body["output"]
    assert body["sources"][0]["title"] == "docs/notes/budget.md"
    shared = ccb("ask", "hiking in the Alps", "--user", "friend", cwd=folder, env=env)
    assert shared.returncode == 0 and "docs/holiday.docx" in shared.stdout.split("Sources:")[1], shared.stderr
    stranger = ccb("ask", "Berlin travel budget", "--user", "stranger", "--json", cwd=folder, env=env)
    assert stranger.returncode == EXIT_REFUSED
    assert "No documents retrieved" in stranger.stderr and json_of(stranger)["exit"] == EXIT_REFUSED

    hits = json_of(ccb("search", "harbour crane invoice", "--user", "me", "--json", cwd=folder, env=env))
    assert hits[0]["title"] == "docs/invoice.pdf" and "harbour crane rental" in hits[0]["passage"]
    shown = ccb("search", "harbour crane invoice", "--user", "me", cwd=folder, env=env).stdout
    assert shown.startswith("  1. docs/invoice.pdf (ccb__files: ") and "     > Invoice number 4711" in shown, shown
    scoped = ccb("search", "label", "--user", "me", "--scope", "docs/rating.txt", "--json", cwd=folder, env=env)
    assert [hit["title"] for hit in json_of(scoped)] == ["docs/rating.txt"]

    status = json_of(ccb("status", "--json", cwd=folder, env=env))
    assert status["documents"]["indexed"] == 4 and status["documents"]["failed"] == 1
    assert status["chunks"]["queued"] == 0
    # frpc runs only behind HaRP: never started here, so not listed
    assert status["programs"] == {"app": "RUNNING", "embedder": "RUNNING", "postgres": "RUNNING"}
    # the probe's choice reaches the app through launch.env; the LLM is the standalone extractive fallback
    assert status["hardware"]["device"] == "cpu" and status["hardware"]["device_reason"]
    assert status["llm"]["backend"] == "extractive"
    assert status["pull"]["nextcloud_configured"] is False

    deleted = ccb("delete", "docs/holiday.docx", "--json", cwd=folder, env=env)
    assert deleted.returncode == 0 and json_of(deleted)["count"] == 1, deleted.stderr
    hits = json_of(ccb("search", "hiking Alps tent", "--user", "me", "--json", cwd=folder, env=env))
    assert "docs/holiday.docx" not in {hit["title"] for hit in hits}

    doctor = ccb("doctor", "--json", cwd=folder, env=env)
    checks = {check["name"]: check for check in json_of(doctor)["checks"]}
    assert doctor.returncode == 0 and json_of(doctor)["ok"] is True, doctor.stdout
    assert {name: checks[name]["outcome"] for name in ("postgres", "embedder", "app", "models")} == dict.fromkeys(
        ("postgres", "embedder", "app", "models"), "ok"
    )
    assert checks["nextcloud"]["outcome"] == "skip"

    logs = ccb("logs", "app", "-n", "200", cwd=folder, env=env)
    assert logs.returncode == 0 and "NEXTCLOUD_URL is not set" in logs.stdout
    secret = stack.storage.secret_file.read_text().strip()
    for path in stack.storage.log_dir.glob("*.log"):
        text = path.read_text(errors="replace")
        assert secret not in text and "12000 euros" not in text, path


def test_errors_have_their_exit_codes(standalone: tuple[ApplianceStack, dict[str, str]], folder: Path) -> None:
    env = standalone[1]
    missing = ccb("index", "no-such-folder", "--user", "me", cwd=folder, env=env)
    assert missing.returncode == EXIT_USAGE and "does not exist" in missing.stderr
    empty_user = ccb("search", "x", "--user", "", "--json", cwd=folder, env=env)
    assert empty_user.returncode == EXIT_REFUSED and "userId" in empty_user.stderr, empty_user.stderr
    wrong_secret = ccb("status", "--json", cwd=folder, env={**env, "APP_SECRET": "not-the-secret"})
    assert wrong_secret.returncode == EXIT_REFUSED and "APP_SECRET" in wrong_secret.stderr
    down = ccb("status", "--json", cwd=folder, env={**env, "APP_PORT": str(free_port())})
    assert down.returncode == EXIT_UNREACHABLE and json_of(down)["exit"] == EXIT_UNREACHABLE
    assert "make run" in down.stderr
    assert ccb("logs", "no-such-program", cwd=folder, env=env).returncode == EXIT_FAILED

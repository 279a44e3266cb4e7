"""`ccb`: drive a running appliance from its own machine: index a folder, ask, search, watch, delete, read logs.

Every command signs its requests as AppAPI does, with the appliance's own environment and storage (APP_SECRET or the
secret `make run` generated, APP_HOST/APP_PORT or the address the last start recorded).

\b
Exit codes (stable; with --json the last line on stdout is a JSON document, also for errors):
  0  done
  1  done, but something failed (a file, folder or chunk not indexed, a doctor check failed, no such log)
  2  wrong usage (unknown option, missing or unreadable path)
  3  the app does not answer (not started, wrong APP_HOST/APP_PORT)
  4  the app refused the request (bad user or question, disabled, wrong secret): the message says why
  5  the app failed or cannot serve yet (HTTP 5xx, e.g. 503 while disabled or opening): see `ccb logs app`
  6  `ccb index`: nothing failed, but --timeout passed with chunks still queued (the summary says how many and why)
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from appliance.app_client import AppClient, AppRequestError, AppTarget, AppUnreachableError
from appliance.ccb_index import run_index
from appliance.ccb_status import render_status, stale_note
from appliance.doctor import Check, run_doctor
from appliance.errors import ApplianceError
from appliance.local_sources import display_name, local_source_id, walk
from appliance.log_lines import follow, log_files, tail
from appliance.storage import StorageLayout

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REFUSED, EXIT_APP_ERROR, EXIT_TIMED_OUT = 0, 1, 2, 3, 4, 5, 6
P = ParamSpec("P")
R = TypeVar("R")
json_option = click.option("--json", "as_json", is_flag=True, help="print one JSON document (for scripts)")
user_option = click.option("--user", "-u", required=True, help="the user whose documents are meant")


def _fail(message: str, code: int, as_json: bool) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    if as_json:
        click.echo(json.dumps({"error": message, "exit": code}))
    sys.exit(code)


def _exit_code(exc: AppRequestError) -> int:
    return EXIT_APP_ERROR if exc.status >= 500 else EXIT_REFUSED


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """The only place errors become exit codes and messages."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        as_json = bool(kwargs.get("as_json"))
        try:
            return command(*args, **kwargs)
        except AppUnreachableError as exc:
            _fail(str(exc), EXIT_UNREACHABLE, as_json)
        except AppRequestError as exc:
            hint = {401: "APP_SECRET differs from the running appliance's; run ccb with its environment"}.get(
                exc.status
            )
            _fail(f"{exc}" + (f" ({hint})" if hint else ""), _exit_code(exc), as_json)
        except ApplianceError as exc:
            _fail(str(exc), EXIT_FAILED, as_json)

    return run


def _client() -> AppClient:
    return AppClient(AppTarget.from_env())


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 118})
def cli() -> None:
    """Drive a running Context Chat Backend appliance."""


cli.help = __doc__


def main() -> None:
    """The `ccb` console script ([project.scripts] in pyproject.toml)."""
    cli(prog_name="ccb")


def _unread_folders(errors: Sequence[OSError]) -> list[tuple[str, str]]:
    """(folder, reason) of each folder `walk` could not list."""
    return [(display_name(exc.filename), exc.strerror or str(exc)) for exc in errors]


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, readable=True, path_type=Path))
@user_option
@click.option("--share", default="", help="more users who may read the files, comma-separated")
@click.option("--wait/--no-wait", default=True, help="follow the chunks through embedding (default) or stop at upload")
@click.option("--timeout", type=float, default=3600, show_default=True, help="longest wait for embedding, seconds")
@json_option
@handles_errors
def index(paths: Sequence[Path], user: str, share: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Index files and folders for USER as the PHP app does (25 files per request), with progress through embedding."""
    users = list(dict.fromkeys(name.strip() for name in [user, *share.split(",")] if name.strip()))
    if not users:
        raise click.BadParameter("give a non-empty user id", param_hint="--user")
    folder_errors: list[OSError] = []
    files = list(walk(paths, folder_errors.append))
    console = Console(stderr=True, quiet=as_json)
    with _client() as app:
        report = run_index(app, files, users, console, wait_s=timeout if wait else 0)
    report.unread_folders = _unread_folders(folder_errors)
    if as_json:
        _emit(report.to_json())
    else:
        unread = f"; folders not read: {len(report.unread_folders)}" if report.unread_folders else ""
        click.echo(
            f"indexed {len(report.indexed)} of {len(files)} files for {', '.join(users)} in {report.seconds:.1f} s;"
            f" chunks: {report.chunks_embedded} embedded, {report.chunks_failed} failed,"
            f" {report.chunks_queued} still queued{unread}"
        )
        if waiting := report.waiting_reason():
            click.echo(waiting)
        if report.unread_folders:
            click.echo(f"folders not read ({len(report.unread_folders)}): their files are not indexed")
            for path, reason in report.unread_folders:
                click.echo(f"  {path}: {reason}")
        if report.skipped:
            click.echo(f"skipped ({len(report.skipped)}): no loader reads their type")
            for file in report.skipped:
                click.echo(f"  {file.title}: {file.skipped}")
        if report.failed:
            click.echo(f"not indexed ({len(report.failed)}):")
            for file, reason in report.failed:
                click.echo(f"  {file.title}: {reason}")
    if report.failed or report.chunks_failed or report.unread_folders:
        sys.exit(EXIT_FAILED)
    if report.timed_out:
        sys.exit(EXIT_TIMED_OUT)


def _scope(values: Sequence[str]) -> dict[str, Any]:
    """--scope values as the API's scopeType/scopeList: source ids, provider ids, or local paths (their files)."""
    if not values:
        return {}
    kinds: dict[str, list[str]] = {"source": [], "provider": []}
    for value in values:
        if ": " in value:
            kinds["source"].append(value)
        elif "__" in value and not Path(value).exists():
            kinds["provider"].append(value)
        elif Path(value).exists():
            kinds["source"] += [file.source_id for file in walk([Path(value)])]
        else:
            raise click.BadParameter(f"{value!r} is no source id, provider id or existing path", param_hint="--scope")
    used = [kind for kind, ids in kinds.items() if ids]
    if len(used) != 1:
        raise click.BadParameter("give either sources (ids or paths) or providers, not both", param_hint="--scope")
    return {"scopeType": used[0], "scopeList": kinds[used[0]]}


scope_option = click.option(
    "--scope", multiple=True, help="only these: a source id, a provider id (ccb__files) or a local path; repeatable"
)


@cli.command()
@click.argument("question")
@user_option
@scope_option
@json_option
@handles_errors
def ask(question: str, user: str, scope: Sequence[str], as_json: bool) -> None:
    """Answer QUESTION from USER's documents; then the sources with their titles."""
    extra = _scope(scope)
    with _client() as app:
        answer = app.query(user, question, **extra)
        titles = {hit["source_id"]: hit["title"] for hit in app.doc_search(user, question, **extra)}
    sources = [{"source_id": sid, "title": titles.get(sid, "")} for sid in answer["sources"]]
    if as_json:
        _emit({"output": answer["output"], "sources": sources})
        return
    click.echo(answer["output"])
    click.echo("\nSources:")
    for number, source in enumerate(sources, 1):
        click.echo(f"  {number}. {source['title'] or source['source_id']} ({source['source_id']})")


@cli.command()
@click.argument("query")
@user_option
@scope_option
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@json_option
@handles_errors
def search(query: str, user: str, scope: Sequence[str], limit: int, as_json: bool) -> None:
    """The documents of USER that best match QUERY, best first, each with its best passage."""
    with _client() as app:
        hits = app.doc_search(user, query, ctxLimit=limit, withPassages=True, **_scope(scope))
    if as_json:
        _emit(hits)
        return
    for number, hit in enumerate(hits, 1):
        click.echo(f"{number:3}. {hit['title'] or hit['source_id']} ({hit['source_id']})")
        click.echo(
            "".join(f"     > {line}\n" for line in hit["passage"].strip().splitlines() if line.strip()), nl=False
        )
    if not hits:
        click.echo("no documents match")


@cli.command()
@click.option("--watch", is_flag=True, help="refresh until Ctrl-C (with --json: one JSON line per refresh)")
@click.option("--interval", type=float, default=2.0, show_default=True, help="seconds between refreshes")
@json_option
@handles_errors
def status(watch: bool, interval: float, as_json: bool) -> None:
    """Documents by state, chunks embedded/queued/failed, throughput, ETA, errors, model, programs, loops."""
    try:
        _show_status(watch, interval, as_json)
    except KeyboardInterrupt:
        # Ctrl-C is how a watch ends, wherever it lands (request, redraw, pause): not click's "Aborted!" and exit 1
        return


def _show_status(watch: bool, interval: float, as_json: bool) -> None:
    with _client() as app:
        reports = _reports(app, watch, interval)
        if as_json:
            for report in reports:
                _emit(report)
                if not watch and "exit" in report:
                    sys.exit(report["exit"])
            return
        # the first report from the same generator: every later call is one of its guarded refreshes
        last, fetched_at = next(reports), time.time()
        if not watch:
            Console().print(render_status(last))
            if "exit" in last:
                _fail(last["error"], last["exit"], False)
            return
        with Live(render_status(last), auto_refresh=False) as live:
            for report in reports:
                if "error" in report and "database" not in report:
                    note = stale_note(report["error"], fetched_at, interval)
                    live.update(Group(note, render_status(last)), refresh=True)
                else:
                    last, fetched_at = report, time.time()
                    live.update(render_status(report), refresh=True)


def _status(app: AppClient) -> dict[str, Any]:
    """GET /status; while PostgreSQL is down its 503 still carries all the app knows without it (programs, embedder,
    loops, the database's outage) next to `error`: that report, with the exit code a 5xx gets."""
    try:
        report: dict[str, Any] = app.status()
    except AppRequestError as exc:
        if exc.status == 503 and isinstance(exc.body, dict) and "database" in exc.body:
            return {**exc.body, "exit": EXIT_APP_ERROR}
        raise
    return report


def _reports(app: AppClient, watch: bool, interval: float) -> Iterator[dict[str, Any]]:
    """Each refresh's report. A wrong address or secret fails the first; once the app has answered, a refresh it
    cannot answer (restarting, opening: unreachable or 5xx) gives `{"error", "exit"}` and the watch goes on."""
    yield _status(app)
    while watch:
        time.sleep(interval)
        try:
            yield _status(app)
        except AppUnreachableError as exc:
            yield {"error": str(exc), "exit": EXIT_UNREACHABLE}
        except AppRequestError as exc:
            if exc.status < 500:
                raise
            yield {"error": str(exc), "exit": EXIT_APP_ERROR}


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--source", "sources", multiple=True, help="a source id (repeatable)")
@click.option("--provider", help="every document of this provider, e.g. ccb__files")
@click.option("--user", help="the user: their access goes, and documents nobody else may read")
@json_option
@handles_errors
def delete(
    paths: Sequence[Path], sources: Sequence[str], provider: str | None, user: str | None, as_json: bool
) -> None:
    """Delete the documents of PATHS (files or folders indexed with `ccb index`), of --source ids, of a --provider,
    or everything of a --user."""
    ids = [*sources]
    folder_errors: list[OSError] = []
    for path in paths:
        if path.is_dir():
            ids += [file.source_id for file in walk([path], folder_errors.append)]
        else:
            ids.append(local_source_id(path))
    if folder_errors:
        # deleting the rest would leave the unlisted folder's documents indexed without a word
        unread = "; ".join(f"{path}: {reason}" for path, reason in _unread_folders(folder_errors))
        _fail(
            f"cannot list {unread}; nothing was deleted: make it readable, or give its files' --source ids",
            EXIT_USAGE,
            as_json,
        )
    given = [kind for kind, value in (("sources", ids), ("provider", provider), ("user", user)) if value]
    if len(given) != 1:
        raise click.UsageError("give PATHS / --source, or --provider, or --user (one of them)")
    with _client() as app:
        if ids:
            answer = app.call("POST", "/deleteSources", json={"sourceIds": ids})
        elif provider:
            answer = app.call("POST", "/deleteProvider", json={"providerKey": provider})
        else:
            answer = app.call("POST", "/deleteUser", json={"userId": user})
    result = {"deleted": given[0], "count": len(ids) if ids else None, "message": answer.get("message", answer)}
    if as_json:
        _emit(result)
    else:
        click.echo(f"{result['message']} ({given[0]}{f': {len(ids)}' if ids else ''})")


@cli.command()
@click.argument("program", required=False)
@click.option("--follow", "-f", "follow_new", is_flag=True, help="keep printing new lines until Ctrl-C")
@click.option("--lines", "-n", type=click.IntRange(0), default=50, show_default=True, help="last lines of each file")
def logs(program: str | None, follow_new: bool, lines: int) -> None:
    """Read $APP_PERSISTENT_STORAGE/logs/: the last lines of PROGRAM's log (app, embedder, postgres, ...) or of all."""
    log_dir = StorageLayout.from_env().log_dir
    paths = log_files(log_dir, program)
    if not paths:
        known = ", ".join(sorted(path.stem for path in log_dir.glob("*.log"))) or "none"
        _fail(f"no log for {program or 'any program'} in {log_dir} (logs there: {known})", EXIT_FAILED, False)
    for line in tail(paths, lines):
        click.echo(line)
    if follow_new:
        try:
            follow(paths, click.echo)
        except KeyboardInterrupt:
            return


DOCTOR_COLOURS = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}


def doctor_text(check: Check) -> Text:
    """One check as `ccb doctor` prints it: the outcome in its colour, the rest as written (paths and errors may hold
    brackets that rich would take for markup)."""
    text = Text.assemble(
        (f"{check.outcome.upper():>4}", DOCTOR_COLOURS[check.outcome]), f" {check.name}: {check.detail}"
    )
    if check.fix:
        text.append(f"\n       -> {check.fix}")
    return text


@cli.command()
@json_option
@handles_errors
def doctor(as_json: bool) -> None:
    """Check what users get wrong: AVX2, disk, model files, database, embedder, app, Nextcloud, clock, HaRP's frpc."""
    checks = run_doctor()
    failed = [check.name for check in checks if check.outcome == "fail"]
    if as_json:
        _emit({"ok": not failed, "checks": [check.to_json() for check in checks]})
    else:
        console = Console()
        for check in checks:
            console.print(doctor_text(check), highlight=False)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)

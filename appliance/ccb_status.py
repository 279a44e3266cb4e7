"""`ccb status`: the app's GET /status (with supervisord's programs and the hardware) as tables."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


def _table(title: str, rows: Sequence[tuple[str, RenderableType]]) -> Table:
    table = Table(title=f"\n{title}", title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows:
        # plain text, never markup: file names and errors hold brackets ("Offer [draft].pdf", "[/b]")
        table.add_row(Text(name), Text(value) if isinstance(value, str) else value)
    return table


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def cross_lingual_line(leg: dict[str, Any] | None) -> str:
    """The cross-lingual leg in one line: off, waiting for a question that needs it, or how far its vectors are."""
    if not leg:
        return "off"
    if not leg["wanted"]:
        return f"{leg['model']}: idle until a question in another language than the documents"
    done = f"{leg['model']}: {leg['vectors']} of {leg['chunks']} chunks have its vector"
    if leg.get("refused"):
        done += f" ({leg['refused']} refused by the model)"
    if leg.get("eta_s") is None:
        return done
    return f"{done}; {_eta(leg['eta_s'])} left at {leg['chunks_per_s']} chunks/s"


def embedder_line(embedder: dict[str, Any] | None, program: str | None = None) -> RenderableType:
    """The embedding service as the worker finds it; while unavailable, since when, why, and that indexing waits; and
    when supervisord's embedder `program` (its state) has stopped or keeps exiting, where to read why."""
    if not embedder or embedder["state"] != "unavailable":
        return "available" if embedder else "-"
    since = embedder["unavailable_since"]
    lasting = _eta(max(0.0, time.time() - since))
    next_try = "" if embedder.get("next_try_in_s") is None else f", next try in {_eta(embedder['next_try_in_s'])}"
    line = (
        f"unavailable since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))} ({lasting}):"
        f" {embedder['last_error']}; indexing waits ({embedder['failed_calls']} failed calls{next_try})"
    )
    # the worker sees only a refused connection: why the program is down (a damaged model, a busy port) is in its log
    if program == "BACKOFF":
        line += "; supervisord's program embedder keeps exiting at start (BACKOFF): `ccb logs embedder` says why"
    elif program in ("FATAL", "EXITED", "STOPPED"):
        line += (
            f"; supervisord's program embedder is {program}: `ccb logs embedder` says why, then start it with"
            " `python -m appliance ctl start embedder`"
        )
    return Text(line, style="bold red")


def _embedder_program(report: dict[str, Any]) -> str | None:
    """supervisord's state of the embedder program; None without supervisord or an embedder program of ours."""
    programs = report.get("programs")
    return programs.get("embedder") if isinstance(programs, dict) else None


def database_line(database: dict[str, Any]) -> RenderableType:
    """PostgreSQL as the app finds it; while unavailable, since when, why, and what to do."""
    if database["state"] != "unavailable":
        return "available"
    since = database["unavailable_since"]
    return Text(
        f"unavailable since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
        f" ({_eta(max(0.0, time.time() - since))}): {database['last_error']}; indexing and questions wait and resume"
        " by themselves once it is back: start it (embedded: see the postgres program below and `ccb logs postgres`)"
        " or check the server EXTERNAL_DB names",
        style="bold red",
    )


def engine_line(opening: dict[str, Any] | None) -> RenderableType | None:
    """The engine while it is not open: what its opening does or failed on, since when, and that it goes on by
    itself; None once it is open."""
    if not opening or opening["state"] == "opened":
        return None
    since = opening["since"]
    return Text(
        f"not open: {opening['state']} since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
        f" ({_eta(max(0.0, time.time() - since))}): {opening['detail']}; it opens by itself once that is done (the"
        " other routes answer 503 until then); `ccb logs app` tells each step",
        style="bold red",
    )


def _indexing_rows(report: dict[str, Any]) -> list[tuple[str, RenderableType]]:
    """The Indexing table: the figures read from the database, or lines saying why there are none."""
    if report["documents"] is None:
        engine = engine_line((report.get("loops") or {}).get("engine_opening"))
        unknown = "unknown until the engine has opened" if engine else "unknown while the database is unavailable"
        return [
            *([("engine", engine)] if engine else []),
            ("database", database_line(report["database"])),
            *((name, unknown) for name in ("documents", "chunks", "queue")),
            # the embedding worker that tells starts with the engine
            ("embedding service", unknown if engine else embedder_line(report["embedder"], _embedder_program(report))),
        ]
    documents, chunks, queue = report["documents"], report["chunks"], report["queue"]
    throughput, model = report["throughput"], report.get("embedding_model") or {}
    return [
        ("documents", f"{documents['indexed']} indexed, {documents['failed']} failed"),
        ("chunks", f"{chunks['embedded']} embedded, {chunks['queued']} queued, {chunks['failed']} failed"),
        ("queue", f"{queue['depth']} chunks ({queue['tokens']} tokens), {queue['in_progress']} in progress"),
        ("throughput", f"{throughput['chunks_per_s']} chunks/s over the last {throughput['window_s']} s"),
        ("ETA", _eta(report.get("eta_s"))),
        ("embedding service", embedder_line(report.get("embedder"), _embedder_program(report))),
        ("model", f"{model.get('id', '?')} ({model.get('dimension', '?')} dimensions)"),
        ("cross-lingual", cross_lingual_line(report.get("cross_lingual"))),
    ]


def stale_note(error: str, fetched_at: float, interval_s: float) -> Text:
    """Above the last report when a refresh failed: the error, and how old the figures below it are."""
    at = time.strftime("%H:%M:%S", time.localtime(fetched_at))
    return Text(
        f"error: {error}\nthe figures below are from {at} ({_eta(max(0.0, time.time() - fetched_at))} ago), not"
        f" current; trying again every {interval_s:g} s",
        style="red",
    )


def render_status(report: dict[str, Any]) -> RenderableType:
    """The report as a few small tables: indexing, queue, loops, programs, last errors."""
    parts: list[RenderableType] = [_table("Indexing", _indexing_rows(report))]
    programs = report.get("programs")
    if isinstance(programs, dict):
        parts.append(_table("Programs", sorted(programs.items())))
    elif programs:
        parts.append(_table("Programs", [("supervisord", str(programs))]))
    hardware = report.get("hardware") or {}
    machine = [("cpu", f"{hardware.get('arch')} (AVX2: {hardware.get('avx2')})")]
    if hardware.get("cpus"):
        limit = hardware.get("cpu_limit")
        machine.append(("cpus", f"{hardware['cpus']} usable" + (f", limited by {limit}" if limit else "")))
    if hardware.get("device"):
        machine.append(("device", f"{hardware['device']}: {hardware.get('device_reason')}"))
    llm = report.get("llm") or {}
    if llm:
        machine.append(("llm", f"{llm.get('backend')} (context {llm.get('n_ctx')} tokens)"))
    parts.append(_table("Hardware", machine))
    role = report.get("role")
    # which loops run is APP_ROLE's choice
    loops = [("APP_ROLE", f"{role['name']}: {', '.join(role['duties'])}")] if role else []
    loops += [
        (name, f"{loop.get('state')}" + (f": {loop['detail']}" if loop.get("detail") else ""))
        for name, loop in sorted((report.get("loops") or {}).items())
    ]
    parts.append(_table("Loops", loops))
    pull = report.get("pull") or {}
    parts.append(_table("Nextcloud", [("pull", str(pull.get("detail") or pull.get("php_app_queues")))]))
    documents, chunks = report["documents"] or {}, report["chunks"] or {}
    errors = [(row["source_id"], row["error"]) for row in documents.get("failed_sources", [])][:10]
    errors += [(f"chunks ({count})", reason) for reason, count in chunks.get("failure_reasons", {}).items()][:5]
    if errors:
        parts.append(_table("Last errors", errors))
    return Group(*parts)

"""How tests and benchmarks run an embedded PostgreSQL server in the foreground, as `pg-run` does for supervisord."""

from __future__ import annotations

import sys

from appliance.postgres import EmbeddedPostgres


def server_command(cluster: EmbeddedPostgres) -> list[str]:
    """argv of a process that becomes `cluster`'s postgres (EmbeddedPostgres.exec_server)."""
    code = (
        "from pathlib import Path; from appliance.postgres import EmbeddedPostgres as E; "
        f"E(Path({str(cluster.pgdata)!r}), Path({str(cluster.socket_dir)!r}), {cluster.tcp_port!r}).exec_server()"
    )
    return [sys.executable, "-c", code]

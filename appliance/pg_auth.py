"""Who may connect to the embedded PostgreSQL: pg_hba.conf and pg_ident.conf, rewritten at every start.

The unix socket uses peer authentication: the kernel names the connecting OS user and pg_ident.conf says which
database roles it may use. The appliance's own user (root in the image) may use the app role and the superuser; the
server's OS user may use the superuser; anyone else (the parse workers' ccb_parser, nobody) is refused. TCP, when
configured, needs the generated password. Clusters made by older versions (`trust` on the socket) get these files at
their next start, which is why they are written at every start and not by a one-off repair step.
"""

from __future__ import annotations

from pathlib import Path

from appliance.safe_fs import replace_file

IDENT_MAP = "ccb"
SUPERUSER = "postgres"

PG_HBA = f"""\
# Written by the appliance at every start (appliance/pg_auth.py); edits here are overwritten.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 peer map={IDENT_MAP}
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
"""


def ident_map(app_os_user: str, server_os_user: str, app_role: str) -> str:
    """pg_ident.conf: the appliance's user -> app role and superuser; the server's own user -> superuser."""
    pairs = [(app_os_user, app_role), (app_os_user, SUPERUSER), (server_os_user, SUPERUSER)]
    lines = [f"{IDENT_MAP}  {os_user}  {role}\n" for os_user, role in dict.fromkeys(pairs)]
    return "# Written by the appliance at every start (appliance/pg_auth.py); edits here are overwritten.\n" + "".join(
        lines
    )


def write_auth_files(pgdata: Path, app_os_user: str, server_os_user: str, app_role: str) -> None:
    """Called as the server's OS user (the data dir is its own), never as root: see EmbeddedPostgres.exec_server."""
    replace_file(pgdata / "pg_hba.conf", PG_HBA)
    replace_file(pgdata / "pg_ident.conf", ident_map(app_os_user, server_os_user, app_role))

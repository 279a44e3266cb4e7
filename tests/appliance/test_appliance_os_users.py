"""The appliance's OS users get fixed ids, so a data dir keeps its owner when the image (and /etc/passwd) changes."""

from __future__ import annotations

import grp
import os
import pwd
import random
import subprocess
from collections.abc import Iterator

import pytest

from appliance.errors import OsUserError
from appliance.os_users import APPLIANCE_USERS, PARSER_USER, POSTGRES_USER, SystemUser, ensure_system_user

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates an OS user")


def _free_id() -> int:
    while True:
        candidate = random.randrange(40_000, 50_000)
        try:
            pwd.getpwuid(candidate)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(candidate)
        except KeyError:
            return candidate


@pytest.fixture
def throwaway() -> Iterator[SystemUser]:
    """A user that does not exist yet, deleted (with its group) afterwards."""
    user = SystemUser(f"ccbt{random.randrange(10**6)}", _free_id())
    yield user
    subprocess.run(["userdel", user.name], capture_output=True)
    subprocess.run(["groupdel", user.name], capture_output=True)


def test_a_missing_user_is_created_with_its_fixed_ids_no_home_and_no_login(throwaway: SystemUser) -> None:
    created = ensure_system_user(throwaway)
    assert (created.pw_name, created.pw_uid, created.pw_gid) == (throwaway.name, throwaway.uid, throwaway.uid)
    assert grp.getgrgid(throwaway.uid).gr_name == throwaway.name
    assert (created.pw_dir, created.pw_shell) == ("/nonexistent", "/usr/sbin/nologin")
    assert not os.path.exists(f"/home/{throwaway.name}")
    assert ensure_system_user(throwaway) == created  # a second start finds it


def test_a_fixed_id_held_by_another_name_is_refused_with_the_commands_to_run(throwaway: SystemUser) -> None:
    taken = SystemUser(throwaway.name, 0)
    with pytest.raises(OsUserError) as raised:
        ensure_system_user(taken)
    assert str(raised.value) == (
        f"uid 0 meant for the OS user '{taken.name}' belongs to 'root'; free it or create '{taken.name}' yourself "
        f"with other ids: groupadd --system --gid 0 {taken.name} && useradd --system --uid 0 --gid 0 "
        f"--no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin {taken.name}"
    )
    with pytest.raises(KeyError):
        pwd.getpwnam(taken.name)


def test_the_appliance_users_have_distinct_system_range_ids() -> None:
    assert [user.name for user in APPLIANCE_USERS] == [POSTGRES_USER.name, PARSER_USER.name]
    assert (POSTGRES_USER.name, PARSER_USER.name) == ("ccb_postgres", "ccb_parser")  # other modules use the names
    ids = [user.uid for user in APPLIANCE_USERS]
    assert len(set(ids)) == len(ids) and all(100 <= uid < 1000 for uid in ids)

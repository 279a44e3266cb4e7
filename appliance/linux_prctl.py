"""prctl(2) through libc: the few process settings the appliance's programs and parse workers make on themselves."""

from __future__ import annotations

import ctypes
import os

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38


def prctl(option: int, value: int) -> None:
    """prctl(option, value); OSError naming both when the kernel refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl({option}, {value}) failed: {os.strerror(errno)}")


def signal_at_parent_death(signum: int) -> None:
    """Get `signum` when the parent (supervisord) dies. supervisord.conf sets this with setpriv; a change of user
    clears it (prctl(2)), so a program that drops privileges sets it again afterwards."""
    parent = os.getppid()
    prctl(PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent:  # the parent died before the setting took effect
        os.kill(os.getpid(), signum)

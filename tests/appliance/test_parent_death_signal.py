"""signal_at_parent_death: a program whose parent (supervisord) is killed gets its stop signal from the kernel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
from appliance_kit import REPO, wait_for

# a parent that starts a child which arms the signal, prints the child's pid and waits for ever
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), flush=True)
child.wait()
"""
CHILD = """
import os, signal, time
from appliance.linux_prctl import signal_at_parent_death
signal_at_parent_death(signal.SIGTERM)
print(os.getpid(), flush=True)
time.sleep(120)
"""


def test_a_child_that_armed_the_signal_stops_when_its_parent_is_killed() -> None:
    with subprocess.Popen([sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE, text=True, cwd=REPO) as parent:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        time.sleep(0.2)
        assert child.is_running()
        os.kill(parent.pid, signal.SIGKILL)
    wait_for(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, 10, "the child to stop")

"""supervisord (appliance.supervisord_json) wakes from its poll at a signal: a byte in the wake-up pipe its main loop
polls, so a program's exit (SIGCHLD) or a stop (SIGTERM) is handled at once, not at the next 1 s poll timeout; what
the program's children write just after it exits still reaches its log."""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path

from appliance_kit import PYTHON, REPO
from waiting import wait_for

from appliance.supervisord_json import JsonLogServerOptions

SUPERVISORD_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR2)


def test_a_signal_writes_to_the_pipe_supervisords_loop_polls(tmp_path: Path) -> None:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[supervisord]\nnodaemon=true\nlogfile={tmp_path}/supervisord.log\n")
    options = JsonLogServerOptions()
    options.realize(["-n", "-c", str(conf)], doc="")
    handlers = {sig: signal.getsignal(sig) for sig in SUPERVISORD_SIGNALS}
    try:
        options.setsignals()
        assert options.wakeup is not None
        assert options.get_socket_map()[options.wakeup.read_fd] is options.wakeup
        os.kill(os.getpid(), signal.SIGUSR2)
        readable, _, _ = select.select([options.wakeup.read_fd], [], [], 5)
        assert readable == [options.wakeup.read_fd]
        options.wakeup.handle_read_event()
        assert select.select([options.wakeup.read_fd], [], [], 0)[0] == []  # drained
        assert options.signal_receiver.get_signal() == signal.SIGUSR2  # supervisord's own receiver still has it
    finally:
        options.close_wakeup()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert signal.set_wakeup_fd(-1) == -1  # closed: the interpreter writes nowhere


# the program exits at once; its child writes a line 0.1 s later into the same pipe (as PostgreSQL's log converter
# forwards the server's last lines just after the server exits)
EXITS_BEFORE_ITS_CHILD = """
import os, sys, time
if os.fork() == 0:
    time.sleep(0.1)
    print("the child's last line", flush=True)
    os._exit(0)
print("the program's own line", flush=True)
"""


def test_what_a_programs_child_writes_just_after_the_program_exits_is_logged(tmp_path: Path) -> None:
    writer = tmp_path / "writer.py"
    writer.write_text(EXITS_BEFORE_ITS_CHILD)
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"[supervisord]\nnodaemon=true\nlogfile={tmp_path}/supervisord.log\npidfile={tmp_path}/supervisord.pid\n\n"
        f"[program:writer]\ncommand={PYTHON} {writer}\nautorestart=false\nstartsecs=0\n"
        f"stdout_logfile={tmp_path}/writer.log\n"
    )
    command = [PYTHON, "-m", "appliance.supervisord_json", "-n", "-c", str(conf)]
    with (tmp_path / "terminal.log").open("wb") as terminal:
        supervisord = subprocess.Popen(command, stdout=terminal, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            log = tmp_path / "writer.log"
            # before: reaped at its SIGCHLD, the program's pipe read once, found empty and no longer read
            wait_for(lambda: log.is_file() and "the child's last line" in log.read_text(), 15, "the child's line")
        finally:
            supervisord.send_signal(signal.SIGTERM)
            supervisord.wait(30)
    assert "the program's own line" in log.read_text()

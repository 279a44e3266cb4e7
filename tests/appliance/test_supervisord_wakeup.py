"""supervisord (appliance.supervisord_json) wakes from its poll at a signal: a byte in the wake-up pipe its main loop
polls, so a program's exit (SIGCHLD) or a stop (SIGTERM) is handled at once, not at the next 1 s poll timeout."""

from __future__ import annotations

import os
import select
import signal
from pathlib import Path

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

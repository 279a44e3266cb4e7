"""`python -m appliance.supervisord_json -n -c supervisord.conf`: supervisord, with its own log file in JSON lines.

supervisord formats its log with a fixed '%(asctime)s %(levelname)s %(message)s' (ServerOptions.make_logger). Here
the file handler gets a format object that renders the same record as the appliance's JSON line instead; the copy on
stdout (the terminal of `make run`) keeps the readable text. Every rotating log file (its own and each program's)
rotates only between lines (LineRotatingFileHandler), and a signal wakes its main loop at once (SignalWakeup).
Everything else is supervisord's own main loop.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from supervisor import loggers, supervisord
from supervisor.options import ServerOptions
from supervisor.states import SupervisorStates

from appliance.json_logging import json_line, utc_timestamp
from appliance.run_lock import LOCK_FD_VARIABLE

PROGRAM = "supervisord"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s\n"
# supervisord's level names (loggers.LevelsByName) as the appliance's
LEVELS = {"CRIT": "critical", "ERRO": "error", "WARN": "warning", "INFO": "info"}
# past its size limit, a file waits this many bytes more for the end of a line, then rotates mid-line
UNENDED_LINE_BYTES = 1024 * 1024
# how long supervisord waits for an ended program's pipes to have output or end, at a reap and before it exits (a
# child of the program may hold a pipe open and write nothing)
SETTLE_S = 0.5


class JsonLineFormat(str):
    """A 'format string' whose % makes a JSON line: supervisord's handlers only ever do `fmt % record.asdict()`."""

    def __mod__(self, record: Any) -> str:
        fields = {
            "ts": utc_timestamp(time.time()),
            "level": LEVELS.get(record["levelname"], "debug"),
            "program": PROGRAM,
            "logger": PROGRAM,
            "msg": str(record["message"]).rstrip("\n"),
        }
        return json_line(fields) + "\n"


class LineRotatingFileHandler(loggers.RotatingFileHandler):  # type: ignore[misc]
    """supervisord's rotating file handler, rolling over only after a write that ends a line.

    supervisord writes a program's output as each pipe read returns it, and a line longer than the pipe's atomic
    write (4 KB) can come in two reads: rolling over between them would start the new file mid-line. Output
    without a newline for UNENDED_LINE_BYTES past the limit is rolled over mid-line, or it would grow forever."""

    def emit(self, record: Any) -> None:
        loggers.FileHandler.emit(self, record)
        # a program's output is bytes as read; supervisord's own records are whole lines
        ended = not isinstance(record.msg, bytes) or record.msg.endswith(b"\n")
        if ended or self.stream.tell() >= self.maxBytes + UNENDED_LINE_BYTES:
            self.doRollover()


class SignalWakeup:
    """A pipe the interpreter writes a byte to at every signal (signal.set_wakeup_fd), polled with supervisord's
    sockets: its loop handles a SIGCHLD or SIGTERM at once instead of after its 1 s poll timeout, which cost up to a
    second at each step of a stop (app, embedder, PostgreSQL) inside Docker's 10 s."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        for fd in (self.read_fd, self.write_fd):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def handle_read_event(self) -> None:
        # the bytes only wake the loop; supervisord's own receiver has recorded the signals
        while True:
            try:
                if not os.read(self.read_fd, 512):
                    return
            except OSError:  # drained (EAGAIN)
                return

    def handle_error(self) -> None:
        """Part of supervisord's dispatcher interface; handle_read_event raises nothing."""

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        os.close(self.read_fd)
        os.close(self.write_fd)


class DrainingSupervisor(supervisord.Supervisor):  # type: ignore[misc]
    """supervisord, not losing the last output of a program that ends. Woken at a SIGCHLD (SignalWakeup), it reaps a
    program the moment it exits and reads its pipe once, taking "nothing yet" for the pipe's end; PostgreSQL's converter
    (appliance/postgres_log.py) writes the server's last lines ("database system is shut down") just after the
    server exits, and they were lost in 5 of 9 stops under load. Before a reap it now waits up to SETTLE_S for the
    exited program's pipes to have output or to end, and before it exits it reads them to their end."""

    def ordered_stop_groups_phase_1(self) -> None:
        # a group with nothing to stop (frpc without HaRP) is passed now: no exit would wake the loop for it
        while self.stop_groups and not self.stop_groups[-1].get_unstopped_processes():
            self.stop_groups.pop()
        super().ordered_stop_groups_phase_1()

    def reap(self, once: bool = False, recursionguard: int = 0) -> None:
        self._await_exited_output()
        super().reap(once, recursionguard)

    def _await_exited_output(self) -> None:
        try:  # the exited child, left to reap (WNOWAIT)
            exited = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        process = self.options.pidhistory.get(exited.si_pid) if exited is not None else None
        if process is not None:
            outputs = [fd for fd, dispatcher in process.dispatchers.items() if dispatcher.readable()]
            if outputs:
                select.select(outputs, [], [], SETTLE_S)

    def shutdown_report(self) -> list[Any]:
        unstopped: list[Any] = super().shutdown_report()
        if not unstopped:  # supervisord exits after this
            self._drain_outputs(time.monotonic() + SETTLE_S)
        return unstopped

    def _drain_outputs(self, deadline: float) -> None:
        while True:
            # an output dispatcher reads what is there, and closes at the end of its pipe (no writer left)
            open_outputs = {fd: d for fd, d in self.get_process_map().items() if d.readable()}
            remaining = deadline - time.monotonic()
            if not open_outputs or remaining <= 0:
                return
            ready, _, _ = select.select(list(open_outputs), [], [], remaining)
            for fd in ready:
                open_outputs[fd].handle_read_event()


class JsonLogServerOptions(ServerOptions):  # type: ignore[misc]
    """supervisord's options with the log file in JSON lines (same rotation settings: logfile_maxbytes, _backups)
    and its signals waking its main loop."""

    wakeup: SignalWakeup | None = None

    def setsignals(self) -> None:
        super().setsignals()
        self.wakeup = SignalWakeup()
        # the main loop polls every dispatcher of this map; supervisord's own are its HTTP (socket) servers
        self.get_socket_map()[self.wakeup.read_fd] = self.wakeup
        signal.set_wakeup_fd(self.wakeup.write_fd, warn_on_full_buffer=False)

    def close_wakeup(self) -> None:
        if self.wakeup is not None:
            self.get_socket_map().pop(self.wakeup.read_fd, None)
            self.wakeup.close()
            self.wakeup = None

    def cleanup_fds(self) -> None:
        """As supervisord's before a reload (close what leaked), but not the run lock's descriptor: closing it ended
        the lock, and a second appliance could start on this storage under the running one (appliance/run_lock.py)."""
        kept = os.environ.get(LOCK_FD_VARIABLE, "")
        if not kept.isdigit():
            super().cleanup_fds()
            return
        os.closerange(5, int(kept))
        os.closerange(max(5, int(kept) + 1), self.minfds)

    def make_logger(self) -> None:
        # as ServerOptions.make_logger, with another format for the file
        self.logger = loggers.getLogger(self.loglevel)
        if self.nodaemon and not self.silent:
            loggers.handle_stdout(self.logger, TEXT_FORMAT)
        loggers.handle_file(
            self.logger,
            self.logfile,
            JsonLineFormat(),
            rotating=bool(self.logfile_maxbytes),
            maxbytes=self.logfile_maxbytes,
            backups=self.logfile_backups,
        )
        for msg in self.parse_criticals:
            self.logger.critical(msg)
        for msg in self.parse_warnings:
            self.logger.warn(msg)
        for msg in self.parse_infos:
            self.logger.info(msg)


def main(args: Sequence[str] | None = None) -> None:
    """supervisord.main with our options class: runs until shutdown, again after a SIGHUP restart."""
    # loggers.handle_file makes every rotating handler, the programs' (POutputDispatcher) and supervisord's own
    loggers.RotatingFileHandler = LineRotatingFileHandler
    first = True
    while True:
        options = JsonLogServerOptions()
        options.realize(list(sys.argv[1:] if args is None else args), doc=supervisord.__doc__)
        options.first = first
        options.test = False
        with contextlib.suppress(supervisord.asyncore.ExitNow):  # how its main loop ends (supervisord.go)
            DrainingSupervisor(options).main()
        options.close_httpservers()
        options.close_wakeup()
        options.close_logger()
        first = False
        if options.mood < SupervisorStates.RESTARTING:
            break


if __name__ == "__main__":
    main()

"""
Processes the harness starts, and how it waits for them: every process in
its own session and stopped whatever happens (also on Ctrl-C, SIGTERM, or
the harness's own death), every wait bounded.
"""

from __future__ import annotations

import ctypes
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from types import FrameType
from typing import IO


def say(text: str = "") -> None:
    """
    Print a line at once (a run takes minutes; show progress as it goes).
    """
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """
    Progress and diagnostics go to stderr, so that stdout is the report.
    """
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class Interrupted(BaseException):
    """
    SIGTERM or SIGHUP: unwind like Ctrl-C, so that every process is stopped.
    """


def _onSignal(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def unwindOnSignals() -> None:
    """
    Make Ctrl-C (even where the shell started us with SIGINT ignored),
    SIGTERM and SIGHUP unwind through the code that stops the processes:
    SIGINT raises C{KeyboardInterrupt}, the others L{Interrupted}.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _onSignal)
    signal.signal(signal.SIGHUP, _onSignal)


def raiseDescriptorLimit() -> int:
    """
    Raise the soft C{RLIMIT_NOFILE} to the hard limit, for this process and
    every child it starts: room for a descriptor per held connection.

    @return: the soft limit now.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# --- starting and stopping ---------------------------------------------------

_started: list[subprocess.Popen[bytes]] = []


def _dieWithParent() -> None:
    """
    In the child, before exec: start a new session (so the whole group can
    be stopped at once) and ask the kernel for SIGTERM if the harness dies,
    so that not even a SIGKILLed harness leaves a server behind.
    """
    os.setsid()
    with suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)



def spawn(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: int | IO[bytes] | None = subprocess.DEVNULL,
    stdout: int | IO[bytes] | None = None,
    stderr: int | IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """
    Start a process in its own session and remember it, so that L{stopAll}
    can stop it whatever happens.
    """
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=env,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        preexec_fn=_dieWithParent,
    )
    _started.append(process)
    return process


def stop(process: subprocess.Popen[bytes], grace: float = 8.0) -> int | None:
    """
    Stop a process and its group: SIGTERM to the process itself (a
    supervisor such as nginx's master or tlsreply's parent stops its own
    workers), then SIGKILL to whatever is left of the group after C{grace}
    seconds.

    @return: its exit status, or L{None} if it did not exit within
        C{grace} seconds of SIGTERM and had to be killed.
    """
    killed = False
    if process.poll() is None:
        with suppress(ProcessLookupError, PermissionError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            killed = True
    # Whatever is left of the group (workers, children) goes too.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        status: int | None = process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        status = None
    if process in _started:
        _started.remove(process)
    return None if killed else status


def stopAll() -> None:
    """
    Stop every process this harness started and has not stopped yet.
    """
    for process in list(_started):
        stop(process, grace=3.0)


# --- bounded waits -----------------------------------------------------------


def waitUntil(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """
    Poll C{predicate} until it holds or C{timeout} seconds pass (for what
    has no event to wait on, such as another process's C{/proc}).
    """
    end = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(step)


class DeadlineExceeded(Exception):
    """
    A run's deadline has passed.
    """


class Deadline:
    """
    The time a whole run must end by.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self) -> None:
        """
        @raise DeadlineExceeded: if the deadline has passed.
        """
        if self.remaining() <= 0:
            raise DeadlineExceeded(f"deadline of {self.seconds:g}s reached")


class LineReader:
    """
    Lines from a child's stdout, each read with a deadline: a load
    generator that stops talking cannot hang the harness.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.fd = stream.fileno()
        self.buffer = b""
        self.eof = False

    def readline(self, timeout: float) -> str | None:
        """
        The next line without its newline, or None at EOF or timeout.
        """
        end = time.monotonic() + timeout
        while b"\n" not in self.buffer and not self.eof:
            left = end - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self.fd, 65536)
                if chunk:
                    self.buffer += chunk
                else:
                    self.eof = True
        if b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            return line.decode(errors="replace")
        return None


class WatchedProcess:
    """
    A process started with L{spawn} whose output (standard output and error
    together) a thread reads line by line, so that the harness can wait,
    with a bound, for what it says, and look at every line as it comes
    (L{lineReceived}).

    @ivar lines: every line so far, without its newline.
    @ivar lock: held while a line is taken in; hold it to read what
        L{lineReceived} keeps.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.command = list(command)
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        self.process = spawn(
            self.command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.pid = self.process.pid
        self._reader = threading.Thread(target=self._read, name="process-output", daemon=True)
        self._reader.start()

    def lineReceived(self, line: str) -> None:
        """
        Called for each line, with L{lock} held, after it is added to
        L{lines}; what a subclass watches for goes here.
        """

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._changed:
                self.lines.append(line)
                self.lineReceived(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def waitFor(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """
        Wait, at most C{timeout} seconds, until C{predicate} (called with
        L{lock} held) is true; a new line or the process's exit wakes the
        wait.
        """
        end = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    return predicate()
                self._changed.wait(min(left, 0.5))
            return True

    def stop(self, grace: float) -> int | None:
        """
        L{stop} the process and its group, and take in its last lines.

        @return: its exit status, or L{None} if it had to be killed.
        """
        status = stop(self.process, grace)
        self._reader.join(10)
        return status

"""
The server a soak runs: C{twistd -n tlsreply} on 127.0.0.1, its log read
line by line as it comes (the port it listens on, one line per connection,
error lines).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from bench.harness.processes import WatchedProcess
from bench.harness.procfs import processDescriptors, processMemory
from bench.harness.settings import LOOPBACK

LISTENING = re.compile(r"listening on \['127\.0\.0\.1:(\d+)'\]")
CONNECTION_LINE = re.compile(r"\] (replied to|handshake failed with) ")
ERROR_LINE = re.compile(
    r"Traceback \(most recent call last\)|Unhandled Error|#critical\]|#error\]"
)


class SoakServer(WatchedProcess):
    """
    C{twistd -n tlsreply} in a subprocess, its output read by a thread.

    @ivar connectionLines: how many connections it has logged.
    @ivar outcomes: those lines by outcome (C{replied to}, C{handshake
        failed with}).
    @ivar errorLines: lines of errors and tracebacks.
    """

    def __init__(self, twistd: str, workDirectory: Path, arguments: list[str]) -> None:
        self.port: int | None = None
        self.connectionLines = 0
        self.outcomes: Counter[str] = Counter()
        self.errorLines: list[str] = []
        super().__init__(
            [
                twistd, "-n", "--pidfile=", "tlsreply",
                "--port", f"tcp:0:interface={LOOPBACK}", *arguments,
            ],
            cwd=workDirectory,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )

    def lineReceived(self, line: str) -> None:
        if self.port is None and (match := LISTENING.search(line)):
            self.port = int(match.group(1))
        if match := CONNECTION_LINE.search(line):
            self.connectionLines += 1
            self.outcomes[match.group(1)] += 1
        if ERROR_LINE.search(line):
            self.errorLines.append(line)

    def waitForPort(self, timeout: float) -> int | None:
        self.waitFor(lambda: self.port is not None, timeout)
        return self.port

    def descriptors(self) -> int:
        return processDescriptors(self.pid)

    def memory(self) -> dict[str, int]:
        """
        VmRSS and VmHWM (peak) in KiB.
        """
        return processMemory(self.pid)

    def reasons(self) -> Counter[str]:
        """
        Why connections ended, from the log lines, without addresses.
        """
        reasons: Counter[str] = Counter()
        with self.lock:
            for line in self.lines:
                if match := re.search(r"handshake failed with \S+: (.*)$", line):
                    reasons["handshake failed: " + match.group(1)] += 1
                elif match := re.search(r"replied to \S+: .*; (.*)$", line):
                    reasons["replied; " + match.group(1)] += 1
        return reasons

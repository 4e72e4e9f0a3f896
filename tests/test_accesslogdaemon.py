"""
C{--access-log} as operators use it, on a real C{twistd tlsreply} with real
clients: a file that logrotate renames and SIGHUP reopens, the server log
(C{log}), standard output, and C{auto}, which picks between them by where
twistd writes its own log (also for a daemon, without C{-n}).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    LOOPBACK,
    TestCertificates,
    clientContext,
    makeCertificates,
    temporaryDirectory,
)
from tests.test_plugin import SCRIPTS, Daemon
from tests.test_workers import hasExited

#: A connection line, as tlsreply writes it wherever it goes; the peer's
#: port says which client it is about.
_REPLIED = r"\[tlsreply\.access#info\] replied to 127\.0\.0\.1:(\d+): TLSv1\.3 "


def waitForLines(path: Path, pattern: str, count: int, timeout: float = 20.0) -> list[str]:
    """
    Wait until the file at C{path} holds C{count} lines that match
    C{pattern}; return them. Fail after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        found = [line for line in text.splitlines() if re.search(pattern, line)]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} lines like {pattern!r} in {path}, not {count}:\n{text}")
        time.sleep(0.05)


class AccessLogDaemonTests(SynchronousTestCase):
    """
    C{twistd -n tlsreply --access-log WHERE}, and C{twistd tlsreply} as a
    daemon.
    """

    def setUp(self) -> None:
        self.directory = temporaryDirectory(self)
        self.certificates: TestCertificates = makeCertificates(self.directory / "certs")

    def start(self, *arguments: str, twistd: tuple[str, ...] = ()) -> tuple[Daemon, int]:
        """
        Run C{twistd -n [twistd options] tlsreply [arguments]} on an
        ephemeral port of 127.0.0.1.
        """
        daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", *twistd, "tlsreply",
             "--port", f"tcp:0:interface={LOOPBACK}",
             "--cert", str(self.certificates.certificatePath),
             "--key", str(self.certificates.keyPath), *arguments],
            self.directory,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        if "--logfile" in " ".join(twistd):
            logfile = self.directory / twistd[0].split("=", 1)[1]
            [line] = waitForLines(logfile, r"listening on \['127\.0\.0\.1:\d+'\]", 1)
        else:
            line = daemon.waitFor(r"listening on \['127\.0\.0\.1:\d+'\]").string
        match = re.search(r"listening on \['127\.0\.0\.1:(\d+)'\]", line)
        assert match is not None
        return daemon, int(match.group(1))

    def connect(self, port: int) -> int:
        """
        Fetch the reply once; return the client's own port, which the
        connection's line names.
        """
        context = clientContext(str(self.certificates.caPath))
        with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
            own = raw.getsockname()[1]
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                data = b""
                while chunk := tls.recv(1024):
                    data += chunk
        self.assertEqual(data, b"test\n")
        return int(own)

    def linesFor(self, text: str, clientPort: int) -> list[str]:
        """
        The connection lines in C{text} about the client on C{clientPort}.
        """
        return [
            line for line in text.splitlines()
            if (m := re.search(_REPLIED, line)) and int(m.group(1)) == clientPort
        ]

    def test_fileIsReopenedOnSIGHUP(self) -> None:
        """
        With C{--access-log FILE} each connection's line goes to the file,
        not to the server log. logrotate renames the file and sends SIGHUP:
        the lines from then on go to a new file at the same path, and the
        renamed one keeps what was written before.
        """
        path = self.directory / "access.log"
        daemon, port = self.start("--access-log", str(path))
        before = self.connect(port)
        [line] = waitForLines(path, _REPLIED, 1)
        self.assertEqual(self.linesFor(line, before), [line])

        rotated = path.with_name("access.log.1")
        path.rename(rotated)
        daemon.process.send_signal(signal.SIGHUP)
        daemon.waitFor("reloaded")
        after = self.connect(port)
        [line] = waitForLines(path, _REPLIED, 1)
        self.assertEqual(self.linesFor(line, after), [line])
        self.assertEqual(daemon.stop(), 0)

        self.assertEqual(len(self.linesFor(rotated.read_text(), before)), 1)
        self.assertEqual(self.linesFor(rotated.read_text(), after), [])
        self.assertEqual(self.linesFor(path.read_text(), before), [])
        serverLog = "".join(daemon.output)
        self.assertEqual(self.linesFor(serverLog, before) + self.linesFor(serverLog, after), [])

    def test_whereEachDestinationWrites(self) -> None:
        """
        With twistd's log in a file (C{--logfile}), C{log} and C{auto} put
        the connection lines in that file, among the server's other lines,
        and C{stdout} on standard output; C{off} writes none anywhere.
        """
        expected = {"log": "logfile", "auto": "logfile", "stdout": "stdout", "off": None}
        for where, place in expected.items():
            logfile = self.directory / f"server-{where}.log"
            daemon, port = self.start(
                "--access-log", where, twistd=(f"--logfile={logfile.name}",)
            )
            client = self.connect(port)
            if place == "logfile":
                waitForLines(logfile, _REPLIED, 1)
            elif place == "stdout":
                daemon.waitFor(_REPLIED)
            self.assertEqual(daemon.stop(), 0)
            found = {
                "logfile": len(self.linesFor(logfile.read_text(), client)),
                "stdout": len(self.linesFor("".join(daemon.output), client)),
            }
            self.assertEqual(
                found,
                {"logfile": int(place == "logfile"), "stdout": int(place == "stdout")},
                where,
            )
            # The server's own lines are in the log file whatever --access-log says.
            self.assertIn("tlsreply listening on", logfile.read_text())

    def test_autoInTheForeground(self) -> None:
        """
        Under C{twistd -n} with its log on standard output, C{auto} (the
        default) writes each connection's line there too, after the server's
        own lines, in their layout.
        """
        daemon, port = self.start()
        client = self.connect(port)
        line = daemon.waitFor(_REPLIED).string
        self.assertEqual(self.linesFor(line, client), [line.rstrip("\n")])
        self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \[tlsreply\.access#info\] ")
        self.assertEqual(daemon.stop(), 0)

    def test_autoForADaemon(self) -> None:
        """
        C{twistd tlsreply} without C{-n} detaches, and its standard output
        goes nowhere: C{auto} then writes the connection lines to twistd's
        log file, where the operator finds the rest of the log.
        """
        logfile = self.directory / "twistd.log"
        pidfile = self.directory / "twistd.pid"
        daemon = Daemon(
            [str(SCRIPTS / "twistd"), f"--pidfile={pidfile}", f"--logfile={logfile}",
             "tlsreply", "--port", f"tcp:0:interface={LOOPBACK}",
             "--cert", str(self.certificates.certificatePath),
             "--key", str(self.certificates.keyPath)],
            self.directory,
        )
        # The launching process exits once the daemon has forked.
        self.assertEqual(daemon.process.wait(timeout=30), 0)
        [listening] = waitForLines(logfile, r"listening on \['127\.0\.0\.1:\d+'\]", 1)
        pid = int(pidfile.read_text())

        def killDaemon() -> None:
            if not hasExited(pid):
                os.kill(pid, signal.SIGKILL)

        self.addCleanup(killDaemon)
        match = re.search(r"127\.0\.0\.1:(\d+)", listening)
        assert match is not None
        client = self.connect(int(match.group(1)))
        [line] = waitForLines(logfile, _REPLIED, 1)
        self.assertEqual(len(self.linesFor(line, client)), 1)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while not hasExited(pid):
            self.assertLess(time.monotonic(), deadline, "the daemon did not stop")
            time.sleep(0.05)
        self.assertIn("tlsreply stopped", logfile.read_text())

"""
C{--log-format json}: one JSON object per line, for log shippers.
"""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import time
from pathlib import Path

from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    LOOPBACK,
    README,
    clientContext,
    fetchWithSSL,
    makeCertificates,
    temporaryDirectory,
)
from tests.test_accesslog import HANDSHAKES
from tests.test_plugin import SCRIPTS, Daemon, runToExit
from tlsreply.logs._jsonlines import JSONLinesObserver, eventAsJSONLine, timestamp
from tlsreply.logs.access import (
    FAILED_FORMAT,
    REPLIED_FORMAT,
    AccessLog,
    connectionFields,
    jsonConnectionLine,
)

WHEN = 1796021826.8594


def accessEvent(peer: str, closed: str, handshake: object) -> dict[str, object]:
    """
    The structured event a connection is logged as with C{--access-log
    log} (see L{tlsreply.protocol.ReplyFactory.report}).
    """
    return {
        "log_format": FAILED_FORMAT if handshake is None else REPLIED_FORMAT,
        "log_namespace": "tlsreply.access",
        "log_level": LogLevel.info,
        "log_time": WHEN,
        **connectionFields(peer, closed, handshake),  # type: ignore[arg-type]
    }


class LineTests(SynchronousTestCase):
    """
    The lines themselves.
    """

    def test_timestamp(self) -> None:
        self.assertEqual(timestamp(WHEN), "2026-11-30T06:57:06.859Z")
        self.assertEqual(timestamp(0), "1970-01-01T00:00:00.000Z")

    def test_connectionLineIsTheEventsLine(self) -> None:
        """
        A connection's line written directly (the buffered access log) is
        the line the observer writes for its structured event, served or
        failed: the two ways a connection reaches a JSON log agree.
        """
        for handshake in [*HANDSHAKES, None]:
            direct = jsonConnectionLine(
                WHEN, "tlsreply.access", "127.0.0.1:5000", "peer closed the connection",
                handshake,
            )
            observed = eventAsJSONLine(
                accessEvent("127.0.0.1:5000", "peer closed the connection", handshake)
            )
            self.assertEqual(json.loads(direct), json.loads(observed))
            self.assertTrue(direct.endswith("\n"))
            self.assertEqual(direct.count("\n"), 1)

    def test_servedConnectionFields(self) -> None:
        line = json.loads(jsonConnectionLine(
            WHEN, "tlsreply.access.worker2", "[::1]:5000", "peer closed the connection",
            HANDSHAKES[0],
        ))
        self.assertEqual(line["time"], "2026-11-30T06:57:06.859Z")
        self.assertEqual(line["level"], "info")
        self.assertEqual(line["namespace"], "tlsreply.access.worker2")
        self.assertTrue(line["message"].startswith("replied to [::1]:5000: TLSv1.3 "))
        self.assertEqual(
            {k: line[k] for k in ("peer", "outcome", "tlsVersion", "group", "resumed",
                                   "serverName", "alpnProtocol", "closed")},
            {"peer": "[::1]:5000", "outcome": "replied", "tlsVersion": "TLSv1.3",
             "group": "X25519MLKEM768", "resumed": False, "serverName": "localhost",
             "alpnProtocol": None, "closed": "peer closed the connection"},
        )
        self.assertAlmostEqual(line["handshakeMilliseconds"], 3.8)

    def test_anyEvent(self) -> None:
        """
        Fields that are not JSON values are written as their text; a
        failure adds its message and traceback; text is not escaped to
        ASCII; every line parses.
        """
        failure = Failure(ZeroDivisionError("division by zero"))
        line = json.loads(eventAsJSONLine({
            "log_format": "reloaded: serving {count} certificate(s) for {names}",
            "log_namespace": "tlsreply",
            "log_level": LogLevel.warn,
            "log_time": WHEN,
            "log_failure": failure,
            "count": 2,
            "names": ("a.test", "b.test"),
            "path": object(),
            "who": "müller",
        }))
        self.assertEqual(line["message"], "reloaded: serving 2 certificate(s) for ('a.test', 'b.test')")
        self.assertEqual(line["level"], "warn")
        self.assertEqual(line["names"], ["a.test", "b.test"])
        self.assertTrue(line["path"].startswith("<object object"))
        self.assertEqual(line["who"], "müller")
        self.assertEqual(line["error"], "division by zero")
        self.assertIn("ZeroDivisionError", line["traceback"])
        self.assertNotIn("log_format", line)

    def test_observerWritesOneLinePerEvent(self) -> None:
        stream = io.StringIO()
        observer = JSONLinesObserver(stream)
        observer(accessEvent("127.0.0.1:1", "peer closed the connection", None))
        observer({"log_format": "hello", "log_level": LogLevel.info, "log_time": WHEN,
                  "log_namespace": "tlsreply"})
        lines = stream.getvalue().splitlines()
        self.assertEqual([json.loads(x)["message"] for x in lines],
                         ["handshake failed with 127.0.0.1:1: peer closed the connection",
                          "hello"])


class AccessLogJSONTests(SynchronousTestCase):
    """
    The buffered access log writes JSON lines with C{json=True}.
    """

    def test_jsonLines(self) -> None:
        stream = io.BytesIO()
        clock = Clock()
        clock.advance(WHEN)
        log = AccessLog(stream, clock, json=True)
        for handshake in [*HANDSHAKES, None]:
            log.connectionEnded("127.0.0.1:5000", "peer closed the connection", handshake)
        log.flush()
        lines = [json.loads(x) for x in stream.getvalue().decode().splitlines()]
        self.assertEqual(
            [x["outcome"] for x in lines], ["replied"] * len(HANDSHAKES) + ["handshake-failed"]
        )
        self.assertEqual({x["time"] for x in lines}, {"2026-11-30T06:57:06.859Z"})


class DaemonJSONLogTests(SynchronousTestCase):
    """
    C{--log-format json} under every program that runs tlsreply: every
    line, from start-up to the shutdown, is one JSON object.
    """

    def serveAndStop(
        self, command: list[str], logFile: str | None = None
    ) -> list[dict[str, object]]:
        """
        Start tlsreply, serve one client and one that is not TLS, reload,
        stop; return the log, parsed line by line (every line must parse).
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        daemon = Daemon(
            [*command, "--log-format", "json", "--port", f"tcp:0:interface={LOOPBACK}",
             "--cert", str(certificates.certificatePath), "--key", str(certificates.keyPath)],
            workdir,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        if logFile is None:
            match = daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\]")
        else:
            match = waitForFile(workdir / logFile, r"listening on \['127\.0\.0\.1:(\d+)'\]")
        port = int(match.group(1))
        self.assertEqual(fetchWithSSL(port, clientContext(str(certificates.caPath))).data,
                         b"test\n")
        with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
            raw.recv(100)
        daemon.process.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertEqual(daemon.stop(), 0)
        text = "".join(daemon.output) if logFile is None else (workdir / logFile).read_text()
        if logFile is not None:
            self.assertEqual("".join(daemon.output).strip(), "")
        lines = [json.loads(line) for line in text.splitlines()]
        messages = " | ".join(str(line["message"]) for line in lines)
        for expected in ("listening on", "replied to", "handshake failed with",
                         "reloaded: serving 1 certificate", "stopping gracefully"):
            self.assertIn(expected, messages)
        for line in lines:
            self.assertEqual(
                set(line) >= {"time", "level", "namespace", "message"}, True, line
            )
        [served] = [x for x in lines if x.get("outcome") == "replied"]
        self.assertEqual((served["tlsVersion"], served["serverName"]), ("TLSv1.3", "localhost"))
        [failed] = [x for x in lines if x.get("outcome") == "handshake-failed"]
        self.assertIn("http request", str(failed["reason"]))
        return lines

    def test_twistdForeground(self) -> None:
        self.serveAndStop([str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply"])

    def test_twistdLogFile(self) -> None:
        """
        With C{--logfile}, the JSON lines go to the file, as twistd's own
        log would, and nothing to standard output.
        """
        self.serveAndStop([str(SCRIPTS / "twistd"), "-n", "--pidfile=", "--logfile=server.json",
                  "tlsreply"], logFile="server.json")

    def test_twistdLogFileRotatesOnSIGUSR1(self) -> None:
        """
        SIGUSR1 rotates the JSON log file, as it rotates twistd's own
        (logrotate's way to ask), instead of ending the process.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "--logfile=server.json", "tlsreply",
             "--log-format", "json", "--port", f"tcp:0:interface={LOOPBACK}",
             "--cert", str(certificates.certificatePath), "--key", str(certificates.keyPath)],
            workdir,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        logPath = workdir / "server.json"
        port = int(waitForFile(logPath, r"listening on \['127\.0\.0\.1:(\d+)'\]").group(1))
        daemon.process.send_signal(signal.SIGUSR1)
        rotated = workdir / "server.json.1"
        deadline = time.monotonic() + 10
        while not rotated.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIsNone(daemon.process.poll())
        self.assertIn("listening on", rotated.read_text())
        fetchWithSSL(port, clientContext(str(certificates.caPath)))
        waitForFile(logPath, r'"outcome": ?"replied"')
        self.assertEqual(daemon.stop(), 0)
        for path in (rotated, logPath):
            for line in path.read_text().splitlines():
                json.loads(line)

    def test_daemonCannotLogToStandardOutput(self) -> None:
        """
        A daemon (no C{-n}) with C{--logfile -} is refused, as twistd
        refuses it for its own log, instead of logging to nowhere.
        """
        status, output = runToExit(
            [str(SCRIPTS / "twistd"), "--pidfile=", "--logfile=-", "tlsreply",
             "--log-format", "json"],
            temporaryDirectory(self),
        )
        self.assertNotEqual(status, 0)
        self.assertIn(
            "--log-format json: a daemon cannot log to standard output "
            "(twistd --logfile - needs -n)",
            "".join(output),
        )

    def test_twist(self) -> None:
        self.serveAndStop([str(SCRIPTS / "twist"), "tlsreply"])

    def test_tlsreplyServe(self) -> None:
        self.serveAndStop([str(SCRIPTS / "tlsreply"), "serve"])

    def test_workers(self) -> None:
        lines = self.serveAndStop([str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
                          "--workers", "2"])
        self.assertIn("tlsreply.access.worker", " ".join(str(x["namespace"]) for x in lines))

    def test_syslogIsRefused(self) -> None:
        status, output = runToExit(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "--syslog", "tlsreply",
             "--log-format", "json"],
            temporaryDirectory(self),
        )
        self.assertNotEqual(status, 0)
        self.assertIn("--log-format json cannot go to syslog (twistd --syslog)", "".join(output))


def waitForFile(path: Path, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    """
    Read a log file until a line matches, or fail after C{timeout}.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            match = re.search(pattern, path.read_text())
            if match:
                return match
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in {path}")


class ReadmeSampleTests(SynchronousTestCase):
    """
    The README's sample JSON line is one tlsreply writes today.
    """

    def test_sampleHasTheKeysOfALine(self) -> None:
        text = README.read_text()
        start = text.index("```json\n") + len("```json\n")
        sample = json.loads(text[start : text.index("```", start)])
        line = json.loads(jsonConnectionLine(
            WHEN, "tlsreply.access", "127.0.0.1:5000", "peer closed the connection",
            HANDSHAKES[0],
        ))
        self.assertEqual(list(sample), list(line))

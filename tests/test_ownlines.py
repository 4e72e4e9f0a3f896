"""
The server log holds only lines tlsreply chose (L{tlsreply.logs._ownlines}):
Twisted's running commentary (ports opening and closing, factories
starting and stopping, the reactor's) is left out in text and in JSON, its
legacy events are translated, and its errors are always written.
"""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import time

from twisted.internet import reactor
from twisted.internet.defer import maybeDeferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import LogEvent, LogLevel, textFileLogObserver
from twisted.python import log as legacyLog
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import (
    LOOPBACK,
    captureLogEvents,
    clientContext,
    fetchWithSSL,
    makeCertificates,
    temporaryDirectory,
)
from tests.test_plugin import SCRIPTS, Daemon
from tlsreply.logs._jsonlines import JSONLinesObserver
from tlsreply.logs._ownlines import OwnLinesObserver, isTwistedNoise


def written(events: list[LogEvent]) -> tuple[str, list[dict[str, object]]]:
    """
    What the text and the JSON server logs write of C{events}, through
    L{OwnLinesObserver}.
    """
    text, jsonLines = io.StringIO(), io.StringIO()
    observers = [
        OwnLinesObserver(textFileLogObserver(text)),
        OwnLinesObserver(JSONLinesObserver(jsonLines)),
    ]
    for event in events:
        for observer in observers:
            observer(event)
    return text.getvalue(), [json.loads(line) for line in jsonLines.getvalue().splitlines()]


class NoisyFactory(ServerFactory):
    noisy = True
    protocol = Protocol


class TwistedEventsTests(TestCase):
    """
    Events as Twisted itself logs them, through both formats.
    """

    async def test_portsAndFactoriesAreLeftOut(self) -> None:
        """
        A real TCP port opening and closing, with a noisy factory (as
        Twisted's PROXY wrapper is), logs nothing through either format.
        """
        events = captureLogEvents(self)
        port = await TCP4ServerEndpoint(reactor, 0, interface=LOOPBACK).listen(NoisyFactory())
        await maybeDeferred(port.stopListening)
        self.assertGreaterEqual(len(events), 4, events)
        self.assertTrue(all(isTwistedNoise(event) for event in events), events)
        self.assertEqual(written(events), ("", []))

    def test_runnerChatterIsLeftOut(self) -> None:
        """
        The runner's and the reactor's own lines around the run are left
        out; twistd's lines about itself stay, under C{twistd}.
        """
        events: list[LogEvent] = [
            {"log_format": "Starting reactor...", "log_level": LogLevel.info,
             "log_namespace": "twisted.application.runner._runner.Runner", "log_time": 1.0},
            {"log_format": "Main loop terminated.", "log_level": LogLevel.info,
             "log_namespace": "twisted.internet.base", "log_time": 1.0},
            {"log_format": "Server Shut Down.", "log_level": LogLevel.info,
             "log_namespace": "twisted.scripts._twistd_unix.UnixAppLogger", "log_time": 1.0},
        ]
        text, lines = written(events)
        self.assertEqual([line["message"] for line in lines], ["Server Shut Down."])
        self.assertEqual(lines[0]["namespace"], "twistd")
        self.assertIn("[twistd#info] Server Shut Down.", text)
        self.assertEqual(len(text.splitlines()), 1)

    def test_legacyMessagesAreTranslated(self) -> None:
        """
        Another legacy message is written under the namespace C{twisted},
        without C{log_legacy}, C{system: "-"} or C{isError}.
        """
        events = captureLogEvents(self)
        legacyLog.msg("a library's own message")
        text, [line] = written(events)
        self.assertEqual(
            line,
            {"time": line["time"], "level": "info", "namespace": "twisted",
             "message": "a library's own message"},
        )
        self.assertRegex(text, r"^\S+ \[twisted#info\] a library's own message\n$")

    def test_errorsAreAlwaysWritten(self) -> None:
        """
        An Unhandled Error (C{log.err}) and an error with a reason are
        written whole, traceback included, once, under C{twisted}, with
        C{error} and C{traceback} in JSON as tlsreply's own failures have
        them; an error that reads like noise is written too.
        """
        events = captureLogEvents(self)
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            legacyLog.err()
            legacyLog.err(None, "while reading the PROXY header")
        legacyLog.msg("(TCP Port 5443 Closed)", isError=True)
        self.flushLoggedErrors(ZeroDivisionError)
        text, lines = written(events)
        self.assertEqual(
            [(line["namespace"], line["level"], line["message"]) for line in lines],
            [("twisted", "critical", "Unhandled Error"),
             ("twisted", "critical", "while reading the PROXY header"),
             ("twisted", "critical", "(TCP Port 5443 Closed)")],
        )
        for line in lines[:2]:
            self.assertEqual(line["error"], "division by zero")
            self.assertIn("ZeroDivisionError", str(line["traceback"]))
            self.assertEqual(set(line) & {"system", "isError", "failure", "why"}, set())
        self.assertIn("[twisted#critical] Unhandled Error\n\tTraceback", text)
        self.assertIn("[twisted#critical] while reading the PROXY header\n\tTraceback", text)
        self.assertEqual(text.count("builtins.ZeroDivisionError: division by zero"), 2)
        self.assertIn("[twisted#critical] (TCP Port 5443 Closed)", text)

    def test_connectionContextIsKept(self) -> None:
        """
        A legacy event logged in a connection's context keeps that context
        (its C{system}), which says where it happened.
        """
        events = captureLogEvents(self)
        legacyLog.callWithContext(
            {"system": "tlsreply,7,127.0.0.1"}, legacyLog.msg, "inside a connection"
        )
        text, [line] = written(events)
        self.assertEqual(line["system"], "tlsreply,7,127.0.0.1")
        self.assertIn("[tlsreply,7,127.0.0.1] inside a connection", text)

    def test_originalEventIsUntouched(self) -> None:
        """
        Other observers (a test's, an embedder's) see Twisted's event as
        Twisted made it.
        """
        events = captureLogEvents(self)
        legacyLog.msg("shared")
        before = dict(events[0])
        written(events)
        self.assertEqual(events[0], before)


#: A line of the text log: its time, then its system in brackets.
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \[([^\]]+)\] ")


class ServerLogTests(SynchronousTestCase):
    """
    A real server, with a TLS port, a PROXY port and the metrics port,
    served, reloaded and stopped: every line it writes is one tlsreply
    chose, in both formats, under C{tlsreply serve} and C{twistd}.
    """

    def runServer(self, command: list[str], logFormat: str) -> list[str]:
        """
        Run the server through start-up, a connection, a reload and a
        stop; return its log lines (tracebacks' lines included).
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        daemon = Daemon(
            [*command, "--log-format", logFormat,
             "--port", f"tcp:0:interface={LOOPBACK}",
             "--listen", f"haproxy:tcp:0:interface={LOOPBACK}",
             "--metrics", f"tcp:0:interface={LOOPBACK}",
             "--cert", str(certificates.certificatePath), "--key", str(certificates.keyPath)],
            workdir,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        port = int(daemon.waitFor(r"listening on \[.?'127\.0\.0\.1:(\d+)'").group(1))
        self.assertEqual(
            fetchWithSSL(port, clientContext(str(certificates.caPath))).data, b"test\n"
        )
        with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
            raw.recv(100)
        daemon.waitFor("handshake failed")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.waitFor("reloaded")
        self.assertEqual(daemon.stop(), 0)
        lines = "".join(daemon.output).splitlines()
        self.assertIn("stopped", " ".join(lines))
        return lines

    def assertOwnText(self, lines: list[str], allowed: set[str]) -> None:
        for line in lines:
            match = TEXT_LINE.match(line)
            assert match is not None, f"not a log line: {line!r}"
            system = match.group(1)
            self.assertTrue(
                system.startswith("tlsreply") or system in allowed, f"{line!r}"
            )
            self.assertNotRegex(line, r" at 0x[0-9a-f]+|Port \d+ Closed|starting on \d+")

    def assertOwnJSON(self, lines: list[str], allowed: set[str]) -> None:
        for text in lines:
            line = json.loads(text)
            namespace = str(line["namespace"])
            self.assertTrue(
                namespace.startswith("tlsreply") or namespace in allowed, text
            )
            self.assertEqual(set(line) & {"system", "isError"}, set(), text)
            self.assertNotRegex(
                str(line["message"]), r" at 0x[0-9a-f]+|Port \d+ Closed|starting on \d+"
            )

    def test_serveText(self) -> None:
        self.assertOwnText(self.runServer([str(SCRIPTS / "tlsreply"), "serve"], "text"), set())

    def test_serveJSON(self) -> None:
        self.assertOwnJSON(self.runServer([str(SCRIPTS / "tlsreply"), "serve"], "json"), set())

    def test_twistdText(self) -> None:
        """
        Under twistd, twistd's own lines (its version, its reactor, its
        shutdown) are the only others, under C{twistd}; with workers too.
        """
        command = [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply", "--workers", "2"]
        lines = self.runServer(command, "text")
        self.assertOwnText(lines, {"twistd#info"})
        self.assertIn("[twistd#info] Server Shut Down.", lines[-1])

    def test_twistdJSON(self) -> None:
        command = [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply"]
        lines = self.runServer(command, "json")
        self.assertOwnJSON(lines, {"twistd"})
        self.assertEqual(json.loads(lines[-1])["message"], "Server Shut Down.")

    def test_twistdLogFile(self) -> None:
        """
        With C{--logfile}, twistd's text log file holds tlsreply's lines
        only as well.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "--logfile=server.log", "tlsreply",
             "--port", f"tcp:0:interface={LOOPBACK}",
             "--cert", str(certificates.certificatePath), "--key", str(certificates.keyPath)],
            workdir,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        logPath = workdir / "server.log"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "listening on" not in (
            logPath.read_text() if logPath.exists() else ""
        ):
            time.sleep(0.05)
        self.assertEqual(daemon.stop(), 0)
        lines = logPath.read_text().splitlines()
        self.assertIn("listening on", " ".join(lines))
        self.assertOwnText(lines, {"twistd#info"})

"""
L{tlsreply.accesslog}: the connection log written through a buffer.
"""

from __future__ import annotations

import io
import re
import time

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.support import README, captureLogEvents, temporaryDirectory
from tlsreply.accesslog import (
    FAILED_FORMAT,
    REPLIED_FORMAT,
    AccessLog,
    connectionLine,
    repliedFields,
)
from tlsreply.records import HandshakeInfo

HANDSHAKES = [
    HandshakeInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", "X25519MLKEM768", False,
                  "localhost", None, 0.0038),
    HandshakeInfo("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", None, True, None,
                  "h2", 0.00005, earlyDataOffered=True),
    HandshakeInfo("TLSv1.3", "TLS_AES_128_GCM_SHA256", "x25519", False, "a.test",
                  "http/1.1", 1.5, clientCertificate="CN=client",
                  clientVerification="unable to get local issuer certificate"),
]


class ConnectionLineTests(SynchronousTestCase):
    """
    The line written directly is the line the structured event formats.
    """

    def test_sameAsTheEventsFormat(self) -> None:
        """
        For served connections of every kind (early data offered, a client
        certificate, missing facts) and for failed handshakes, the direct
        line equals the structured event's format filled with its fields.
        """
        for handshake in HANDSHAKES:
            self.assertEqual(
                connectionLine("127.0.0.1:5000", "peer closed the connection", handshake),
                REPLIED_FORMAT.format(
                    peer="127.0.0.1:5000",
                    closed="peer closed the connection",
                    **repliedFields(handshake),
                ),
            )
        self.assertEqual(
            connectionLine("[::1]:5000", "no shared cipher", None),
            FAILED_FORMAT.format(peer="[::1]:5000", reason="no shared cipher"),
        )

    def test_readmeSamplesHaveTheRealFormat(self) -> None:
        """
        Every connection line the README shows has the fields, in the order,
        the server writes them: the samples are real lines, and stay so.
        """
        pattern = re.compile(
            re.sub(r"\\\{[^}]*\\\}", ".*?", re.escape(REPLIED_FORMAT)) + "$"
        )
        samples = [
            line.split("] ", 1)[1]
            for line in README.read_text().splitlines()
            if "[tlsreply.access" in line and "] replied to " in line
        ]
        self.assertGreater(len(samples), 3)
        for sample in samples:
            self.assertRegex(sample, pattern)


class AccessLogTests(SynchronousTestCase):
    """
    Lines are buffered, written at least once a second, and look like
    twistd's own.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_800_000_000.25)
        self.stream = io.BytesIO()
        self.log = AccessLog(self.stream, self.clock)

    def test_writtenWithinASecond(self) -> None:
        """
        Nothing is written at once; a second later every buffered line is,
        in order, and no timer is left while the buffer is empty.
        """
        self.log.connectionEnded("127.0.0.1:1", "peer closed the connection", HANDSHAKES[0])
        self.clock.advance(0.5)
        self.log.connectionEnded("127.0.0.1:2", "no shared cipher", None)
        self.assertEqual(self.stream.getvalue(), b"")
        self.clock.advance(0.5)
        lines = self.stream.getvalue().decode().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertIn("replied to 127.0.0.1:1: TLSv1.3", lines[0])
        self.assertTrue(lines[1].endswith("handshake failed with 127.0.0.1:2: no shared cipher"))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_layoutOfTwistdLines(self) -> None:
        """
        Each line starts like twistd's: local time with its offset, then
        the system in brackets.
        """
        self.log.connectionEnded("127.0.0.1:1", "reset", None)
        self.log.flush()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(1_800_000_000))
        self.assertEqual(
            self.stream.getvalue().decode(),
            f"{stamp} [tlsreply.access#info] handshake failed with 127.0.0.1:1: reset\n",
        )

    def test_fullBufferIsWrittenAtOnce(self) -> None:
        """
        Past the buffer limit the lines are written without waiting.
        """
        self.log.bufferLimit = 500
        for index in range(10):
            self.log.connectionEnded(f"127.0.0.1:{index}", "peer closed", HANDSHAKES[1])
        self.assertGreater(len(self.stream.getvalue()), 500)

    def test_writeErrorIsLoggedOnce(self) -> None:
        """
        A stream that cannot be written (a closed pipe, a full disk) costs
        the lines, one error event, and nothing else.
        """
        events = captureLogEvents(self)
        self.stream.close()
        for _ in range(3):
            self.log.connectionEnded("127.0.0.1:1", "reset", None)
            self.log.flush()
        errors = [e for e in events if "connection log" in e.get("log_format", "")]
        self.assertEqual(len(errors), 1)

    def test_reopenAfterRotation(self) -> None:
        """
        After the file is moved away (log rotation), L{AccessLog.reopen}
        writes what was buffered to the old file and continues in a new
        one at the same path.
        """
        directory = temporaryDirectory(self)
        path = directory / "access.log"
        log = AccessLog.toFile(str(path), self.clock)
        log.connectionEnded("127.0.0.1:1", "reset", None)
        path.rename(directory / "access.log.1")
        log.connectionEnded("127.0.0.1:2", "reset", None)
        log.reopen()
        log.connectionEnded("127.0.0.1:3", "reset", None)
        log.flush()
        old = (directory / "access.log.1").read_text()
        self.assertEqual(re.findall(r"127\.0\.0\.1:(\d)", old), ["1", "2"])
        self.assertEqual(re.findall(r"127\.0\.0\.1:(\d)", path.read_text()), ["3"])

"""
L{tlsreply.logs.access}: the connection log written through a buffer.
"""

from __future__ import annotations

import io
import os
import re
import time
from typing import IO

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.support import README, captureLogEvents, temporaryDirectory
from tlsreply.connection.records import HandshakeInfo
from tlsreply.logs.access import (
    ATOMIC_WRITE,
    FAILED_FORMAT,
    REPLIED_FORMAT,
    AccessLog,
    atomicChunks,
    connectionLine,
    repliedFields,
)

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


class RecordingStream:
    """
    A real stream whose writes are counted: what C{AccessLog} hands the
    kernel, call by call.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.writes: list[bytes] = []

    def fileno(self) -> int:
        return self.stream.fileno()

    def write(self, data: bytes) -> int:
        self.writes.append(data)
        return self.stream.write(data)

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()


class SharedStreamTests(SynchronousTestCase):
    """
    Workers share standard output: their lines must not cut into each
    other's, which a pipe guarantees only for writes of at most
    C{PIPE_BUF} bytes.
    """

    def logConnections(self, stream: RecordingStream, count: int) -> None:
        """
        Log C{count} connections to C{stream}, then flush them at once.
        """
        log = AccessLog(stream, Clock())  # type: ignore[arg-type]
        for index in range(count):
            log.connectionEnded(f"127.0.0.1:{index}", "peer closed", HANDSHAKES[2])
        log.flush()

    def test_atomicChunks(self) -> None:
        """
        Lines are joined into pieces of whole lines within the limit, in
        order; a line longer than the limit is a piece of its own.
        """
        lines = ["a" * 40 + "\n", "b" * 40 + "\n", "c" * 200 + "\n", "d\n"]
        chunks = list(atomicChunks(lines, limit=100))
        self.assertEqual(chunks, [
            lines[0].encode() + lines[1].encode(), lines[2].encode(), lines[3].encode(),
        ])
        self.assertEqual(list(atomicChunks([], limit=100)), [])
        self.assertEqual(list(atomicChunks(["é\n"], limit=100)), ["é\n".encode()])

    def test_pipeGetsWholeLinesWithinPIPE_BUF(self) -> None:
        """
        To a pipe, a full buffer goes out in writes of whole lines, none
        over L{ATOMIC_WRITE}, together every line in order.
        """
        reading, writing = os.pipe()
        self.addCleanup(os.close, reading)
        stream = RecordingStream(os.fdopen(writing, "wb", buffering=0))
        self.addCleanup(stream.close)
        self.logConnections(stream, 100)
        self.assertGreater(len(stream.writes), 1)
        for data in stream.writes:
            self.assertLessEqual(len(data), ATOMIC_WRITE)
            self.assertTrue(data.endswith(b"\n"))
        lines = b"".join(stream.writes).decode().splitlines()
        self.assertEqual(
            [re.search(r"127\.0\.0\.1:(\d+)", line).group(1) for line in lines],  # type: ignore[union-attr]
            [str(index) for index in range(100)],
        )

    def test_fileGetsOneWrite(self) -> None:
        """
        To a file (opened to append, where a write lands whole), the buffer
        is one write.
        """
        path = temporaryDirectory(self) / "access.log"
        stream = RecordingStream(open(path, "ab"))
        self.addCleanup(stream.close)
        self.logConnections(stream, 100)
        self.assertEqual(len(stream.writes), 1)
        self.assertEqual(len(path.read_text().splitlines()), 100)

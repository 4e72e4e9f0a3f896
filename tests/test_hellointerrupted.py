"""
Records that interrupt a ClientHello, on both connection paths.

A client sends part of a ClientHello (a whole handshake record holding its
first bytes), waits until the server holds that, then sends a record that
cannot continue the hello (another content type, or a length no record
may have) and waits. OpenSSL answers such a record as soon as it sees it:
so must the server, on tlsreply's own ports (which peek at the hello
before OpenSSL reads the socket) as on the memory-BIO path, with the same
alert and long before the handshake timeout.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.support import LOOPBACK, RunningServer, inThread, startServer
from tlsreply.testing.badclients import clientHello, readUntilClosed

# The handshake timeout of the servers under test: a connection closed
# this late was not answered, only cut.
HANDSHAKE_TIMEOUT = 10.0
# How long a client waits for the answer before it calls it missing: far
# more than OpenSSL needs (well under 0.1 s), far less than the timeout.
ANSWERED_WITHIN = 2.0
# Alert descriptions (RFC 8446, section 6).
UNEXPECTED_MESSAGE = 10
RECORD_OVERFLOW = 22

#: A default client's ClientHello, and a handshake record holding its
#: first 100 bytes: a hello cut across records, not yet whole.
HELLO = clientHello()
FIRST_FRAGMENT = HELLO[:3] + (100).to_bytes(2, "big") + HELLO[5:105]
SECOND_FRAGMENT = HELLO[:3] + (100).to_bytes(2, "big") + HELLO[105:205]


def record(contentType: int, body: bytes, version: bytes = b"\x03\x03") -> bytes:
    """
    A TLS record: its header, then C{body}.
    """
    return bytes([contentType]) + version + len(body).to_bytes(2, "big") + body


def recordHeader(contentType: int, length: int) -> bytes:
    """
    A record header announcing C{length} bytes (none of which follow).
    """
    return bytes([contentType]) + b"\x03\x03" + length.to_bytes(2, "big")


@dataclass
class Answer:
    """
    What a client got after its interrupting record.

    @ivar received: every byte the server sent until it closed, or
        L{None} if it had not closed within L{ANSWERED_WITHIN}.
    @ivar seconds: from sending the record to the server's close.
    """

    received: bytes | None
    seconds: float

    @property
    def alert(self) -> int | None:
        """
        The description of the first alert record received, if any.
        """
        data = self.received or b""
        offset = 0
        while offset + 5 <= len(data):
            length = int.from_bytes(data[offset + 3 : offset + 5], "big")
            if data[offset] == 21 and length == 2 and offset + 7 <= len(data):
                return data[offset + 6]
            offset += 5 + length
        return None


def interrupt(sock: socket.socket, interruption: bytes) -> Answer:
    """
    Send C{interruption}, then read until the server closes, timing it.
    """
    started = time.monotonic()
    sock.sendall(interruption)
    try:
        received: bytes | None = readUntilClosed(sock, ANSWERED_WITHIN)
    except TimeoutError:
        received = None
    return Answer(received, time.monotonic() - started)


class InterruptedHelloTests(TestCase):
    """
    Each interrupting record, sent after part of a hello, gets the same
    answer on both paths: the alert OpenSSL sends, at once.
    """

    async def answer(self, server: RunningServer, before: bytes, interruption: bytes) -> Answer:
        """
        Connect to C{server}, send C{before}, wait until the server holds
        the connection, then send C{interruption} and read the answer.

        The connection and the first bytes are made from the reactor's own
        thread, so that the server cannot accept it before C{before} is in
        its socket: by the time it counts the connection, it has looked at
        those bytes (on the socket path, peeked at them and set how much
        more it waits for), and the interruption arrives after that.
        """
        held = server.service.connections.inProgress
        sock = socket.create_connection((LOOPBACK, server.port), timeout=ANSWERED_WITHIN)
        try:
            sock.sendall(before)
            deadline = time.monotonic() + ANSWERED_WITHIN
            while server.service.connections.inProgress == held:
                self.assertLess(time.monotonic(), deadline, "the server did not accept")
                await deferLater(reactor, 0.005)
            answer: Answer = await inThread(interrupt, sock, interruption)
        finally:
            sock.close()
        await server.service.connections.whenIdle().addTimeout(
            HANDSHAKE_TIMEOUT + 5, reactor
        )
        return answer

    async def assertAnsweredAlike(
        self, interruption: bytes, alert: int, before: bytes = FIRST_FRAGMENT
    ) -> None:
        """
        C{before}, then C{interruption}, is answered on both paths with the
        same fatal alert, C{alert} (what OpenSSL sends for it), within
        L{ANSWERED_WITHIN} seconds, and logged with the same reason.
        """
        answers = {}
        reasons = {}
        for path, socketTLS in (("socket", True), ("memory", False)):
            server = await startServer(
                self, socketTLS=socketTLS, handshakeTimeout=HANDSHAKE_TIMEOUT
            )
            answers[path] = await self.answer(server, before, interruption)
            [event] = server.connectionEvents()
            reasons[path] = event["reason"]
        self.assertEqual(
            {path: answer.alert for path, answer in answers.items()},
            {"socket": alert, "memory": alert},
            f"answers: {answers}",
        )
        self.assertEqual(reasons["socket"], reasons["memory"])
        for answer in answers.values():
            self.assertLess(answer.seconds, ANSWERED_WITHIN)

    async def test_applicationData(self) -> None:
        """
        An application_data record: unexpected_message.
        """
        await self.assertAnsweredAlike(record(23, b"GET / HTTP/1.1\r\n"), UNEXPECTED_MESSAGE)

    async def test_emptyApplicationData(self) -> None:
        """
        A zero-length application_data record: unexpected_message.
        """
        await self.assertAnsweredAlike(record(23, b""), UNEXPECTED_MESSAGE)

    async def test_emptyApplicationDataWithPadding(self) -> None:
        """
        A zero-length application_data record followed by zero bytes (as
        padding), and one holding only a content type and zero padding (a
        TLS 1.3 inner plaintext, sent in the clear): unexpected_message.
        """
        await self.assertAnsweredAlike(record(23, b"") + bytes(16), UNEXPECTED_MESSAGE)
        await self.assertAnsweredAlike(record(23, b"\x17" + bytes(16)), UNEXPECTED_MESSAGE)

    async def test_alert(self) -> None:
        """
        An alert record (a warning close_notify, a fatal one):
        unexpected_message.
        """
        await self.assertAnsweredAlike(record(21, b"\x01\x00"), UNEXPECTED_MESSAGE)
        await self.assertAnsweredAlike(record(21, b"\x02\x28"), UNEXPECTED_MESSAGE)

    async def test_changeCipherSpec(self) -> None:
        """
        A change_cipher_spec record in the middle of the hello:
        unexpected_message.
        """
        await self.assertAnsweredAlike(record(20, b"\x01"), UNEXPECTED_MESSAGE)

    async def test_heartbeat(self) -> None:
        """
        A heartbeat request record (RFC 6520): unexpected_message.
        """
        request = b"\x01\x00\x02hi" + bytes(16)
        await self.assertAnsweredAlike(record(24, request), UNEXPECTED_MESSAGE)

    async def test_unknownContentType(self) -> None:
        """
        Records of content types TLS does not define: unexpected_message.
        """
        await self.assertAnsweredAlike(record(99, b"\x00"), UNEXPECTED_MESSAGE)
        await self.assertAnsweredAlike(record(255, b"\x00\x01"), UNEXPECTED_MESSAGE)

    async def test_afterTwoFragments(self) -> None:
        """
        The interruption is seen at whatever record boundary it comes: here
        after two fragments of the hello.
        """
        await self.assertAnsweredAlike(
            record(23, b"x"), UNEXPECTED_MESSAGE, FIRST_FRAGMENT + SECOND_FRAGMENT
        )

    async def test_oversizedHandshakeRecord(self) -> None:
        """
        The header of a handshake record longer than TLS allows (2^14 + 1
        bytes, 2^14 + 2^11 + 1, 0xFFFF), with none of its bytes:
        record_overflow, at once.
        """
        for length in (16384 + 1, 16384 + 2048 + 1, 0xFFFF):
            await self.assertAnsweredAlike(recordHeader(22, length), RECORD_OVERFLOW)

    async def test_oversizedOtherRecord(self) -> None:
        """
        The header of an application_data record too long for TLS:
        record_overflow, at once (the length is checked before the type).
        """
        await self.assertAnsweredAlike(recordHeader(23, 0xFFFF), RECORD_OVERFLOW)

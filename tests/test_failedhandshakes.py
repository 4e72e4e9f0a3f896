"""
A failed handshake ends with the server's alert in the client's hands, not
a reset.

The server sends its alert and closes its side; a client that has not yet
read it may still be sending the rest of its flight (Java's JSSE, TLS 1.2,
sends its empty Certificate, ClientKeyExchange, ChangeCipherSpec and
Finished one record at a time). A socket closed with input still arriving
answers that input with a reset, which destroys the alert unread: the
client sees "Broken pipe" or "Connection reset" instead of why it was
refused. The server therefore keeps reading, and discarding, until the
client closes, as it does after a reply (within the close timeout).
"""

from __future__ import annotations

import select
import socket
import ssl
import struct

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.support import (
    LOOPBACK,
    RunningServer,
    WireTestCase,
    inThread,
    onMemoryBIO,
    requireCommand,
    runCommand,
    startServer,
)
from tests.test_ocsp_stacks import compileJavaClient
from tlsreply.testing import startTLSReplyServer

#: A TLS 1.2 record the client might send after its ClientHello: a
#: ChangeCipherSpec (its content does not matter to the server, which
#: has already failed).
LATER_RECORD = b"\x14\x03\x03\x00\x01\x01"

#: The alert record type.
ALERT = 21


def staticRSAClientHello() -> bytes:
    """
    A real ClientHello (Python's C{ssl}) that offers only static-RSA key
    exchange over TLS 1.2, which the server's defaults refuse with an
    alert.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("AES128-GCM-SHA256")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def sendHelloAndWaitForAnswer(port: int) -> socket.socket:
    """
    Connect, send the refused ClientHello, and wait until the server's
    answer has arrived, without reading it.
    """
    sock = socket.create_connection((LOOPBACK, port), timeout=10)
    sock.sendall(staticRSAClientHello())
    readable, _, _ = select.select([sock], [], [], 10)
    assert readable, "no answer from the server"
    return sock


def sendMoreThenRead(sock: socket.socket) -> bytes:
    """
    Send another record, as a client still writing its flight does, then
    read everything to the server's end of stream.

    @raise ConnectionResetError: if the server reset the connection.
    """
    with sock:
        sock.sendall(LATER_RECORD)
        sock.sendall(LATER_RECORD)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
        return bytes(received)


def alerts(received: bytes) -> list[tuple[int, int]]:
    """
    The (level, description) of every plaintext alert record received.
    """
    found = []
    offset = 0
    while offset + 5 <= len(received):
        contentType, _, length = struct.unpack("!BHH", received[offset : offset + 5])
        if contentType == ALERT and length == 2:
            found.append((received[offset + 5], received[offset + 6]))
        offset += 5 + length
    return found


async def failureLogged(server: RunningServer) -> None:
    """
    Wait until the server has logged the failed handshake.
    """
    while not any(e["outcome"] == "handshake-failed" for e in server.connectionEvents()):
        await deferLater(reactor, 0.01)


class AlertDeliveryTests(WireTestCase):
    """
    After a failed handshake, the client reads the alert.
    """

    async def test_recordAfterAlertGetsNoReset(self) -> None:
        """
        A client that sends another record after the server's alert (and
        after the server has logged the failure) is not reset: it reads
        the alert (handshake_failure), then the server's end of stream.
        """
        server = await startServer(self)
        sock = await inThread(sendHelloAndWaitForAnswer, server.port)
        await failureLogged(server)
        received = await inThread(sendMoreThenRead, sock)
        self.assertEqual(alerts(received), [(2, 40)])
        await server.service.stopService()
        [event] = server.connectionEvents()
        self.assertIn("no shared cipher", event["reason"])

    async def test_clientThatNeverClosesIsCut(self) -> None:
        """
        A client that keeps its side open after the alert is cut off after
        the close timeout, and the server goes idle.
        """
        server = await startServer(self, closeTimeout=0.2)
        sock = await inThread(sendHelloAndWaitForAnswer, server.port)
        self.addCleanup(sock.close)
        await failureLogged(server)
        idle: Deferred[None] = server.service.connections.whenIdle()
        await idle
        received = await inThread(sock.recv, 65536)
        self.assertEqual(alerts(received), [(2, 40)])


AlertDeliveryTestsOnMemoryBIO = onMemoryBIO(AlertDeliveryTests)


class JavaClientCertificateTests(TestCase):
    """
    Java (TLS 1.2, no client certificate) against C{client-cert-required}
    reads the server's alert.
    """

    async def test_javaReadsTheAlert(self) -> None:
        """
        Java's JSSE reports the server's fatal alert, not "Broken pipe".
        """
        requireCommand(self, "java")
        java, classes = compileJavaClient(self)
        server = startTLSReplyServer(self, scenario="client-cert-required")
        outputs = []
        for _ in range(5):
            result = await inThread(
                runCommand,
                [java, "-Djdk.tls.client.protocols=TLSv1.2", "-cp", str(classes),
                 "TLSClient", "localhost", str(server.port),
                 str(server.caCertificatePath)],
                timeout=120,
            )
            outputs.append(result.stdout.decode("utf-8", "replace"))
        for output in outputs:
            self.assertIn("Received fatal alert", output)
            self.assertNotIn("Broken pipe", output)

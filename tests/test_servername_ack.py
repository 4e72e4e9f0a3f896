"""
The server acknowledges the name a client asks for (RFC 6066, section 3:
a server that used the name "SHALL include an extension of type
server_name", empty, in its ServerHello; in TLS 1.3, RFC 8446 moves it to
the EncryptedExtensions), and keeps it with the session, so that a resumed
TLS 1.2 connection is logged and recorded with its name too.

TLS 1.2's ServerHello is read from the bytes the server sent to a real
client (Python's C{ssl}, run over memory BIOs on a plain socket so that
every byte is kept); TLS 1.3's EncryptedExtensions from what C{openssl
s_client -tlsextdebug} decrypted. Both connection paths are tested.
"""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass

from tests.support import (
    LOOPBACK,
    RunningServer,
    WireTestCase,
    clientContext,
    inThread,
    onMemoryBIO,
    requireCommand,
    runCommand,
    startServer,
)
from tlsreply.connection.records import ConnectionRecord

#: The server_name extension's type (RFC 6066).
SERVER_NAME = 0

#: TLS record and handshake types.
HANDSHAKE_RECORD = 22
SERVER_HELLO = 2


@dataclass
class CapturedConnection:
    """
    What a Python C{ssl} client did on one connection, with every byte the
    server sent it.
    """

    received: bytes
    reply: bytes
    version: str | None
    resumed: bool
    session: ssl.SSLSession | None


def fetchCapturing(
    port: int,
    context: ssl.SSLContext,
    serverName: str | None = "localhost",
    session: ssl.SSLSession | None = None,
) -> CapturedConnection:
    """
    Connect with Python's C{ssl} over memory BIOs, read the reply to the
    server's close_notify, answer it, and keep every byte received.
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=serverName, session=session)
    received = bytearray()
    reply = bytearray()
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:

        def exchange() -> None:
            pending = outgoing.read()
            if pending:
                sock.sendall(pending)
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed TCP before close_notify")
            received.extend(chunk)
            incoming.write(chunk)

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                exchange()
        while True:
            try:
                data = tls.read(65536)
            except ssl.SSLWantReadError:
                exchange()
                continue
            if not data:  # the server's close_notify
                break
            reply += data
        tls.unwrap()
        sock.sendall(outgoing.read())
        return CapturedConnection(
            bytes(received), bytes(reply), tls.version(), tls.session_reused, tls.session
        )


def serverHelloExtensions(received: bytes) -> dict[int, bytes]:
    """
    The extensions of the ServerHello at the start of what a client
    received, by type.
    """
    handshake = bytearray()
    offset = 0
    while offset + 5 <= len(received):
        contentType, _, length = struct.unpack("!BHH", received[offset : offset + 5])
        if contentType != HANDSHAKE_RECORD:
            break
        handshake += received[offset + 5 : offset + 5 + length]
        offset += 5 + length
        if len(handshake) >= 4 and len(handshake) >= 4 + int.from_bytes(handshake[1:4]):
            break
    assert handshake[0] == SERVER_HELLO, handshake[:1]
    body = handshake[4 : 4 + int.from_bytes(handshake[1:4])]
    position = 2 + 32  # version, random
    position += 1 + body[position]  # session ID
    position += 2 + 1  # cipher suite, compression
    end = position + 2 + int.from_bytes(body[position : position + 2])
    position += 2
    extensions = {}
    while position < end:
        kind, length = struct.unpack("!HH", body[position : position + 4])
        extensions[kind] = bytes(body[position + 4 : position + 4 + length])
        position += 4 + length
    return extensions


def tls12Only(context: ssl.SSLContext) -> None:
    context.maximum_version = ssl.TLSVersion.TLSv1_2


def tls13Only(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_3


class ServerNameAcknowledgementTests(WireTestCase):
    """
    The server_name extension in the server's answer, on the wire.
    """

    async def test_tls12ServerHelloAcknowledges(self) -> None:
        """
        A TLS 1.2 client that sends a name gets an empty server_name
        extension in the ServerHello.
        """
        server = await startServer(self)
        captured = await inThread(
            fetchCapturing, server.port, clientContext(server.caPath, tls12Only)
        )
        self.assertEqual((captured.version, captured.reply), ("TLSv1.2", b"test\n"))
        self.assertEqual(serverHelloExtensions(captured.received).get(SERVER_NAME), b"")

    async def test_tls12WithoutNameNoAcknowledgement(self) -> None:
        """
        A client that sends no name gets no server_name extension (a
        server may only answer what the client sent).
        """
        server = await startServer(self)

        def configure(context: ssl.SSLContext) -> None:
            tls12Only(context)
            context.check_hostname = False

        captured = await inThread(
            fetchCapturing, server.port, clientContext(server.caPath, configure), None
        )
        self.assertEqual(captured.reply, b"test\n")
        self.assertNotIn(SERVER_NAME, serverHelloExtensions(captured.received))

    async def test_tls12ResumptionKeepsNameWithoutAcknowledging(self) -> None:
        """
        A resumed TLS 1.2 connection is logged and recorded with the name
        the client asked for, like the first; its ServerHello carries no
        server_name extension (RFC 6066: a server resuming a session does
        not include it).
        """
        server = await startServer(self)
        records = self._records(server)
        context = clientContext(server.caPath, tls12Only)
        first = await inThread(fetchCapturing, server.port, context)
        second = await inThread(fetchCapturing, server.port, context, "localhost", first.session)
        self.assertEqual((first.resumed, second.resumed), (False, True))
        self.assertNotIn(SERVER_NAME, serverHelloExtensions(second.received))
        await server.service.stopService()
        self.assertEqual([r.serverName for r in records], ["localhost", "localhost"])
        self.assertEqual([r.resumed for r in records], [False, True])
        self.assertEqual(
            [e["serverName"] for e in server.connectionEvents()], ["localhost", "localhost"]
        )

    async def test_tls13ResumptionKeepsName(self) -> None:
        """
        A resumed TLS 1.3 connection is logged and recorded with its name.
        """
        server = await startServer(self)
        records = self._records(server)
        context = clientContext(server.caPath, tls13Only)
        first = await inThread(fetchCapturing, server.port, context)
        second = await inThread(fetchCapturing, server.port, context, "localhost", first.session)
        self.assertEqual((second.version, second.resumed), ("TLSv1.3", True))
        await server.service.stopService()
        self.assertEqual([r.serverName for r in records], ["localhost", "localhost"])
        self.assertEqual([r.resumed for r in records], [False, True])

    async def test_tls13EncryptedExtensionsAcknowledge(self) -> None:
        """
        Over TLS 1.3 the acknowledgement is in the EncryptedExtensions:
        C{openssl s_client -tlsextdebug} shows it when it sends a name, and
        not when it sends none.
        """
        openssl = requireCommand(self, "openssl")
        server = await startServer(self)
        acknowledgement = 'TLS server extension "server name" (id=0), len=0'
        outputs = []
        for nameArguments in (["-servername", "localhost"], ["-noservername"]):
            result = await inThread(
                runCommand,
                [openssl, "s_client", "-connect", f"{LOOPBACK}:{server.port}", "-tls1_3",
                 "-tlsextdebug", "-CAfile", server.caPath, *nameArguments],
            )
            output = result.stdout.decode("utf-8", "replace")
            self.assertIn("New, TLSv1.3", output)
            outputs.append(output)
        self.assertIn(acknowledgement, outputs[0])
        self.assertNotIn(acknowledgement, outputs[1])

    def _records(self, server: RunningServer) -> list[ConnectionRecord]:
        """
        Collect the server's connection records.
        """
        records: list[ConnectionRecord] = []
        server.factory.recorders.append(records.append)
        return records


ServerNameAcknowledgementTestsOnMemoryBIO = onMemoryBIO(ServerNameAcknowledgementTests)

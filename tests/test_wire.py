"""
tlsreply as clients see it on the wire: a real server on 127.0.0.1 and real
TLS clients (Python's C{ssl}, C{openssl s_client}, C{curl}).
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import threading
import time
import warnings

from OpenSSL import SSL
from twisted.trial.unittest import TestCase

from tests.support import (
    LOOPBACK,
    RunningServer,
    SSLResult,
    WireTestCase,
    clientContext,
    fetchWithSSL,
    inThread,
    makeCertificates,
    onMemoryBIO,
    requireCommand,
    runCommand,
    startServer,
    temporaryDirectory,
    waitForQueued,
)
from tests.test_lifecycle import waitUntil
from tlsreply import buildServerContexts, loadCredentials


class ReplyTests(WireTestCase):
    """
    The reply arrives whole and the connection ends with close_notify.
    """

    async def test_replyIsByteExactAndEndsWithCloseNotify(self) -> None:
        """
        A Python C{ssl} client that does not suppress ragged EOFs reads the
        reply byte for byte and then a clean TLS EOF (close_notify), and the
        server logs one event for the connection.
        """
        server = await startServer(self, reply=b"hello\x00\xff world\r\n")
        result: SSLResult = await inThread(
            fetchWithSSL, server.port, clientContext(server.caPath)
        )
        self.assertEqual(result.data, b"hello\x00\xff world\r\n")
        await server.service.stopService()
        [event] = server.connectionEvents()
        self.assertEqual(event["outcome"], "replied")
        self.assertEqual(event["serverName"], "localhost")
        self.assertEqual(event["tlsVersion"], "TLSv1.3")
        self.assertTrue(event["peer"].startswith("127.0.0.1:"))
        self.assertIsNotNone(event["group"])
        self.assertEqual(event["certificate"], "ECDSA-P-256")
        self.assertGreater(event["duration"], 0)

    async def test_opensslSClientPrintsReply(self) -> None:
        """
        C{openssl s_client} verifies the certificate and prints the reply.
        """
        openssl = requireCommand(self, "openssl")
        server = await startServer(self)
        result = await inThread(
            runCommand,
            [openssl, "s_client", "-connect", f"{LOOPBACK}:{server.port}",
             "-servername", "localhost", "-CAfile", server.caPath,
             "-verify_return_error", "-ign_eof"],
        )
        output = result.stdout.decode()
        self.assertIn("\ntest\n", output)
        self.assertIn("Verify return code: 0 (ok)", output)
        self.assertEqual(result.returncode, 0, result.stderr)

    async def test_requestSentFirstStillGetsWholeReply(self) -> None:
        """
        A client that sends an HTTP request right after the handshake, and
        only then reads, still receives the whole reply followed by
        close_notify: the server reads what was sent instead of racing the
        reply with a TCP reset.
        """
        server = await startServer(self, reply=b"x" * 100_000 + b"\n")
        request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" * 50

        def slowReader() -> SSLResult:
            with socket.socket() as raw:
                # Room for the whole reply in this socket's receive queue.
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                raw.connect((LOOPBACK, server.port))
                with clientContext(server.caPath).wrap_socket(
                    raw, server_hostname="localhost", suppress_ragged_eofs=False
                ) as tls:
                    tls.sendall(request)
                    # The server has sent the reply (its records are queued
                    # here, unread), and its close_notify with it.
                    waitForQueued(tls, 100_000)
                    tls.sendall(request)
                    chunks = []
                    while chunk := tls.recv(65536):
                        chunks.append(chunk)
                    return SSLResult(b"".join(chunks), tls.version(), None, False, None, None)

        result = await inThread(slowReader)
        self.assertEqual(result.data, b"x" * 100_000 + b"\n")

    async def test_curlWithALPN(self) -> None:
        """
        curl offers ALPN (h2, http/1.1); with no protocol configured the
        server declines ALPN instead of failing the handshake, and curl
        prints the reply.
        """
        curl = requireCommand(self, "curl")
        server = await startServer(self)
        result = await inThread(
            runCommand,
            [curl, "--silent", "--show-error", "--http0.9", "--noproxy", "*",
             "--cacert", server.caPath, f"https://localhost:{server.port}/"],
        )
        self.assertEqual((result.returncode, result.stdout), (0, b"test\n"), result.stderr)

    async def test_pythonClientOfferingALPN(self) -> None:
        """
        A Python client offering C{h2} and C{http/1.1} gets the reply and no
        negotiated protocol.
        """
        server = await startServer(self)
        context = clientContext(
            server.caPath, lambda c: c.set_alpn_protocols(["h2", "http/1.1"])
        )
        result = await inThread(fetchWithSSL, server.port, context)
        self.assertEqual((result.data, result.alpnProtocol), (b"test\n", None))


class VersionTests(WireTestCase):
    """
    The highest version the client offers, from TLS 1.2 to 1.3.
    """

    async def _versionFor(
        self, minimum: ssl.TLSVersion, maximum: ssl.TLSVersion
    ) -> tuple[RunningServer, SSLResult]:
        server = await startServer(self)

        def configure(context: ssl.SSLContext) -> None:
            context.minimum_version = minimum
            context.maximum_version = maximum

        result = await inThread(
            fetchWithSSL, server.port, clientContext(server.caPath, configure)
        )
        self.assertEqual(result.data, b"test\n")
        return server, result

    async def test_tls13Client(self) -> None:
        """
        A client that offers TLS 1.2 and 1.3 gets TLS 1.3.
        """
        _, result = await self._versionFor(
            ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.MAXIMUM_SUPPORTED
        )
        self.assertEqual(result.version, "TLSv1.3")

    async def test_tls12OnlyClient(self) -> None:
        """
        A TLS 1.2-only client gets TLS 1.2 with a forward-secret AEAD suite.
        """
        _, result = await self._versionFor(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
        self.assertEqual(result.version, "TLSv1.2")
        assert result.cipher is not None
        self.assertTrue(result.cipher.startswith("ECDHE-"), result.cipher)
        self.assertRegex(result.cipher, "GCM|CHACHA20")

    async def test_tls11OnlyClientIsRefused(self) -> None:
        """
        A client that offers only TLS 1.1 is refused with a protocol_version
        alert, the server logs why, and keeps serving.
        """
        server = await startServer(self)

        def configure(context: ssl.SSLContext) -> None:
            # Let the client's own OpenSSL offer TLS 1.1 at all.
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                context.minimum_version = ssl.TLSVersion.TLSv1_1
                context.maximum_version = ssl.TLSVersion.TLSv1_1

        with self.assertRaises(ssl.SSLError) as caught:
            await inThread(
                fetchWithSSL, server.port, clientContext(server.caPath, configure)
            )
        self.assertIn("PROTOCOL_VERSION", str(caught.exception).upper())
        result = await inThread(fetchWithSSL, server.port, clientContext(server.caPath))
        self.assertEqual(result.data, b"test\n")
        await server.service.stopService()
        failed = [e for e in server.connectionEvents() if e["outcome"] == "handshake-failed"]
        self.assertEqual(len(failed), 1)
        self.assertIn("unsupported protocol", failed[0]["reason"])

    async def test_staticRSACipherIsRefused(self) -> None:
        """
        A TLS 1.2 client that offers only static-RSA key exchange finds no
        shared cipher: the defaults admit forward-secret suites only.
        """
        server = await startServer(self)

        def configure(context: ssl.SSLContext) -> None:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers("AES128-GCM-SHA256:AES256-SHA")

        with self.assertRaises(ssl.SSLError):
            await inThread(
                fetchWithSSL, server.port, clientContext(server.caPath, configure)
            )
        await server.service.stopService()
        [event] = server.connectionEvents()
        self.assertIn("no shared cipher", event["reason"])


class MisbehavingClientTests(WireTestCase):
    """
    Clients that stop half-way never hold the server or its descriptors.
    """

    async def test_idleClientIsClosedAfterCloseTimeout(self) -> None:
        """
        A client that reads the reply and then neither answers close_notify
        nor closes sees the server close TCP within the close timeout (0.5
        seconds here; the default of 3 seconds, and its timer, are tested on
        a fake clock in L{tests.test_protocol}).
        """
        server = await startServer(self, closeTimeout=0.5)

        def readThenIdle() -> tuple[bytes, float, bytes]:
            raw = socket.create_connection((LOOPBACK, server.port))
            tls = clientContext(server.caPath).wrap_socket(
                raw, server_hostname="localhost", suppress_ragged_eofs=False
            )
            try:
                reply = tls.recv(100)
                self.assertEqual(tls.recv(100), b"")  # close_notify
                started = time.monotonic()
                # Watch the TCP socket itself: it ends when the server closes.
                watcher = socket.socket(fileno=os.dup(tls.fileno()))
                watcher.settimeout(10)
                try:
                    tail = watcher.recv(100)
                except ConnectionResetError:
                    tail = b"<reset>"
                finally:
                    watcher.close()
                return reply, time.monotonic() - started, tail
            finally:
                tls.close()

        reply, waited, tail = await inThread(readThenIdle)
        self.assertEqual(reply, b"test\n")
        self.assertIn(tail, (b"", b"<reset>"))
        self.assertLess(waited, 0.5 + 4.5)  # the margin a loaded CI machine needs
        self.assertGreater(waited, 0.3)
        await server.service.stopService()
        [event] = server.connectionEvents()
        self.assertIn("did not close within 0.5s", event["closed"])

    async def test_slowReaderGetsWholeLargeReply(self) -> None:
        """
        A reply far larger than the socket buffers, read slowly, arrives
        whole with close_notify even though reading it takes several close
        timeouts: the server only cuts off a client that stops reading.
        """
        # The reply must outlast the kernel's send buffer (up to 4 MiB on
        # Linux) plus what the client reads in two close timeouts (at most
        # 8 MiB: a 16 KiB record per read, 2 ms apart): until the second
        # check, at 1 s, some of it is still in the server's hands, and
        # would be lost if the server cut the client off. About 1.8 s.
        reply = bytes(range(256)) * (13 << 12)  # 13 MiB
        server = await startServer(self, reply=reply, closeTimeout=0.5)

        def slowReader() -> tuple[bytes, float]:
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            raw.connect((LOOPBACK, server.port))
            started = time.monotonic()
            with clientContext(server.caPath).wrap_socket(
                raw, server_hostname="localhost", suppress_ragged_eofs=False
            ) as tls:
                chunks = []
                while chunk := tls.recv(65536):
                    chunks.append(chunk)
                    time.sleep(0.002)
                return b"".join(chunks), time.monotonic() - started

        data, took = await inThread(slowReader)
        self.assertEqual(len(data), len(reply))
        self.assertEqual(data, reply)
        self.assertGreater(took, 1.0)  # longer than two close timeouts

    async def test_stalledReaderIsCutOff(self) -> None:
        """
        A client that stops reading a large reply is cut off one close
        timeout after it stops acknowledging data, and the log says so.
        """
        server = await startServer(self, reply=b"x" * (8 << 20), closeTimeout=0.5)
        serverClosed = threading.Event()
        server.factory.recorders.append(lambda record: serverClosed.set())

        def stall() -> bytes:
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            raw.connect((LOOPBACK, server.port))
            with clientContext(server.caPath).wrap_socket(
                raw, server_hostname="localhost", suppress_ragged_eofs=False
            ) as tls:
                first = tls.recv(100)
                # Read nothing more, until the server has ended the
                # connection (the time limit only keeps a failure short).
                serverClosed.wait(10)
                return first

        self.assertEqual(await inThread(stall), b"x" * 100)
        await server.service.stopService()
        [event] = server.connectionEvents()
        self.assertIn("peer stopped reading the reply for 0.5s", event["closed"])

    async def test_abortMidHandshakeIsLoggedAndNextClientServed(self) -> None:
        """
        A client that sends half a ClientHello and resets is logged as a
        failed handshake, and the next client is served.
        """
        server = await startServer(self)

        def abortMidHandshake() -> None:
            raw = socket.create_connection((LOOPBACK, server.port))
            # A TLS record header announcing 512 bytes, then only a few.
            raw.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            time.sleep(0.1)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()

        await inThread(abortMidHandshake)
        result = await inThread(fetchWithSSL, server.port, clientContext(server.caPath))
        self.assertEqual(result.data, b"test\n")
        await server.service.stopService()
        outcomes = [e["outcome"] for e in server.connectionEvents()]
        self.assertEqual(outcomes, ["handshake-failed", "replied"])
        failed = server.connectionEvents()[0]
        self.assertTrue(failed["peer"].startswith("127.0.0.1:"))


class FirstReadTests(TestCase):
    """
    tlsreply's own ports read a connection as soon as it is accepted.
    """

    async def test_handshakeCompletedByTheFirstRead(self) -> None:
        """
        A handshake that completes in the very read made at accept (the
        client answered the server's flight before the server went back
        to reading, as a fast client does while a server is busy), with a
        reply too large to be written at once, is served whole: the
        connection must wait for the socket to be writable before it has
        been through the reactor once.

        Made certain here: the server's info callback, called once its
        flight is out, makes the client (Python's C{ssl}, on an OpenSSL of
        its own) answer it at once, inside the server's C{do_handshake}.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        contexts = buildServerContexts(
            loadCredentials(certificates.certificatePath, certificates.keyPath)
        )
        answered: list[bool] = []

        def answerAtOnce(connection: SSL.Connection, where: int, _: int) -> None:
            # The server's ServerHelloDone has been written and flushed.
            if (where & SSL.SSL_CB_ACCEPT_LOOP and not answered
                    and connection.get_state_string() == b"SSLv3/TLS write server done"):
                answered.append(True)
                try:
                    client.do_handshake()
                except ssl.SSLWantReadError:
                    pass

        for each in {id(c): c for c in (contexts.fallback, *contexts.byName.values())}.values():
            each.set_info_callback(answerAtOnce)
        reply = os.urandom(8 << 20)
        server = await startServer(self, reply=reply, contextFactory=contexts)
        raw = socket.create_connection((LOOPBACK, server.port), timeout=10)
        self.addCleanup(raw.close)
        raw.setblocking(False)
        context = clientContext(str(certificates.caPath))
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        client = context.wrap_socket(
            raw, server_hostname="localhost", do_handshake_on_connect=False
        )
        try:
            client.do_handshake()  # the ClientHello, waiting when tlsreply accepts
        except ssl.SSLWantReadError:
            pass

        def readAll() -> bytes:
            client.settimeout(10)
            received = []
            while chunk := client.recv(65536):
                received.append(chunk)
            return b"".join(received)

        # The client is driven by one thread at a time: the reactor's (in
        # the callback) until it has answered, then a reader's.
        await waitUntil(lambda: answered, timeout=10)
        received = await inThread(readAll)
        self.assertEqual(answered, [True])
        self.assertEqual(len(received), len(reply))
        self.assertTrue(received == reply)
        await server.service.stopService()
        [event] = server.connectionEvents()
        self.assertEqual((event["outcome"], event["tlsVersion"]), ("replied", "TLSv1.2"))


class EndpointTests(TestCase):
    """
    TLS wraps the factory, so endpoint kinds other than plain TCP carry it.
    """

    async def test_unixSocket(self) -> None:
        """
        A C{unix:} listener serves TLS.
        """
        path = temporaryDirectory(self) / "tlsreply.sock"
        server = await startServer(self, listen=f"unix:{path}")

        def overUnixSocket() -> bytes:
            with socket.socket(socket.AF_UNIX) as raw:
                raw.connect(str(path))
                with clientContext(server.caPath).wrap_socket(
                    raw, server_hostname="localhost", suppress_ragged_eofs=False
                ) as tls:
                    return tls.recv(100) + tls.recv(100)

        self.assertEqual(await inThread(overUnixSocket), b"test\n")

        def closeWithoutCloseNotify() -> None:
            with socket.socket(socket.AF_UNIX) as raw:
                raw.connect(str(path))
                clientContext(server.caPath).wrap_socket(
                    raw, server_hostname="localhost"
                ).recv(100)

        await inThread(closeWithoutCloseNotify)
        await server.service.stopService()
        first, second = server.connectionEvents()
        self.assertEqual((first["peer"], second["peer"]), ("unix:(unnamed peer)",) * 2)
        self.assertEqual(second["closed"], "peer closed the connection without close_notify")

    async def test_haproxyProtocol(self) -> None:
        """
        Behind a C{haproxy:} listener the PROXY header is read before the
        TLS handshake, and the log names the original client.
        """
        server = await startServer(self, listen=f"haproxy:tcp:0:interface={LOOPBACK}")

        def throughProxy() -> bytes:
            with socket.create_connection((LOOPBACK, server.port)) as raw:
                raw.sendall(b"PROXY TCP4 198.51.100.7 192.0.2.1 5555 443\r\n")
                with clientContext(server.caPath).wrap_socket(
                    raw, server_hostname="localhost", suppress_ragged_eofs=False
                ) as tls:
                    return tls.recv(100) + tls.recv(100)

        self.assertEqual(await inThread(throughProxy), b"test\n")
        await server.service.stopService()
        [event] = server.connectionEvents()
        self.assertEqual(event["peer"], "198.51.100.7:5555")


# The same tests with TLS over memory BIOs (haproxy: and embedders' endpoints).
ReplyTestsOnMemoryBIO = onMemoryBIO(ReplyTests)
VersionTestsOnMemoryBIO = onMemoryBIO(VersionTests)
MisbehavingClientTestsOnMemoryBIO = onMemoryBIO(MisbehavingClientTests)

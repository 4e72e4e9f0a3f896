"""
What a L{ConnectionRecord} carries, with real clients on the wire: the
whole offer of the ClientHello (names in the client's order, fingerprints)
and the bytes the client sent after the handshake, over both connection
paths; and what a server without recorders does not collect.
"""

from __future__ import annotations

import socket
import ssl
import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.capture import CapturingRelay, ja3, ja4, parseClientHello
from tests.support import (
    LOOPBACK,
    RunningServer,
    WireTestCase,
    clientContext,
    fetchWithSSL,
    inThread,
    onMemoryBIO,
    requireCommand,
    runCommand,
    startServer,
)
from tests.test_clienthello import SPEC_JA4, handshakeMessageOf, specExampleHello
from tests.test_clienthello import records as helloRecords
from tlsreply import ReplyFactory
from tlsreply.clienthello._ciphersuitenames import CIPHER_SUITES
from tlsreply.connection.records import RECEIVED_LIMIT, ConnectionRecord


async def recordedServer(
    testCase: WireTestCase, **arguments: object
) -> tuple[RunningServer, list[ConnectionRecord]]:
    """
    A server whose connections are recorded into the list returned.
    """
    server = await startServer(testCase, **arguments)  # type: ignore[arg-type]
    records: list[ConnectionRecord] = []
    server.factory.recorders.append(records.append)
    return server, records


def assertFingerprintsOf(testCase: SynchronousTestCase, record: ConnectionRecord,
                         flight: bytes) -> None:
    """
    The record's fingerprints are those of the ClientHello the client
    sent (C{flight}, as a relay saw it), worked out outside tlsreply: JA4
    by FoxIO's library, JA3 by the tests' own reader (L{tests.capture}).
    """
    testCase.assertEqual(record.ja4, ja4(flight))
    testCase.assertEqual(record.ja3, ja3(parseClientHello(flight)))


async def recorded(records: list[ConnectionRecord], count: int = 1) -> list[ConnectionRecord]:
    """
    The first C{count} records, once that many connections have ended.
    """
    deadline = time.monotonic() + 10
    while len(records) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(records)} records after 10 s, not {count}")
        await deferLater(reactor, 0.01, lambda: None)
    return records[:count]


def pythonCipherSuites(context: ssl.SSLContext) -> tuple[str, ...]:
    """
    The IANA names of the cipher suites a Python client offers, in its
    order, from its own list of them (the low 16 bits of OpenSSL's id are
    the code point), followed by the renegotiation SCSV OpenSSL adds.
    """
    codes = [cipher["id"] & 0xFFFF for cipher in context.get_ciphers()]
    return (*(CIPHER_SUITES[code] for code in codes), "TLS_EMPTY_RENEGOTIATION_INFO_SCSV")


class OfferedOnRecordTests(WireTestCase):
    """
    Each record names everything the client's ClientHello offered, in the
    client's order, as three real clients offer it.
    """

    async def test_pythonClient(self) -> None:
        """
        Python's C{ssl} (the system OpenSSL): every cipher suite of its
        list in its order, its groups, extensions and the one key share it
        sends, compression C{NULL}, and the JA4 and JA3 fingerprints.
        """
        server, records = await recordedServer(self)

        def configure(context: ssl.SSLContext) -> None:
            context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305")
            context.set_alpn_protocols(["h2", "http/1.1"])

        context = clientContext(server.caPath, configure)
        relay = CapturingRelay(self, server.port)
        result = await inThread(fetchWithSSL, relay.port, context)
        self.assertEqual(result.data, b"test\n")
        [record] = await recorded(records)
        self.assertEqual(record.offeredCipherSuites, pythonCipherSuites(context))
        self.assertEqual(
            record.offeredCipherSuites[-3:],
            (
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
            ),
        )
        self.assertEqual(record.offeredGroups[:2], ("x25519", "secp256r1"))
        self.assertEqual(record.offeredKeyShares, (record.group,))
        self.assertEqual(record.offeredCompressionMethods, ("NULL",))
        for extension in (
            "server_name",
            "supported_groups",
            "signature_algorithms",
            "application_layer_protocol_negotiation",
            "supported_versions",
            "key_share",
        ):
            self.assertIn(extension, record.offeredExtensions)
        self.assertEqual(record.offeredExtensions[0], "server_name")
        self.assertIn("ecdsa_secp256r1_sha256", record.offeredSignatureAlgorithms)
        self.assertEqual(record.offeredALPN, ("h2", "http/1.1"))
        [flight] = relay.sent
        assertFingerprintsOf(self, record, bytes(flight))
        self.assertTrue(record.ja4.startswith("t13d"), record.ja4)  # type: ignore[union-attr]
        self.assertTrue(record.ja4.split("_")[0].endswith("h2"), record.ja4)  # type: ignore[union-attr]
        # The same client offers the same again: the fingerprints are its.
        await inThread(fetchWithSSL, server.port, context)
        _, second = await recorded(records, 2)
        self.assertEqual((second.ja4, second.ja3), (record.ja4, record.ja3))
        await inThread(fetchWithSSL, server.port, clientContext(server.caPath))
        _, _, other = await recorded(records, 3)
        self.assertNotEqual(other.ja4, record.ja4)
        self.assertNotEqual(other.ja3, record.ja3)

    async def test_opensslSClientTLS13(self) -> None:
        """
        C{openssl s_client -groups -sigalgs -ciphersuites -cipher}: the
        record has exactly the lists given, in the order given, and the
        key share of the first group.
        """
        openssl = requireCommand(self, "openssl")
        server, records = await recordedServer(self)
        relay = CapturingRelay(self, server.port)
        result = await inThread(
            runCommand,
            [openssl, "s_client", "-connect", f"{LOOPBACK}:{relay.port}",
             "-servername", "localhost", "-CAfile", server.caPath, "-ign_eof",
             "-groups", "secp384r1:x25519:secp256r1",
             "-sigalgs", "rsa_pss_rsae_sha256:ecdsa_secp256r1_sha256:ed25519",
             "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
             "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256",
             "-alpn", "http/1.1"],
        )
        self.assertIn("\ntest\n", result.stdout.decode())
        [record] = await recorded(records)
        self.assertEqual(record.offeredGroups, ("secp384r1", "x25519", "secp256r1"))
        self.assertEqual(record.offeredKeyShares, ("secp384r1",))
        # The server may prefer another group and ask for its key share
        # (HelloRetryRequest): the record keeps the first ClientHello.
        self.assertIn(record.group, record.offeredGroups)
        self.assertEqual(
            record.offeredSignatureAlgorithms,
            ("rsa_pss_rsae_sha256", "ecdsa_secp256r1_sha256", "ed25519"),
        )
        self.assertEqual(
            record.offeredCipherSuites,
            (
                "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
            ),
        )
        self.assertEqual(record.cipher, "TLS_CHACHA20_POLY1305_SHA256")
        self.assertEqual(record.offeredVersions[:2], ("TLSv1.3", "TLSv1.2"))
        assertFingerprintsOf(self, record, bytes(relay.sent[0]))
        # 5 cipher suites; the first ALPN value's first and last characters.
        self.assertTrue(record.ja4.startswith("t13d05"), record.ja4)  # type: ignore[union-attr]
        self.assertTrue(record.ja4.split("_")[0].endswith("h1"), record.ja4)  # type: ignore[union-attr]

    async def test_opensslSClientTLS12(self) -> None:
        """
        A TLS 1.2-only C{s_client} offers no TLS 1.3 suites, no key share
        and no supported_versions; JA4 reads the version from the legacy
        field.
        """
        openssl = requireCommand(self, "openssl")
        server, records = await recordedServer(self)
        relay = CapturingRelay(self, server.port)
        result = await inThread(
            runCommand,
            [openssl, "s_client", "-connect", f"{LOOPBACK}:{relay.port}",
             "-servername", "localhost", "-CAfile", server.caPath, "-ign_eof",
             "-tls1_2", "-groups", "x25519:secp256r1", "-sigalgs", "ecdsa_secp256r1_sha256",
             "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
        )
        self.assertIn("\ntest\n", result.stdout.decode())
        [record] = await recorded(records)
        self.assertEqual(record.tlsVersion, "TLSv1.2")
        self.assertEqual(
            record.offeredCipherSuites,
            ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"),
        )
        # In TLS 1.2 the groups also say which ECDSA certificates the client
        # takes: the server's is P-256.
        self.assertEqual(record.offeredGroups, ("x25519", "secp256r1"))
        self.assertEqual(record.offeredSignatureAlgorithms, ("ecdsa_secp256r1_sha256",))
        self.assertEqual(record.offeredKeyShares, ())
        self.assertNotIn("supported_versions", record.offeredExtensions)
        self.assertNotIn("key_share", record.offeredExtensions)
        self.assertEqual(record.offeredVersions, ("TLSv1.2",))
        assertFingerprintsOf(self, record, bytes(relay.sent[0]))
        self.assertTrue(record.ja4.startswith("t12d02"), record.ja4)  # type: ignore[union-attr]

    async def test_twistedClientOffersHybridPostQuantum(self) -> None:
        """
        A Twisted client on pyOpenSSL's own OpenSSL (4.x) offers the hybrid
        post-quantum group X25519MLKEM768 first, with a key share for it
        and one for x25519; the server chooses it. What it sends after the
        handshake is on record.
        """
        server, records = await recordedServer(self)
        client = ReadAll(b"PING\r\n")
        authority = Certificate.loadPEM(server.certificates.caPath.read_bytes())
        relay = CapturingRelay(self, server.port)
        endpoint = wrapClientTLS(
            optionsForClientTLS("localhost", authority),
            TCP4ClientEndpoint(reactor, LOOPBACK, relay.port),
        )
        await connectProtocol(endpoint, client)
        self.assertEqual(await client.closed, b"test\n")
        [record] = await recorded(records)
        self.assertEqual(record.offeredGroups[0], "X25519MLKEM768")
        self.assertEqual(record.offeredKeyShares, ("X25519MLKEM768", "x25519"))
        self.assertEqual(record.group, "X25519MLKEM768")
        self.assertEqual(record.received, b"PING\r\n")
        self.assertFalse(record.receivedTruncated)
        assertFingerprintsOf(self, record, bytes(relay.sent[0]))

    async def test_failedHandshakeKeepsTheOffer(self) -> None:
        """
        A client the server refuses (no cipher suite in common) is recorded
        with what it offered, which is what a test of that client wants to
        see.
        """
        server, records = await recordedServer(self)

        def configure(context: ssl.SSLContext) -> None:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers("AES128-GCM-SHA256")

        relay = CapturingRelay(self, server.port)
        with self.assertRaises(ssl.SSLError):
            await inThread(fetchWithSSL, relay.port, clientContext(server.caPath, configure))
        [record] = await recorded(records)
        self.assertTrue(record.handshakeFailed)
        self.assertEqual(
            record.offeredCipherSuites,
            ("TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"),
        )
        assertFingerprintsOf(self, record, bytes(relay.sent[0]))

    async def test_specificationExampleWithGrease(self) -> None:
        """
        The JA4 specification's example hello with Chrome's GREASE values,
        sent raw, in one record and split over many (which the socket path
        reads with its full parser): the record marks each GREASE value
        where it was sent and has the specification's JA4.
        """
        server, records = await recordedServer(self)
        message = handshakeMessageOf(specExampleHello(grease=True))

        def send(flight: bytes) -> None:
            with socket.create_connection((LOOPBACK, server.port)) as raw:
                raw.sendall(flight)
                raw.shutdown(socket.SHUT_WR)
                while raw.recv(4096):
                    pass

        for size in (16384, 100):
            await inThread(send, helloRecords(message, size))
        whole, split = await recorded(records, 2)
        for record in (whole, split):
            self.assertEqual(record.ja4, SPEC_JA4)
            self.assertEqual(record.requestedServerName, "example.com")
            self.assertEqual(record.offeredCipherSuites[:2],
                             ("GREASE (0x0a0a)", "TLS_AES_128_GCM_SHA256"))
            self.assertEqual(record.offeredExtensions[:3],
                             ("GREASE (0x1a1a)", "compress_certificate", "server_name"))
            self.assertEqual(record.offeredExtensions[-1], "GREASE (0xfafa)")
            self.assertEqual(record.offeredGroups,
                             ("GREASE (0x0a0a)", "x25519", "secp256r1", "secp384r1"))
            self.assertEqual(record.offeredKeyShares, ("GREASE (0x2a2a)", "x25519"))
            self.assertEqual(record.offeredCompressionMethods, ("NULL",))
        self.assertEqual(whole.ja3, split.ja3)
        assertFingerprintsOf(self, whole, helloRecords(message, 16384))

    async def test_notAClientHello(self) -> None:
        """
        Bytes that are no ClientHello leave the offer empty and the
        fingerprints L{None}.
        """
        server, records = await recordedServer(self)

        def plainHTTP() -> None:
            with socket.create_connection((LOOPBACK, server.port)) as raw:
                raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                raw.recv(100)

        await inThread(plainHTTP)
        [record] = await recorded(records)
        self.assertTrue(record.handshakeFailed)
        self.assertEqual(record.offeredCipherSuites, ())
        self.assertEqual(record.offeredExtensions, ())
        self.assertEqual((record.ja4, record.ja3), (None, None))
        self.assertEqual(record.received, b"")


class ReadAll(Protocol):
    """
    A Twisted TLS client: sends C{request} once connected, reads until the
    server closes.
    """

    def __init__(self, request: bytes = b"") -> None:
        self.request = request
        self.data = b""
        self.closed: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        if self.request:
            self.transport.write(self.request)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self.closed.callback(self.data)


class ReceivedOnRecordTests(WireTestCase):
    """
    Each record carries what the client sent after the handshake, bounded;
    the reply does not depend on it.
    """

    async def test_httpRequest(self) -> None:
        """
        curl's request line and headers are on record, whole.
        """
        curl = requireCommand(self, "curl")
        server, records = await recordedServer(self, reply=b"HTTP/1.1 200 OK\r\n"
                                               b"Content-Length: 3\r\nConnection: close"
                                               b"\r\n\r\nok\n")
        result = await inThread(
            runCommand,
            [curl, "--silent", "--show-error", "--noproxy", "*", "--http1.1",
             "-H", "X-Test: 1", "--cacert", server.caPath,
             f"https://localhost:{server.port}/some/path?q=1"],
        )
        self.assertEqual((result.returncode, result.stdout), (0, b"ok\n"), result.stderr)
        [record] = await recorded(records)
        self.assertTrue(
            record.received.startswith(b"GET /some/path?q=1 HTTP/1.1\r\n"), record.received
        )
        self.assertIn(f"\r\nHost: localhost:{server.port}\r\n".encode(), record.received)
        self.assertIn(b"\r\nX-Test: 1\r\n", record.received)
        self.assertTrue(record.received.endswith(b"\r\n\r\n"))
        self.assertFalse(record.receivedTruncated)

    async def test_tls12Client(self) -> None:
        """
        What a TLS 1.2 client sends is on record too (OpenSSL keeps reading
        after the server's close_notify in either version).
        """
        server, records = await recordedServer(self)

        def configure(context: ssl.SSLContext) -> None:
            context.maximum_version = ssl.TLSVersion.TLSv1_2

        result = await inThread(
            fetchWithSSL, server.port, clientContext(server.caPath, configure),
            sendFirst=b"hello over TLS 1.2",
        )
        self.assertEqual((result.version, result.data), ("TLSv1.2", b"test\n"))
        [record] = await recorded(records)
        self.assertEqual(record.received, b"hello over TLS 1.2")

    async def test_bounded(self) -> None:
        """
        A client that sends more than L{RECEIVED_LIMIT} bytes gets the
        whole reply; the record keeps the first L{RECEIVED_LIMIT} and says
        it was truncated.
        """
        server, records = await recordedServer(self)
        sent = bytes(range(256)) * (RECEIVED_LIMIT // 256 + 100)
        result = await inThread(
            fetchWithSSL, server.port, clientContext(server.caPath), sendFirst=sent
        )
        self.assertEqual(result.data, b"test\n")
        [record] = await recorded(records)
        self.assertEqual(len(record.received), RECEIVED_LIMIT)
        self.assertEqual(record.received, sent[:RECEIVED_LIMIT])
        self.assertTrue(record.receivedTruncated)
        self.assertEqual(record.asDict()["receivedTruncated"], True)

    async def test_exactlyAtTheBound(self) -> None:
        """
        Exactly L{RECEIVED_LIMIT} bytes are kept whole, not truncated.
        """
        server, records = await recordedServer(self)
        sent = b"x" * RECEIVED_LIMIT
        await inThread(fetchWithSSL, server.port, clientContext(server.caPath), sendFirst=sent)
        [record] = await recorded(records)
        self.assertEqual((record.received, record.receivedTruncated), (sent, False))

    async def test_nothingSent(self) -> None:
        """
        A client that sends nothing has an empty C{received}.
        """
        server, records = await recordedServer(self)
        await inThread(fetchWithSSL, server.port, clientContext(server.caPath))
        [record] = await recorded(records)
        self.assertEqual((record.received, record.receivedTruncated), (b"", False))


class CollectedOnlyWithRecordersTests(SynchronousTestCase):
    """
    Without a recorder nothing is kept: the default path pays one check
    per chunk the client sends.
    """

    def test_notKeptWithoutRecorders(self) -> None:
        """
        A factory with no recorder keeps nothing of what a client sends.
        """
        factory = ReplyFactory(b"x")
        protocol = factory.buildProtocol(None)
        protocol.dataReceived(b"GET / HTTP/1.1\r\n")
        self.assertIsNone(protocol.received)

    def test_keptWithARecorder(self) -> None:
        """
        With a recorder, every chunk is kept, in order.
        """
        factory = ReplyFactory(b"x")
        factory.recorders.append(lambda record: None)
        protocol = factory.buildProtocol(None)
        protocol.dataReceived(b"GET / ")
        protocol.dataReceived(b"HTTP/1.1\r\n")
        self.assertEqual(protocol.received, b"GET / HTTP/1.1\r\n")

    def test_keptUpToOneByteOverTheLimit(self) -> None:
        """
        The protocol keeps one byte over the limit (the mark of a truncated
        record) and no more, however the bytes arrive.
        """
        factory = ReplyFactory(b"x")
        factory.recorders.append(lambda record: None)
        protocol = factory.buildProtocol(None)
        for _ in range(3):
            protocol.dataReceived(b"y" * (RECEIVED_LIMIT // 2 + 1))
        self.assertEqual(len(protocol.received or b""), RECEIVED_LIMIT + 1)
        record = ConnectionRecord.build("p", "closed", None, None, protocol.received)
        self.assertEqual((len(record.received), record.receivedTruncated), (RECEIVED_LIMIT, True))

    def test_asDict(self) -> None:
        """
        C{asDict} gives C{received} as text when it is UTF-8, else as
        base64, and every tuple as a list.
        """
        record = ConnectionRecord.build("p", "closed", None, None, bytearray(b"GET /"))
        values = record.asDict()
        self.assertEqual(values["received"], {"text": "GET /"})
        self.assertEqual(values["offeredCipherSuites"], [])
        record = ConnectionRecord.build("p", "closed", None, None, bytearray(b"\xff\x00"))
        self.assertEqual(record.asDict()["received"], {"base64": "/wA="})


OfferedOnRecordTestsOnMemoryBIO = onMemoryBIO(OfferedOnRecordTests)
ReceivedOnRecordTestsOnMemoryBIO = onMemoryBIO(ReceivedOnRecordTests)

"""
Tests for L{tlsreply.clienthello}: the parser that reads a client's
ClientHello before OpenSSL does.

Real ClientHellos come from Python's C{ssl} over memory BIOs; malformed and
unusual ones (GREASE, early data, SSLv2-style) are built byte by byte.
"""

from __future__ import annotations

import ssl
import struct

import trustme
from twisted.trial.unittest import SynchronousTestCase

from tlsreply.clienthello import (
    MAXIMUM_HELLO_SIZE,
    NOT_A_HELLO,
    SPANS_RECORDS,
    ClientHello,
    ClientHelloParser,
    NotAClientHello,
    scanClientHello,
)

# Real ClientHellos, from Python's ssl.


def clientContext(ca: trustme.CA | None = None) -> ssl.SSLContext:
    """
    A default client context, trusting C{ca} if given.
    """
    context = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(context)
    return context


def firstFlight(
    context: ssl.SSLContext,
    serverName: str | None = "example.com",
    session: ssl.SSLSession | None = None,
) -> bytes:
    """
    What a Python C{ssl} client sends first: its ClientHello, as TLS
    records.
    """
    client = context.wrap_bio(
        ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname=serverName,
        session=session,
    )
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def sessionFromHandshake(ca: trustme.CA, context: ssl.SSLContext) -> ssl.SSLSession:
    """
    Complete a TLS 1.3 handshake in memory with a Python C{ssl} server, and
    return the session (with its ticket) that the client keeps.
    """
    serverContext = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("example.com").configure_cert(serverContext)
    toServer, toClient = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(toClient, toServer, server_hostname="example.com")
    server = serverContext.wrap_bio(toServer, toClient, server_side=True)
    for _ in range(10):
        for end in (client, server):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass
    try:
        client.read()  # the tickets, which arrive after the handshake
    except ssl.SSLWantReadError:
        pass
    session = client.session
    assert session is not None and session.has_ticket
    return session


# Built ClientHellos.


def vector(lengthSize: int, body: bytes) -> bytes:
    """
    A TLS vector: its length in C{lengthSize} bytes, then C{body}.
    """
    return len(body).to_bytes(lengthSize, "big") + body


def extension(kind: int, body: bytes = b"") -> bytes:
    """
    An extension: its type, then its body as a vector.
    """
    return struct.pack(">HH", kind, len(body)) + body


def serverNameExtension(*names: tuple[int, bytes]) -> bytes:
    """
    A server_name extension listing (name type, name) entries.
    """
    return extension(0, vector(2, b"".join(bytes([t]) + vector(2, n) for t, n in names)))


def alpnExtension(*protocols: bytes) -> bytes:
    """
    An application_layer_protocol_negotiation extension.
    """
    return extension(16, vector(2, b"".join(vector(1, p) for p in protocols)))


def versionsExtension(*versions: int) -> bytes:
    """
    A supported_versions extension, as a client sends it.
    """
    return extension(43, vector(1, b"".join(v.to_bytes(2, "big") for v in versions)))


def helloMessage(
    extensions: list[bytes] | None = None, legacyVersion: int = 0x0303, kind: int = 1
) -> bytes:
    """
    A handshake message (a ClientHello unless C{kind} says otherwise) with
    these extensions, or with no extensions block at all for L{None}.
    """
    body = (
        legacyVersion.to_bytes(2, "big")
        + bytes(32)
        + vector(1, b"")
        + vector(2, b"\x13\x01\xc0\x2b")
        + vector(1, b"\x00")
    )
    if extensions is not None:
        body += vector(2, b"".join(extensions))
    return bytes([kind]) + vector(3, body)


def records(message: bytes, size: int = 16384, contentType: int = 22) -> bytes:
    """
    C{message} in TLS records carrying at most C{size} bytes each.
    """
    return b"".join(
        bytes([contentType]) + b"\x03\x01" + vector(2, message[i : i + size])
        for i in range(0, len(message), size)
    )


def handshakeMessageOf(flight: bytes) -> bytes:
    """
    The handshake bytes inside a flight of handshake records.
    """
    out, offset = b"", 0
    while offset < len(flight):
        length = int.from_bytes(flight[offset + 3 : offset + 5], "big")
        out += flight[offset + 5 : offset + 5 + length]
        offset += 5 + length
    return out


def parse(data: bytes) -> ClientHello | None:
    """
    Feed C{data} to a fresh parser at once.
    """
    return ClientHelloParser().feed(data)


class RealClientHelloTests(SynchronousTestCase):
    """
    ClientHellos from Python's C{ssl} client, however they arrive.
    """

    def setUp(self) -> None:
        context = clientContext()
        context.set_alpn_protocols(["h2", "http/1.1"])
        self.flight = firstFlight(context)
        self.expected = ClientHello(
            serverName="example.com",
            alpnProtocols=("h2", "http/1.1"),
            versions=("TLSv1.3", "TLSv1.2"),
            resumptionOffered=False,
            earlyDataOffered=False,
        )

    def test_whole(self) -> None:
        """
        Fed whole, the hello gives the server name, the ALPN protocols and
        the versions offered, in the client's order; every byte is kept to
        be handed on.
        """
        parser = ClientHelloParser()
        self.assertEqual(parser.feed(self.flight), self.expected)
        self.assertEqual(parser.received, self.flight)

    def test_byteByByte(self) -> None:
        """
        Fed one byte at a time, the parser asks for more until the last
        byte, then gives the same hello.
        """
        parser = ClientHelloParser()
        for i in range(len(self.flight) - 1):
            self.assertIsNone(parser.feed(self.flight[i : i + 1]), f"at byte {i}")
        self.assertEqual(parser.feed(self.flight[-1:]), self.expected)
        self.assertEqual(parser.received, self.flight)

    def test_splitAcrossRecords(self) -> None:
        """
        The same hello split across many records (as a client may send a
        large one), fed in chunks that do not line up with the records,
        parses the same.
        """
        message = handshakeMessageOf(self.flight)
        for recordSize in (1, 7, 100, 16384):
            flight = records(message, recordSize)
            parser = ClientHelloParser()
            results = [parser.feed(flight[i : i + 13]) for i in range(0, len(flight), 13)]
            self.assertEqual(results[-1], self.expected, f"records of {recordSize}")
            self.assertEqual(results[:-1], [None] * (len(results) - 1))

    def test_tls12OnlyClient(self) -> None:
        """
        A client that offers at most TLS 1.2 sends no supported_versions
        extension: the version comes from the legacy field.
        """
        context = clientContext()
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        hello = parse(firstFlight(context))
        assert hello is not None
        self.assertEqual(hello.versions, ("TLSv1.2",))

    def test_noServerName(self) -> None:
        """
        A client that connects without a name, or to an IP address, sends
        no server name.
        """
        context = clientContext()
        context.check_hostname = False
        for serverName in (None, "127.0.0.1", "::1"):
            hello = parse(firstFlight(context, serverName))
            assert hello is not None
            self.assertIsNone(hello.serverName, serverName)

    def test_serverNameNormalised(self) -> None:
        """
        The server name is lower-cased and loses a final dot, as DNS names
        compare.
        """
        hello = parse(firstFlight(clientContext(), "WWW.Example.COM."))
        assert hello is not None
        self.assertEqual(hello.serverName, "www.example.com")

    def test_resumptionOffered(self) -> None:
        """
        A TLS 1.3 client that resumes with a ticket offers a pre-shared key;
        it offers no early data (the ticket allows none).
        """
        ca = trustme.CA()
        context = clientContext(ca)
        session = sessionFromHandshake(ca, context)
        hello = parse(firstFlight(context, session=session))
        assert hello is not None
        self.assertEqual((hello.resumptionOffered, hello.earlyDataOffered), (True, False))


class BuiltClientHelloTests(SynchronousTestCase):
    """
    Well-formed ClientHellos with what Python's client never sends.
    """

    def test_earlyDataOffered(self) -> None:
        """
        A hello with pre_shared_key and early_data extensions says the
        client offered resumption and 0-RTT data.
        """
        hello = parse(records(helloMessage([
            serverNameExtension((0, b"example.com")),
            versionsExtension(0x0304),
            extension(42),
            extension(41, b"\x00" * 40),
        ])))
        self.assertEqual(
            hello,
            ClientHello(serverName="example.com", versions=("TLSv1.3",),
                        resumptionOffered=True, earlyDataOffered=True),
        )

    def test_whatFollowsTheHelloIsNotParsed(self) -> None:
        """
        A client offering 0-RTT sends, right after its ClientHello and often
        in the same TCP segment, a ChangeCipherSpec record and its early
        application data: the hello is complete, whatever follows it, and
        every byte is kept.
        """
        hello = records(helloMessage([extension(42), extension(41, b"\x00" * 40)]))
        following = b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x05early"
        parser = ClientHelloParser()
        result = parser.feed(hello + following)
        assert result is not None
        self.assertTrue(result.earlyDataOffered)
        self.assertEqual(parser.received, hello + following)
        parser = ClientHelloParser()
        self.assertIsNone(parser.feed(hello[:-1]))
        self.assertIsNotNone(parser.feed(hello[-1:] + following + b"\xff" * 70000))

    def test_greaseIsIgnored(self) -> None:
        """
        GREASE values (RFC 8701) in the supported versions are skipped, and
        GREASE extensions do not get in the way of the real ones.
        """
        hello = parse(records(helloMessage([
            extension(0x0A0A),
            versionsExtension(0x3A3A, 0x0304, 0xFAFA, 0x0303),
            extension(0xDADA, b"\x00"),
            serverNameExtension((0, b"example.com")),
            alpnExtension(b"h2"),
        ])))
        self.assertEqual(
            hello,
            ClientHello(serverName="example.com", alpnProtocols=("h2",),
                        versions=("TLSv1.3", "TLSv1.2")),
        )

    def test_unknownVersion(self) -> None:
        """
        A version tlsreply has no name for is shown in hexadecimal.
        """
        hello = parse(records(helloMessage([versionsExtension(0x7F1C, 0x0304)])))
        assert hello is not None
        self.assertEqual(hello.versions, ("0x7f1c", "TLSv1.3"))

    def test_noExtensions(self) -> None:
        """
        A hello without any extensions (as SSL 3.0 clients sent them) has
        the legacy version and nothing else.
        """
        self.assertEqual(
            parse(records(helloMessage(None, legacyVersion=0x0300))),
            ClientHello(versions=("SSLv3",)),
        )

    def test_serverNameOfAnotherType(self) -> None:
        """
        Only a host_name entry (type 0) of the server_name list counts.
        """
        self.assertEqual(
            parse(records(helloMessage([
                serverNameExtension((1, b"other"), (0, b"example.com"))
            ]))),
            ClientHello(serverName="example.com", versions=("TLSv1.2",)),
        )
        self.assertEqual(
            parse(records(helloMessage([serverNameExtension((1, b"other"))]))),
            ClientHello(versions=("TLSv1.2",)),
        )


class NotAClientHelloTests(SynchronousTestCase):
    """
    Bytes that are not (the start of) a well-formed ClientHello are
    refused as early as possible, and nothing is lost: every byte stays in
    C{received} for OpenSSL to reject with its own reason.
    """

    def assertRefused(self, data: bytes, reason: str) -> None:
        """
        Feeding C{data} raises L{NotAClientHello} with C{reason}, and the
        parser still holds every byte.
        """
        parser = ClientHelloParser()
        with self.assertRaises(NotAClientHello) as caught:
            parser.feed(data)
        self.assertIn(reason, str(caught.exception))
        self.assertEqual(parser.received, data)

    def test_nothingYet(self) -> None:
        """
        No bytes, or a partial record header, is no verdict yet.
        """
        self.assertIsNone(parse(b""))
        self.assertIsNone(parse(b"\x16\x03"))

    def test_garbage(self) -> None:
        """
        Plain-text protocols and random bytes are refused at their first
        byte.
        """
        for data in (b"G", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"SSH-2.0-OpenSSH_9.6\r\n",
                     b"\x00" * 10, bytes(range(256))):
            self.assertRefused(data, "not a TLS handshake record")

    def test_sslv2Hello(self) -> None:
        """
        An SSLv2-style ClientHello (a two-byte length with the high bit set,
        as very old clients sent) is not a TLS handshake record.
        """
        challenge = bytes(16)
        body = b"\x01\x03\x01" + struct.pack(">HHH", 3, 0, len(challenge)) + b"\x00\x00\x2f"
        self.assertRefused(
            struct.pack(">H", 0x8000 | len(body + challenge)) + body + challenge,
            "not a TLS handshake record",
        )

    def test_otherRecords(self) -> None:
        """
        An alert, application data, or a record with a major version other
        than 3 is refused, also where the rest of a hello split across
        records should be.
        """
        self.assertRefused(b"\x15\x03\x03\x00\x02\x02\x28", "not a TLS handshake record")
        self.assertRefused(b"\x17\x03\x03\x00\x01x", "not a TLS handshake record")
        self.assertRefused(b"\x16\x02\x00\x00\x01\x01", "not a TLS handshake record")
        firstHalf = records(helloMessage([]), 20)[:25]
        self.assertIsNone(parse(firstHalf))
        self.assertRefused(firstHalf + b"\x15", "not a TLS handshake record")

    def test_otherHandshakeMessage(self) -> None:
        """
        A handshake message other than a ClientHello (a ServerHello) is
        refused once the record that starts it is in.
        """
        self.assertRefused(records(helloMessage([], kind=2)), "not a ClientHello")
        self.assertRefused(records(helloMessage([], kind=2), 4), "not a ClientHello")

    def test_oversizedHello(self) -> None:
        """
        A ClientHello announced larger than L{MAXIMUM_HELLO_SIZE} is
        refused as soon as its length is read, before its bytes arrive.
        """
        header = b"\x01" + (MAXIMUM_HELLO_SIZE + 1).to_bytes(3, "big")
        self.assertRefused(records(header + bytes(100)), "ClientHello too large")

    def test_oversizedRecord(self) -> None:
        """
        A record longer than TLS allows, or empty, is refused at its header.
        """
        self.assertRefused(b"\x16\x03\x01" + struct.pack(">H", 16384 + 2049),
                           "bad record length")
        self.assertRefused(b"\x16\x03\x01\x00\x00", "bad record length")

    def test_tooManyBytes(self) -> None:
        """
        A client cannot make the parser hold more than a little over
        L{MAXIMUM_HELLO_SIZE} bytes: a hello trickled in one-byte records
        is refused once that much has arrived without completing it.
        """
        message = b"\x01" + MAXIMUM_HELLO_SIZE.to_bytes(3, "big") + bytes(MAXIMUM_HELLO_SIZE)
        flight = records(message, 1)
        parser = ClientHelloParser()
        with self.assertRaises(NotAClientHello) as caught:
            for offset in range(0, len(flight), 6000):
                self.assertIsNone(parser.feed(flight[offset : offset + 6000]))
        self.assertIn("ClientHello too large", str(caught.exception))
        self.assertLessEqual(len(parser.received), MAXIMUM_HELLO_SIZE + 1024 + 6000)

    def test_truncatedInside(self) -> None:
        """
        A hello whose inner lengths run past its end is refused.
        """
        message = helloMessage([serverNameExtension((0, b"example.com"))])
        # Claim a longer server name than there is.
        broken = message.replace(vector(2, b"example.com"), b"\x00\x40example.com")
        self.assertRefused(records(broken), "truncated ClientHello")
        body = b"\x03\x03" + bytes(32) + b"\x20"  # a session ID that is not there
        self.assertRefused(records(b"\x01" + vector(3, body)), "truncated ClientHello")


class ScanClientHelloTests(SynchronousTestCase):
    """
    L{scanClientHello}, the quick look the socket path takes at every
    connection's first bytes: the server name and the 0-RTT offer, or how
    many bytes the hello still needs, agreeing with the full parser.
    """

    def scan(self, data: bytes, length: int | None = None) -> tuple[int, str | None, bool]:
        buffer = bytearray(data) + bytearray(64)  # junk after the bytes given
        return scanClientHello(buffer, len(data) if length is None else length)

    def test_agreesWithTheParserOnRealHellos(self) -> None:
        """
        On Python's hellos (TLS 1.3 and 1.2 clients, with and without a
        name, mixed case and a trailing dot), the scan finds the name and
        the early-data offer the full parser finds.
        """
        tls12 = clientContext()
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        for context in (clientContext(), tls12):
            for name in ("example.com", "Mixed.Case.Example.", None):
                flight = firstFlight(context, name)
                hello = parse(flight)
                assert hello is not None
                self.assertEqual(
                    self.scan(flight), (0, hello.serverName, hello.earlyDataOffered)
                )

    def test_earlyDataOffered(self) -> None:
        """
        An early_data extension (after a pre_shared_key offer) is noted.
        """
        flight = records(helloMessage([
            serverNameExtension((0, b"example.com")),
            extension(42),
            extension(41, b"\x00" * 40),
        ]))
        self.assertEqual(self.scan(flight), (0, "example.com", True))

    def test_incompleteSaysHowManyBytesTheHelloNeeds(self) -> None:
        """
        Until the whole hello has arrived the scan asks for more: first for
        the record and handshake headers, then for the hello's full length.
        """
        flight = firstFlight(clientContext())
        self.assertEqual(self.scan(flight, 0)[0], 5)
        self.assertEqual(self.scan(flight, 3)[0], 5)
        self.assertEqual(self.scan(flight, 7)[0], 9)
        self.assertEqual(self.scan(flight, 100)[0], len(flight))
        self.assertEqual(self.scan(flight, len(flight) - 1)[0], len(flight))

    def test_helloAcrossRecordsIsLeftToTheParser(self) -> None:
        """
        A hello split into several records is for L{ClientHelloParser}.
        """
        flight = records(helloMessage([serverNameExtension((0, b"a.test"))]), size=10)
        self.assertEqual(self.scan(flight)[0], SPANS_RECORDS)

    def test_whatCannotBeAHelloIsSaidAtOnce(self) -> None:
        """
        Plain text, another record type, an oversized record header and
        another handshake message are not hellos, from the first byte that
        shows it (so that OpenSSL answers them at once).
        """
        self.assertEqual(self.scan(b"G")[0], NOT_A_HELLO)
        self.assertEqual(self.scan(b"\x16\x02")[0], NOT_A_HELLO)
        self.assertEqual(self.scan(b"\x16\x03\x01\xff\xff")[0], NOT_A_HELLO)
        self.assertEqual(self.scan(b"\x16\x03\x01\x00\x00")[0], NOT_A_HELLO)
        self.assertEqual(self.scan(records(helloMessage([], kind=2)))[0], NOT_A_HELLO)

    def test_malformedExtensionsAreNotAHello(self) -> None:
        """
        Extension lengths that overrun the hello make it not a hello, for
        OpenSSL to refuse, never an exception.
        """
        overrun = struct.pack(">HH", 0, 200) + b"\x00" * 10  # says 200, has 10
        self.assertEqual(self.scan(records(helloMessage([overrun])))[0], NOT_A_HELLO)
        halfHeader = b"\x00\x2a\x00"  # three bytes of a four-byte header
        self.assertEqual(self.scan(records(helloMessage([halfHeader])))[0], NOT_A_HELLO)

    def test_unprintableNameIsEscaped(self) -> None:
        """
        Control characters and backslashes in a server name are escaped,
        as the full parser does.
        """
        flight = records(helloMessage([serverNameExtension((0, b"a\\b\x1b[31m"))]))
        hello = parse(flight)
        assert hello is not None
        self.assertEqual(self.scan(flight)[1], hello.serverName)
        self.assertEqual(hello.serverName, "a\\x5cb\\x1b[31m")

    def test_moreBytesNeededShrinksGeometrically(self) -> None:
        """
        For a hello in one-byte records, the parser's lower bound on the
        bytes still to come lets a reader that waits for them finish in few
        rounds, however the hello is cut.
        """
        flight = records(helloMessage([serverNameExtension((0, b"example.com"))]), size=1)
        parser = ClientHelloParser()
        fed = 0
        rounds = 0
        hello = None
        while hello is None:
            step = max(6, parser.moreBytesNeeded)
            hello = parser.feed(flight[fed : fed + step])
            fed += step
            rounds += 1
        self.assertEqual(hello.serverName, "example.com")
        self.assertLess(rounds, 40)

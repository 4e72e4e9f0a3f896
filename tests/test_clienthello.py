"""
Tests for L{tlsreply.clienthello.parser}, the parser that reads a client's
ClientHello before OpenSSL does, and for what it reads
(L{tlsreply.clienthello.offered}).

Real ClientHellos come from Python's C{ssl} over memory BIOs; malformed and
unusual ones (GREASE, early data, SSLv2-style, post-quantum groups, the
JA4 specification's and Salesforce's JA3 examples) are built byte by byte.
"""

from __future__ import annotations

import ssl
import struct
from collections.abc import Sequence
from dataclasses import replace

import trustme
from twisted.trial.unittest import SynchronousTestCase

from tlsreply.clienthello._ciphersuitenames import CIPHER_SUITES
from tlsreply.clienthello.names import GREASE_VALUES
from tlsreply.clienthello.offered import ClientHello, OfferedCodes
from tlsreply.clienthello.parser import (
    MAXIMUM_HELLO_SIZE,
    NOT_A_HELLO,
    SPANS_RECORDS,
    ClientHelloParser,
    NotAClientHello,
    scanClientHello,
)
from tlsreply.clienthello.peek import HelloPeek
from tlsreply.testing import inmemory

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
    What a Python C{ssl} client sends first, for C{example.com} unless
    told otherwise.
    """
    return inmemory.firstFlight(context, serverName, session)


def sessionFromHandshake(ca: trustme.CA, context: ssl.SSLContext) -> ssl.SSLSession:
    """
    Complete a TLS 1.3 handshake in memory with a Python C{ssl} server, and
    return the session (with its ticket) that the client keeps.
    """
    serverContext = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("example.com").configure_cert(serverContext)
    session = inmemory.handshakeInMemory(context, serverContext, "example.com").session
    assert session is not None
    return session


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


def codeList(codes: Sequence[int]) -> bytes:
    """
    Two-byte values, one after another.
    """
    return b"".join(code.to_bytes(2, "big") for code in codes)


def groupsExtension(*groups: int) -> bytes:
    """
    A supported_groups extension.
    """
    return extension(10, vector(2, codeList(groups)))


def signaturesExtension(*schemes: int) -> bytes:
    """
    A signature_algorithms extension.
    """
    return extension(13, vector(2, codeList(schemes)))


def keyShareExtension(*shares: tuple[int, int]) -> bytes:
    """
    A client's key_share extension: (group, key size) entries, with keys
    of zeros.
    """
    return extension(
        51, vector(2, b"".join(codeList([g]) + vector(2, bytes(n)) for g, n in shares))
    )


def helloMessage(
    extensions: list[bytes] | None = None,
    legacyVersion: int = 0x0303,
    kind: int = 1,
    cipherSuites: Sequence[int] = (0x1301, 0xC02B),
    compressionMethods: bytes = b"\x00",
) -> bytes:
    """
    A handshake message (a ClientHello unless C{kind} says otherwise) with
    these extensions, or with no extensions block at all for L{None}.
    """
    body = (
        legacyVersion.to_bytes(2, "big")
        + bytes(32)
        + vector(1, b"")
        + vector(2, codeList(cipherSuites))
        + vector(1, compressionMethods)
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


def parseWhole(data: bytes) -> ClientHello:
    """
    Parse C{data}, which holds a whole ClientHello.
    """
    hello = parse(data)
    assert hello is not None
    return hello


def summary(hello: ClientHello | None) -> ClientHello | None:
    """
    C{hello} without its code points: the five fields read for the server
    itself, to compare with a L{ClientHello} written out in a test.
    """
    return None if hello is None else replace(hello, codes=OfferedCodes())


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
        self.assertEqual(summary(parser.feed(self.flight)), self.expected)
        self.assertEqual(parser.received, self.flight)

    def test_byteByByte(self) -> None:
        """
        Fed one byte at a time, the parser asks for more until the last
        byte, then gives the same hello.
        """
        parser = ClientHelloParser()
        for i in range(len(self.flight) - 1):
            self.assertIsNone(parser.feed(self.flight[i : i + 1]), f"at byte {i}")
        self.assertEqual(parser.feed(self.flight[-1:]), parse(self.flight))
        self.assertEqual(parser.received, self.flight)

    def test_splitAcrossRecords(self) -> None:
        """
        The same hello split across many records (as a client may send a
        large one), fed in chunks that do not line up with the records,
        parses the same.
        """
        message = handshakeMessageOf(self.flight)
        whole = parse(self.flight)
        for recordSize in (1, 7, 100, 16384):
            flight = records(message, recordSize)
            parser = ClientHelloParser()
            results = [parser.feed(flight[i : i + 13]) for i in range(0, len(flight), 13)]
            self.assertEqual(results[-1], whole, f"records of {recordSize}")
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
            summary(hello),
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
            summary(hello),
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
            summary(parse(records(helloMessage(None, legacyVersion=0x0300)))),
            ClientHello(versions=("SSLv3",)),
        )

    def test_serverNameOfAnotherType(self) -> None:
        """
        Only a host_name entry (type 0) of the server_name list counts.
        """
        self.assertEqual(
            summary(parse(records(helloMessage([
                serverNameExtension((1, b"other"), (0, b"example.com"))
            ])))),
            ClientHello(serverName="example.com", versions=("TLSv1.2",)),
        )
        self.assertEqual(
            summary(parse(records(helloMessage([serverNameExtension((1, b"other"))])))),
            ClientHello(versions=("TLSv1.2",)),
        )

    def test_emptyServerNameIsNone(self) -> None:
        """
        An empty host name, or one of dots only (which OpenSSL accepts),
        asks for no name: the parser and the scan both read L{None}, as
        for a hello without server_name.
        """
        for name in (b"", b".", b".."):
            flight = records(helloMessage([serverNameExtension((0, name))]))
            self.assertEqual(summary(parse(flight)), ClientHello(versions=("TLSv1.2",)))
            self.assertEqual(scanClientHello(flight, len(flight)), (0, None, False))

    def test_scanReadsTheServerNameAsTheParserDoes(self) -> None:
        """
        The scan reads a server_name extension as the parser does: the
        first host_name entry, even after another type; nothing from a
        name longer than its list; the last of two extensions.
        """
        for extensions in (
            [serverNameExtension((1, b"other"), (0, b"example.com"))],
            [extension(0, b"\x00\x08\x00\x00\x09example.com")],
            [serverNameExtension((0, b"a.test")), serverNameExtension((0, b"b.test"))],
        ):
            flight = records(helloMessage(extensions))
            hello = parseWhole(flight)
            self.assertEqual(scanClientHello(flight, len(flight)), (0, hello.serverName, False))


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
        A record longer than TLS allows (2^14 bytes before encryption), or
        empty, is refused at its header, also after part of a hello.
        """
        self.assertRefused(b"\x16\x03\x01" + struct.pack(">H", 16384 + 2049),
                           "bad record length")
        self.assertRefused(b"\x16\x03\x01" + struct.pack(">H", 16384 + 1),
                           "bad record length")
        firstFragment = records(helloMessage([]), 20)[:25]
        self.assertRefused(firstFragment + b"\x16\x03\x01\x40\x01", "bad record length")
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
        A hello whose framing runs past its end is refused: a session ID,
        cipher suites or compression methods that are not there, an
        extensions block longer than the hello, an extension longer than
        the block, half an extension header. (Malformed extension bodies
        are another matter: see L{MalformedExtensionBodyTests}.)
        """
        start = b"\x03\x03" + bytes(32)
        for body in (
            start + b"\x20",  # a session ID that is not there
            start + b"\x00\x00\x10\x13\x01",  # 16 bytes of cipher suites, 2 sent
            start + b"\x00\x00\x02\x13\x01\x02\x00",  # 2 compression methods, 1 sent
            start + b"\x00\x00\x02\x13\x01\x01\x00\x00",  # half an extensions length
            start + b"\x00\x00\x02\x13\x01\x01\x00\x00\x08" + extension(23),
            start + b"\x00\x00\x02\x13\x01\x01\x00" + vector(2, b"\x00\x17\x00\x05ab"),
            start + b"\x00\x00\x02\x13\x01\x01\x00" + vector(2, b"\x00\x17\x00"),
        ):
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

    def test_moreBytesNeededStopsAtEachRecordHeader(self) -> None:
        """
        For a hello split across records, a reader that waits for the
        parser's C{moreBytesNeeded} bytes before feeding again stops once
        per record: where the header after it is whole (so that a record of
        another type would be seen at once), or, for the record that
        completes the hello (and the first, which may hold the handshake
        header), at its end.
        """
        flight = records(helloMessage([serverNameExtension((0, b"example.com"))]), size=10)
        boundaries = []
        offset = 0
        while offset < len(flight):
            offset += 5 + int.from_bytes(flight[offset + 3 : offset + 5], "big")
            boundaries.append(offset)
        # The first record may hold the handshake header: its end too.
        expected = [5, boundaries[0]] + [end + 5 for end in boundaries[:-1]]
        expected.append(boundaries[-1])
        parser = ClientHelloParser()
        fed = 0
        stops = []
        hello = None
        while hello is None:
            step = parser.moreBytesNeeded
            hello = parser.feed(flight[fed : fed + step])
            fed += step
            stops.append(fed)
        self.assertEqual(hello.serverName, "example.com")
        self.assertEqual(stops, expected)

    def test_moreBytesNeededWithinARecord(self) -> None:
        """
        Part of a record in, the parser waits for the rest of it and the
        next header; part of a header in, for the rest of the header.
        """
        flight = records(helloMessage([serverNameExtension((0, b"example.com"))]), size=10)
        parser = ClientHelloParser()
        self.assertEqual(parser.moreBytesNeeded, 5)
        self.assertIsNone(parser.feed(flight[:3]))
        self.assertEqual(parser.moreBytesNeeded, 2)
        self.assertIsNone(parser.feed(flight[3:8]))
        # The first record gives the handshake header: its end is enough.
        self.assertEqual(parser.moreBytesNeeded, 7)
        self.assertIsNone(parser.feed(flight[8:27]))
        # The second record, 7 of its 10 bytes in, cannot complete it.
        self.assertEqual(parser.moreBytesNeeded, 3 + 5)


class HelloPeekTests(SynchronousTestCase):
    """
    L{HelloPeek}, the socket path's look at the bytes in the socket: TLS
    starts once the hello is whole or cannot be one; meanwhile it asks to
    be woken no later than the next record header.
    """

    def look(self, peek: HelloPeek, data: bytes) -> int:
        buffer = bytearray(data) + bytearray(b"\xff" * 64)  # junk after the bytes
        return peek.look(buffer, len(data))

    def test_wholeHello(self) -> None:
        """
        A whole hello in one record: TLS starts, with its name and 0-RTT
        offer; every field only when asked for.
        """
        flight = records(helloMessage([serverNameExtension((0, b"A.Test.")), extension(42)]))
        for wantHello in (False, True):
            peek = HelloPeek(wantHello)
            self.assertEqual(self.look(peek, flight), 0)
            self.assertEqual((peek.serverName, peek.earlyDataOffered), ("a.test", True))
            self.assertEqual(peek.clientHello, parse(flight) if wantHello else None)

    def test_partOfOneRecord(self) -> None:
        """
        Part of a hello in one record: wait for the rest of that record's
        hello (nothing can come between).
        """
        flight = records(helloMessage([serverNameExtension((0, b"a.test"))]))
        peek = HelloPeek(False)
        self.assertEqual(self.look(peek, flight[:3]), 5)
        self.assertEqual(self.look(peek, flight[:20]), len(flight))
        self.assertEqual(self.look(peek, flight), 0)
        self.assertEqual(peek.serverName, "a.test")

    def test_acrossRecords(self) -> None:
        """
        A hello across records: after each record, wait for the next
        header, no further; the last record completes it.
        """
        flight = records(helloMessage([serverNameExtension((0, b"a.test"))]), size=30)
        peek = HelloPeek(False)
        self.assertEqual(self.look(peek, flight[:35]), 40)
        self.assertEqual(self.look(peek, flight[:40]), 75)
        self.assertEqual(self.look(peek, flight), 0)
        self.assertEqual(peek.serverName, "a.test")

    def test_interruptedAtTheNextHeader(self) -> None:
        """
        A record of another type, or an oversized one, after part of a
        hello: TLS starts (OpenSSL answers it) as soon as its header is in,
        with no name.
        """
        fragment = records(helloMessage([serverNameExtension((0, b"a.test"))]), size=30)[:35]
        for header in (b"\x17\x03\x03\x00\x00", b"\x15\x03\x03\x00\x02",
                       b"\x16\x03\x03\x40\x01", b"\x16\x03\x03\xff\xff"):
            peek = HelloPeek(True)
            self.assertEqual(self.look(peek, fragment), 40)
            self.assertEqual(self.look(peek, fragment + header), 0)
            self.assertEqual((peek.serverName, peek.clientHello), (None, None))

    def test_notAHello(self) -> None:
        """
        Bytes that are no hello start TLS at once, with no name.
        """
        peek = HelloPeek(True)
        self.assertEqual(self.look(peek, b"GET / HTTP/1.1\r\n"), 0)
        self.assertIsNone(peek.serverName)


# The JA4 specification's example ("Example" and "Raw Output" in FoxIO's
# technical_details/JA4.md), with the bodies a client would send.
SPEC_JA4 = "t13d1516h2_8daaf6152771_e5627efa2ab1"
SPEC_JA4_RAW = (
    "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"
    "_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01"
    "_0403,0804,0401,0503,0805,0501,0806,0601"
)


def specExampleHello(grease: bool = False) -> bytes:
    """
    A ClientHello with the cipher suites, extensions (in that order) and
    signature algorithms of the JA4 specification's example; with
    C{grease}, also the GREASE values a Chrome client adds, which change
    nothing.
    """
    g = [0x0A0A] if grease else []
    ciphers = [*g, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9,
               0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
    extensions = [
        *[extension(0x1A1A)] * grease,
        extension(0x001B, vector(1, b"\x00\x02")),  # compress_certificate: brotli
        serverNameExtension((0, b"example.com")),
        keyShareExtension(*[(0x2A2A, 1)] * grease, (0x001D, 32)),
        alpnExtension(b"h2", b"http/1.1"),
        extension(0x4469, vector(2, vector(1, b"h2"))),  # application_settings
        extension(0x0017),
        extension(0x002D, vector(1, b"\x01")),
        signaturesExtension(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601),
        extension(0x0005, b"\x01\x00\x00\x00\x00"),
        extension(0x0023),
        extension(0x0012),
        versionsExtension(*g, 0x0304, 0x0303),
        extension(0xFF01, b"\x00"),
        extension(0x000B, vector(1, b"\x00")),
        groupsExtension(*g, 0x001D, 0x0017, 0x0018),
        extension(0x0015, bytes(100)),
        *[extension(0xFAFA, b"\x00")] * grease,
    ]
    return records(helloMessage(extensions, cipherSuites=ciphers))


class FingerprintTests(SynchronousTestCase):
    """
    JA4 and JA3 from ClientHello bytes, against the published examples.
    """

    def test_ja4SpecificationExample(self) -> None:
        """
        The JA4 specification's example hello has the specification's JA4
        and JA4_r, with or without the GREASE values Chrome adds.
        """
        for grease in (False, True):
            hello = parseWhole(specExampleHello(grease))
            self.assertEqual((hello.ja4, hello.ja4Raw), (SPEC_JA4, SPEC_JA4_RAW), grease)

    def test_ja3SalesforceExample(self) -> None:
        """
        A TLS 1.0 hello with the values of Salesforce's JA3 example (cipher
        suites, then server_name, supported_groups and ec_point_formats)
        has Salesforce's JA3.
        """
        hello = parseWhole(records(helloMessage(
            [
                serverNameExtension((0, b"example.com")),
                groupsExtension(23, 24, 25),
                extension(11, vector(1, b"\x00")),
            ],
            legacyVersion=0x0301,
            cipherSuites=[47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4],
        )))
        self.assertEqual(
            hello.ja3Text,
            "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0",
        )
        self.assertEqual(hello.ja3, "ada70206e40642a3e4461f35503241d5")

    def test_ja3SalesforceExampleWithoutExtensions(self) -> None:
        """
        Salesforce's example of a hello without extensions.
        """
        hello = parseWhole(records(helloMessage(
            None, legacyVersion=0x0301,
            cipherSuites=[4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99],
        )))
        self.assertEqual(hello.ja3Text, "769,4-5-10-9-100-98-3-6-19-18-99,,,")
        self.assertEqual(hello.ja3, "de350869b8c85de67a350c8d186f11e6")

    def test_ja3IgnoresGrease(self) -> None:
        """
        GREASE in cipher suites, extensions and groups leaves JA3 as it is,
        and the version is the legacy one, not supported_versions'.
        """
        hello = parseWhole(specExampleHello(grease=True))
        self.assertEqual(hello.ja3, parseWhole(specExampleHello()).ja3)
        self.assertTrue(hello.ja3Text.startswith("771,4865-4866-4867-49195-"), hello.ja3Text)
        self.assertTrue(hello.ja3Text.endswith(",29-23-24,0"), hello.ja3Text)


class RealClientHelloOfferTests(SynchronousTestCase):
    """
    What Python's C{ssl} client offers, as the new fields show it.
    """

    def test_cipherSuitesInOpenSSLsOrder(self) -> None:
        """
        The cipher suites are the client context's, by IANA name, in its
        order, then the renegotiation signalling value OpenSSL adds.
        """
        context = clientContext()
        hello = parseWhole(firstFlight(context))
        self.assertEqual(
            hello.offeredCipherSuites,
            tuple(CIPHER_SUITES[cipher["id"] & 0xFFFF] for cipher in context.get_ciphers())
            + ("TLS_EMPTY_RENEGOTIATION_INFO_SCSV",),
        )
        self.assertEqual(hello.offeredCompressionMethods, ("NULL",))

    def test_extensionsGroupsSignatures(self) -> None:
        """
        The extensions, groups, key shares and signature algorithms have
        IANA names (none unknown), in the client's order.
        """
        context = clientContext()
        context.set_alpn_protocols(["h2"])
        hello = parseWhole(firstFlight(context))
        self.assertEqual(hello.offeredExtensions[0], "server_name")
        for name in ("application_layer_protocol_negotiation", "supported_versions",
                     "key_share", "signature_algorithms", "supported_groups"):
            self.assertIn(name, hello.offeredExtensions)
        self.assertIn("x25519", hello.offeredGroups)
        self.assertIn("secp256r1", hello.offeredGroups)
        self.assertTrue(hello.offeredKeyShares)
        self.assertLessEqual(set(hello.offeredKeyShares), set(hello.offeredGroups))
        self.assertIn("ecdsa_secp256r1_sha256", hello.offeredSignatureAlgorithms)
        self.assertIn("rsa_pss_rsae_sha256", hello.offeredSignatureAlgorithms)
        for names in (hello.offeredExtensions, hello.offeredGroups,
                      hello.offeredKeyShares, hello.offeredSignatureAlgorithms,
                      hello.offeredCipherSuites):
            self.assertEqual([n for n in names if n.startswith(("0x", "GREASE"))], [])

    def test_fingerprints(self) -> None:
        """
        JA4 says TLS 1.3, a domain, as many cipher suites and extensions as
        were sent, and h2; JA3 starts with the legacy version, 771.
        """
        context = clientContext()
        context.set_alpn_protocols(["h2", "http/1.1"])
        hello = parseWhole(firstFlight(context))
        self.assertRegex(hello.ja4, r"^t13d\d{4}h2_[0-9a-f]{12}_[0-9a-f]{12}$")
        self.assertEqual(
            hello.ja4[4:8],
            f"{len(hello.offeredCipherSuites):02d}{len(hello.offeredExtensions):02d}",
        )
        self.assertTrue(hello.ja4Raw.startswith(hello.ja4[:10] + "_"))
        self.assertRegex(hello.ja3, r"^[0-9a-f]{32}$")
        self.assertTrue(hello.ja3Text.startswith("771,"), hello.ja3Text)

    def test_tls12AndAddressClients(self) -> None:
        """
        A TLS 1.2-only client is C{t12} in JA4 and sends no key share; a
        client connecting to an address sends no server name: C{i}.
        """
        tls12 = clientContext()
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        hello = parseWhole(firstFlight(tls12))
        self.assertTrue(hello.ja4.startswith("t12d"), hello.ja4)
        self.assertEqual(hello.offeredKeyShares, ())
        self.assertNotIn("supported_versions", hello.offeredExtensions)
        noName = clientContext()
        noName.check_hostname = False
        self.assertTrue(parseWhole(firstFlight(noName, "127.0.0.1")).ja4.startswith("t13i"))

    def test_sameClientSameFingerprint(self) -> None:
        """
        Two connections of the same client (fresh randoms and key shares)
        have the same fingerprints.
        """
        context = clientContext()
        first, second = (parseWhole(firstFlight(context)) for _ in range(2))
        self.assertEqual((first.ja4, first.ja3), (second.ja4, second.ja3))


class BuiltOfferTests(SynchronousTestCase):
    """
    What Python's client never sends: GREASE, post-quantum groups, unknown
    code points.
    """

    def test_chromeLikeHello(self) -> None:
        """
        GREASE values are marked where they were sent, hybrid post-quantum
        groups and key shares have IANA's names, and values without a name
        show as hex, in the client's order.
        """
        hello = parseWhole(records(helloMessage(
            [
                extension(0x3A3A),
                serverNameExtension((0, b"example.com")),
                groupsExtension(0x4A4A, 0x11EC, 0x001D, 0x0017, 0x11EB, 0x0201, 0x7777),
                keyShareExtension((0x4A4A, 1), (0x11EC, 1216), (0x001D, 32)),
                signaturesExtension(0x0403, 0x0804, 0x0905, 0x0F0F),
                extension(0x44CD, vector(2, vector(1, b"h2"))),
                extension(0xFE0D, bytes(200)),
                versionsExtension(0x6A6A, 0x0304, 0x0303),
                extension(0x9A9A, b"\x00"),
            ],
            cipherSuites=[0x5A5A, 0x1301, 0x1302, 0xCCA9, 0x00C8],
            compressionMethods=b"\x00\x01\x40\x99",
        )))
        self.assertEqual(
            hello.offeredCipherSuites,
            ("GREASE (0x5a5a)", "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
             "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "0x00c8"),
        )
        self.assertEqual(hello.offeredCompressionMethods, ("NULL", "DEFLATE", "LZS", "0x99"))
        self.assertEqual(
            hello.offeredExtensions,
            ("GREASE (0x3a3a)", "server_name", "supported_groups", "key_share",
             "signature_algorithms", "0x44cd", "encrypted_client_hello",
             "supported_versions", "GREASE (0x9a9a)"),
        )
        self.assertEqual(
            hello.offeredGroups,
            ("GREASE (0x4a4a)", "X25519MLKEM768", "x25519", "secp256r1",
             "SecP256r1MLKEM768", "MLKEM768", "0x7777"),
        )
        self.assertEqual(hello.offeredKeyShares, ("GREASE (0x4a4a)", "X25519MLKEM768", "x25519"))
        self.assertEqual(
            hello.offeredSignatureAlgorithms,
            ("ecdsa_secp256r1_sha256", "rsa_pss_rsae_sha256", "mldsa65", "0x0f0f"),
        )
        self.assertEqual(hello.versions, ("TLSv1.3", "TLSv1.2"))
        self.assertEqual(hello.ja4[:10], "t13d040700")
        self.assertEqual(hello.ja3Text, "771,4865-4866-52393-200,0-10-51-13-17613-65037-43,"
                                        "4588-29-23-4587-513-30583,")

    def test_codesAsSent(self) -> None:
        """
        C{codes} holds the values as the client sent them, GREASE included.
        """
        hello = parseWhole(specExampleHello(grease=True))
        self.assertEqual(hello.codes.cipherSuites[:2], (0x0A0A, 0x1301))
        self.assertEqual(hello.codes.extensions[:3], (0x1A1A, 0x001B, 0x0000))
        self.assertEqual(hello.codes.supportedVersions, (0x0A0A, 0x0304, 0x0303))
        self.assertEqual(hello.codes.keyShareGroups, (0x2A2A, 0x001D))
        self.assertEqual(hello.codes.ecPointFormats, (0,))
        self.assertEqual(hello.codes.alpnProtocols, (b"h2", b"http/1.1"))

    def test_namesAndFingerprintsOnDemand(self) -> None:
        """
        Parsing does not name anything or compute a fingerprint: that
        happens the first time a field is read, once.
        """
        hello = parseWhole(specExampleHello())
        self.assertEqual(set(vars(hello)) & {"offeredCipherSuites", "_ja4", "_ja3"}, set())
        self.assertIs(hello.offeredCipherSuites, hello.offeredCipherSuites)
        self.assertEqual(hello.ja4, SPEC_JA4)
        self.assertIn("_ja4", vars(hello))

    def test_equalityIncludesTheOffer(self) -> None:
        """
        Two hellos that differ only in what they offered are not equal.
        """
        one = parseWhole(records(helloMessage([], cipherSuites=[0x1301])))
        other = parseWhole(records(helloMessage([], cipherSuites=[0x1302])))
        self.assertEqual(summary(one), summary(other))
        self.assertNotEqual(one, other)

    def test_handBuiltHello(self) -> None:
        """
        A L{ClientHello} made without codes offers nothing.
        """
        hello = ClientHello(serverName="example.com")
        self.assertEqual(
            (hello.offeredCipherSuites, hello.offeredExtensions, hello.offeredGroups,
             hello.offeredSignatureAlgorithms, hello.offeredKeyShares,
             hello.offeredCompressionMethods),
            ((), (), (), (), (), ()),
        )


class BoundsTests(SynchronousTestCase):
    """
    A client cannot make the lists larger than the hello size limit allows,
    nor make the parse fail on their size.
    """

    def test_hugeCipherSuiteList(self) -> None:
        """
        A hello that fills L{MAXIMUM_HELLO_SIZE} with cipher suites has them
        all, JA4 counts 99 of them, and fingerprints are computed.
        """
        count = (MAXIMUM_HELLO_SIZE - 100) // 2
        codes = [code for code in range(0x0100, 0x9000) if code not in GREASE_VALUES][:count]
        message = helloMessage([], cipherSuites=codes)
        self.assertLessEqual(len(message) - 4, MAXIMUM_HELLO_SIZE)
        hello = parseWhole(records(message))
        self.assertEqual(len(hello.offeredCipherSuites), count)
        self.assertEqual(hello.ja4[:10], "t12i990000")
        self.assertEqual(len(hello.ja3Text.split(",")[1].split("-")), count)

    def test_hugeExtensionList(self) -> None:
        """
        So does a hello made of empty extensions.
        """
        count = (MAXIMUM_HELLO_SIZE - 100) // 4
        hello = parseWhole(records(helloMessage([extension(0x0100 + i) for i in range(count)])))
        self.assertEqual(len(hello.offeredExtensions), count)
        self.assertEqual(hello.ja4[:10], "t12i029900")

    def test_overTheLimit(self) -> None:
        """
        A hello one byte over the limit is refused before any list is read.
        """
        message = helloMessage([extension(0x0100, bytes(100))], cipherSuites=[0x1301] * 32767)
        self.assertGreater(len(message) - 4, MAXIMUM_HELLO_SIZE)
        with self.assertRaises(NotAClientHello):
            parse(records(message))


class MalformedExtensionBodyTests(SynchronousTestCase):
    """
    An extension body that does not parse gives nothing for what it
    carries, raises nothing, and loses nothing else the client offered.
    """

    def assertSurvives(self, kind: int, body: bytes) -> ClientHello:
        """
        A hello whose extension C{kind} has the malformed C{body}, placed
        between well-formed extensions (not of that kind): parsing and
        reading every field raise nothing, the extension is listed, and
        the well-formed ones are read.
        """
        others = {
            0: serverNameExtension((0, b"example.com")),
            16: alpnExtension(b"h2"),
            10: groupsExtension(0x11EC, 0x001D),
            13: signaturesExtension(0x0403),
            51: keyShareExtension((0x001D, 32)),
            43: versionsExtension(0x0304, 0x0303),
            11: extension(11, vector(1, b"\x00")),
        }
        extensions = [e for k, e in others.items() if k != kind]
        extensions.insert(3, extension(kind, body))
        hello = parseWhole(records(helloMessage(extensions)))
        for name in ("offeredCipherSuites", "offeredExtensions", "offeredGroups",
                     "offeredSignatureAlgorithms", "offeredKeyShares",
                     "offeredCompressionMethods", "ja4", "ja4Raw", "ja3", "ja3Text"):
            getattr(hello, name)
        self.assertEqual(len(hello.codes.extensions), len(others))
        self.assertEqual(hello.offeredCipherSuites,
                         ("TLS_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"))
        if kind != 0:
            self.assertEqual(hello.serverName, "example.com")
        if kind != 16:
            self.assertEqual(hello.alpnProtocols, ("h2",))
        if kind != 10:
            self.assertEqual(hello.offeredGroups, ("X25519MLKEM768", "x25519"))
        if kind != 13:
            self.assertEqual(hello.offeredSignatureAlgorithms, ("ecdsa_secp256r1_sha256",))
        if kind != 51:
            self.assertEqual(hello.offeredKeyShares, ("x25519",))
        if kind != 43:
            self.assertEqual(hello.versions, ("TLSv1.3", "TLSv1.2"))
        return hello

    def test_serverName(self) -> None:
        """
        A server name longer than its extension: no server name, and JA4
        still counts the extension (C{d}).
        """
        hello = self.assertSurvives(0, b"\x00\x0e\x00\x00\x40example.com")
        self.assertIsNone(hello.serverName)
        self.assertEqual(hello.ja4[3], "d")

    def test_alpn(self) -> None:
        """
        An ALPN list longer than its extension: no protocols, JA4's C{00}.
        """
        hello = self.assertSurvives(16, b"\x00\x10\x02h2")
        self.assertEqual((hello.alpnProtocols, hello.ja4[8:10]), ((), "00"))

    def test_groups(self) -> None:
        """
        A groups list longer than its extension: no groups.
        """
        hello = self.assertSurvives(10, b"\x00\x08\x00\x1d")
        self.assertEqual(hello.offeredGroups, ())
        self.assertTrue(hello.ja3Text.endswith(",,0"), hello.ja3Text)

    def test_signatureAlgorithms(self) -> None:
        """
        An empty body where a list belongs: no signature algorithms, and
        JA4 hashes the extensions alone.
        """
        hello = self.assertSurvives(13, b"")
        self.assertEqual(hello.offeredSignatureAlgorithms, ())
        self.assertEqual(hello.ja4Raw.count("_"), 2)

    def test_keyShare(self) -> None:
        """
        A key share whose key runs past the extension: no key shares.
        """
        hello = self.assertSurvives(51, b"\x00\x06\x00\x1d\x00\x20\x00\x00")
        self.assertEqual(hello.offeredKeyShares, ())

    def test_supportedVersions(self) -> None:
        """
        A versions list longer than its extension: no versions, and JA4's
        version is unknown (C{00}) rather than the legacy one.
        """
        hello = self.assertSurvives(43, b"\x08\x03\x04")
        self.assertEqual((hello.versions, hello.ja4[1:3]), ((), "00"))

    def test_pointFormats(self) -> None:
        """
        A point formats list longer than its extension: none, for JA3.
        """
        hello = self.assertSurvives(11, b"\x05\x00")
        self.assertTrue(hello.ja3Text.endswith(","), hello.ja3Text)

    def test_oddByteIgnored(self) -> None:
        """
        An odd byte at the end of a list of two-byte values, or bytes after
        the list, are ignored: the whole values are kept.
        """
        hello = self.assertSurvives(10, b"\x00\x05\x11\xec\x00\x1d\x00")
        self.assertEqual(hello.offeredGroups, ("X25519MLKEM768", "x25519"))
        hello = self.assertSurvives(13, b"\x00\x02\x04\x03\xff\xff")
        self.assertEqual(hello.offeredSignatureAlgorithms, ("ecdsa_secp256r1_sha256",))

    def test_scanStillAgreesOnWellFormedNames(self) -> None:
        """
        The server's quick scan and the parser agree on the name of a hello
        whose other extensions are malformed.
        """
        flight = records(helloMessage([
            serverNameExtension((0, b"example.com")),
            extension(10, b"\x00\x08\x00\x1d"),
            extension(16, b"\x00\x10\x02h2"),
        ]))
        buffer = bytearray(flight)
        self.assertEqual(scanClientHello(buffer, len(buffer)),
                         (0, parseWhole(flight).serverName, False))

"""
tlsreply's reading of the PROXY header (L{tlsreply.transport.proxyheader}) in
memory, and the escaping of what peers choose (L{tlsreply.connection.peertext}):
valid headers of every kind, cut every way; the spec's rules, each
refused with a reason; and, with random and mutated bytes
(C{hypothesis}), that the reading never raises, never logs a character
that is not printable, and believes only IP literals and ports from 0 to
65535. (Over real sockets: L{tests.test_proxywire}.)
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests import hypothesisprofiles  # noqa: F401  (the settings profile)
from tlsreply.connection.addresses import formatAddress
from tlsreply.connection.ending import Ending
from tlsreply.connection.peertext import escapeBytes, escapeText
from tlsreply.transport.proxyheader import (
    ProxyHeaderError,
    ProxyHeaderFactory,
    ProxyHeaderProtocol,
    V1HeaderParser,
    V2HeaderParser,
)

#: The connection's own addresses, in the memory transport.
OWN_PEER = IPv4Address("TCP", "10.9.8.7", 40000)
OWN_HOST = IPv4Address("TCP", "10.0.0.1", 4433)

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

# The suite's profile (bounded for CI, no deadline; make fuzz widens it).
examples = settings()


class Recorder(Protocol):
    """
    What the wrapped protocol saw: the bytes after the header, and why the
    connection was refused, if it was (as L{ClientHelloFirst} is told).
    """

    def __init__(self) -> None:
        self.received = b""
        self.refusals: list[str] = []

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def abort(self, why: Ending) -> None:
        self.assertKind(why)
        self.refusals.append(why.text)
        self.transport.abortConnection()  # type: ignore[union-attr]

    @staticmethod
    def assertKind(why: Ending) -> None:
        # A refused header is counted as such, whatever its text says.
        assert why.kind == "proxy_header", why


def connect() -> tuple[ProxyHeaderProtocol, Recorder, StringTransport]:
    """
    A L{ProxyHeaderProtocol} around a L{Recorder}, on a memory transport.
    """
    factory = ProxyHeaderFactory(Factory.forProtocol(Recorder))
    wrapper = factory.buildProtocol(OWN_PEER)
    assert isinstance(wrapper, ProxyHeaderProtocol)
    transport = StringTransport(hostAddress=OWN_HOST, peerAddress=OWN_PEER)
    wrapper.makeConnection(transport)
    recorder = wrapper.wrappedProtocol
    assert isinstance(recorder, Recorder)
    return wrapper, recorder, transport


def feed(
    data: bytes, cuts: Sequence[int] = ()
) -> tuple[ProxyHeaderProtocol, Recorder, StringTransport]:
    """
    Feed C{data} to a new connection, cut at C{cuts}.
    """
    wrapper, recorder, transport = connect()
    points = sorted({c for c in cuts if 0 < c < len(data)})
    for start, end in zip([0, *points], [*points, len(data)], strict=True):
        wrapper.dataReceived(data[start:end])
    return wrapper, recorder, transport


def v2Header(command: int, familyProtocol: int, addresses: bytes) -> bytes:
    return V2_SIGNATURE + bytes([0x20 | command, familyProtocol]) + struct.pack(
        "!H", len(addresses)
    ) + addresses


def isPrintable(text: str) -> bool:
    return all(0x20 <= ord(c) < 0x7F for c in text)


class ValidHeaderTests(SynchronousTestCase):
    """
    Each kind of header the spec defines gives the addresses it names, or
    the connection's own where it says so.
    """

    def assertPeer(self, header: bytes, peer: IAddress, host: IAddress | None = None) -> None:
        for cuts in ([], list(range(1, len(header)))):
            wrapper, recorder, transport = feed(header + b"\x16\x03\x01", cuts)
            self.assertEqual(recorder.refusals, [])
            self.assertEqual(recorder.received, b"\x16\x03\x01")
            self.assertEqual(wrapper.getPeer(), peer)
            if host is not None:
                self.assertEqual(wrapper.getHost(), host)
            self.assertFalse(transport.disconnecting)

    def test_v1(self) -> None:
        """
        TCP4 and TCP6 lines; IPv6 addresses in canonical form.
        """
        self.assertPeer(
            b"PROXY TCP4 198.51.100.7 192.0.2.1 5555 443\r\n",
            IPv4Address("TCP", "198.51.100.7", 5555),
            IPv4Address("TCP", "192.0.2.1", 443),
        )
        self.assertPeer(
            b"PROXY TCP6 2001:DB8:0::7 ::1 0 65535\r\n",
            IPv6Address("TCP", "2001:db8::7", 0),
            IPv6Address("TCP", "::1", 65535),
        )

    def test_v1Unknown(self) -> None:
        """
        C{UNKNOWN}, alone or with anything after it: the connection's own.
        """
        self.assertPeer(b"PROXY UNKNOWN\r\n", OWN_PEER, OWN_HOST)
        self.assertPeer(b"PROXY UNKNOWN what\x00ever 1\r\n", OWN_PEER, OWN_HOST)

    def test_v2(self) -> None:
        """
        TCP over IPv4 and IPv6 (canonical), a Unix path, with TLVs after.
        """
        self.assertPeer(
            v2Header(1, 0x11, bytes([198, 51, 100, 7, 192, 0, 2, 1]) + struct.pack("!HH", 5555, 443) + b"\x04\x00\x01x"),
            IPv4Address("TCP", "198.51.100.7", 5555),
        )
        six = socket.inet_pton(socket.AF_INET6, "2001:db8::7")
        self.assertPeer(
            v2Header(1, 0x21, six + six + struct.pack("!HH", 1, 2)),
            IPv6Address("TCP", "2001:db8::7", 1),
        )
        self.assertPeer(
            v2Header(1, 0x31, b"/run/a\n".ljust(108, b"\0") + b"/b".ljust(108, b"\0")),
            UNIXAddress(b"/run/a\n"),
        )

    def test_v2LocalAndUnspecified(self) -> None:
        """
        LOCAL (whatever address block follows) and the unspecified family
        or protocol: the connection's own.
        """
        for header in (
            v2Header(0, 0x00, b""),
            v2Header(0, 0x11, b"\x01" * 12),
            v2Header(0, 0x77, b""),
            v2Header(1, 0x00, b"junk"),
            v2Header(1, 0x10, b""),
        ):
            self.assertPeer(header, OWN_PEER, OWN_HOST)


class RefusedHeaderTests(SynchronousTestCase):
    """
    Headers that break the spec are refused, with the reason.
    """

    CASES = {
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 http\r\n": "destination port 'http'",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n": "source port '65536'",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1_0 1\r\n": "source port '1_0'",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 \xd9\xa1 1\r\n": "source port '\\xd9\\xa1'",
        b"PROXY TCP4 01.2.3.4 5.6.7.8 1 1\r\n": "source address '01.2.3.4'",
        b"PROXY TCP4 1.2.3.4 256.6.7.8 1 1\r\n": "destination address '256.6.7.8'",
        b"PROXY TCP6 1.2.3.4 ::1 1 1\r\n": "source address '1.2.3.4' is not an IPv6",
        b"PROXY TCP6 ::1 ::1 1\r\n": "5 fields",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 1\n": "a line feed without a carriage return in 'PROXY",
        b"PROXY\r\n": "protocol ''",
        b"PROXYTCP4 1.2.3.4 5.6.7.8 1 1\r\n": "starts 'PROXYTCP4'",
        b"PROXY tcp4 1.2.3.4 5.6.7.8 1 1\r\n": "protocol 'tcp4'",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 1" + b" " * 80 + b"\r\n": "no CRLF within 107",
        V2_SIGNATURE + b"\x10\x11\x00\x00": "version 1",
        V2_SIGNATURE + b"\x22\x11\x00\x00": "command 2",
        V2_SIGNATURE + b"\x21\x51\x00\x00": "address family 5",
        V2_SIGNATURE + b"\x21\x1f\x00\x00": "transport protocol 15",
        v2Header(1, 0x21, b"\x00" * 35): "35 bytes of addresses, where its family needs 36",
        v2Header(1, 0x31, b"\x00" * 215): "215 bytes",
        b"\x16\x03\x01\x00\xff": "no PROXY header: the connection starts '\\x16",
        b"\r\n\r\n\x00\r\nQUIX": "no PROXY header",
        b"PROX\x00": "no PROXY header: the connection starts 'PROX\\x00",
    }

    def test_refused(self) -> None:
        """
        Each is refused once, with its reason, printable; nothing reaches
        the protocol; the connection is aborted. Cut into single bytes, the
        same.
        """
        for header, reason in self.CASES.items():
            for cuts in ([], list(range(1, len(header)))):
                _, recorder, transport = feed(header + b"\x16\x03\x01", cuts)
                [refusal] = recorder.refusals
                self.assertIn("PROXY header", refusal)
                self.assertIn(reason, refusal)
                self.assertTrue(isPrintable(refusal), refusal)
                self.assertEqual(recorder.received, b"")
                self.assertTrue(transport.disconnecting)

    def test_parsersRaiseTheirError(self) -> None:
        """
        The parsers, used alone, raise L{ProxyHeaderError} (Twisted's
        C{InvalidProxyHeader}), never Python's own errors.
        """
        from twisted.protocols.haproxy._exceptions import InvalidProxyHeader

        self.assertTrue(issubclass(ProxyHeaderError, InvalidProxyHeader))
        with self.assertRaises(ProxyHeaderError):
            V1HeaderParser.parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 x 1")
        with self.assertRaises(ProxyHeaderError):
            V2HeaderParser.parse(b"short")

    def test_otherProtocolsLoggedHere(self) -> None:
        """
        A wrapped protocol that cannot be told why (not L{Abortable}) gets
        its connection aborted, and the reason is logged here, escaped.
        """
        from tests.support import captureLogEvents

        events = captureLogEvents(self)
        factory = ProxyHeaderFactory(Factory.forProtocol(Protocol))
        wrapper = factory.buildProtocol(OWN_PEER)
        transport = StringTransport(hostAddress=OWN_HOST, peerAddress=OWN_PEER)
        wrapper.makeConnection(transport)
        wrapper.dataReceived(b"PROXY TCP4 1.2.3.4\x1b 5.6.7.8 1 1\r\n")
        self.assertTrue(transport.disconnecting)
        [event] = [e for e in events if "why" in e]
        self.assertEqual(event["peer"], "10.9.8.7:40000")
        self.assertIn("source address '1.2.3.4\\x1b'", event["why"])


#: Random bytes, sometimes after a signature so that the parsers see them.
_starts = st.sampled_from([b"", b"PROXY ", b"PROXY TCP4 ", b"PROXY TCP6 ", V2_SIGNATURE, V2_SIGNATURE + b"\x21"])
randomConnections = st.tuples(_starts, st.binary(max_size=300)).map(lambda t: t[0] + t[1])
cutPoints = st.lists(st.integers(min_value=1, max_value=400), max_size=12)


def canonicalIPv6(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """
    An IPv6 address as C{accept} gives a peer's (RFC 5952, an IPv4-mapped
    one as C{::ffff:192.0.2.1}).
    """
    return socket.inet_ntop(socket.AF_INET6, address.packed)


def validHeaders() -> st.SearchStrategy[tuple[bytes, IAddress | None]]:
    """
    Valid headers of every kind, with the peer each names (L{None}: the
    connection's own).
    """
    ports = st.integers(min_value=0, max_value=65535)
    four = st.ip_addresses(v=4)
    six = st.ip_addresses(v=6)
    v1Four = st.tuples(four, four, ports, ports).map(
        lambda t: (
            f"PROXY TCP4 {t[0]} {t[1]} {t[2]} {t[3]}\r\n".encode(),
            IPv4Address("TCP", str(t[0]), t[2]),
        )
    )
    v1Six = st.tuples(six, six, ports, ports).map(
        lambda t: (
            f"PROXY TCP6 {t[0].exploded} {t[1]} {t[2]} {t[3]}\r\n".encode(),
            IPv6Address("TCP", canonicalIPv6(t[0]), t[2]),
        )
    )
    v2Four = st.tuples(four, four, ports, ports, st.binary(max_size=20)).map(
        lambda t: (
            v2Header(1, 0x11, t[0].packed + t[1].packed + struct.pack("!HH", t[2], t[3]) + t[4]),
            IPv4Address("TCP", str(t[0]), t[2]),
        )
    )
    v2Six = st.tuples(six, six, ports, ports).map(
        lambda t: (
            v2Header(1, 0x21, t[0].packed + t[1].packed + struct.pack("!HH", t[2], t[3])),
            IPv6Address("TCP", canonicalIPv6(t[0]), t[2]),
        )
    )
    unknown = st.binary(max_size=80).filter(lambda b: b"\r\n" not in b).map(
        lambda b: (b"PROXY UNKNOWN" + (b" " + b if b else b"") + b"\r\n", None)
    )
    local = st.tuples(st.integers(0, 255), st.binary(max_size=40)).map(
        lambda t: (v2Header(0, t[0], t[1]), None)
    )
    return st.one_of(v1Four, v1Six, v2Four, v2Six, unknown, local)


class PropertyTests(SynchronousTestCase):
    """
    Properties of the reading, for random and mutated input.
    """

    def checkConnection(self, data: bytes, cuts: list[int]) -> ProxyHeaderProtocol:
        """
        Feed C{data}: nothing raises; either it is refused once, with a
        printable reason, and nothing reaches the protocol, or what reaches
        the protocol is what follows the header, and the peer is the
        connection's own or one with an IP literal and a port from 0 to
        65535 (or a Unix path, printable once formatted); or it waits for
        more.
        """
        wrapper, recorder, transport = feed(data, cuts)
        self.assertLessEqual(len(recorder.refusals), 1)
        if recorder.refusals:
            self.assertTrue(isPrintable(recorder.refusals[0]), recorder.refusals)
            self.assertEqual(recorder.received, b"")
            self.assertTrue(transport.disconnecting)
            return wrapper
        self.assertFalse(transport.disconnecting)
        peer = wrapper.getPeer()
        self.assertTrue(isPrintable(formatAddress(peer)), peer)
        if isinstance(peer, (IPv4Address, IPv6Address)):
            ipaddress.ip_address(peer.host)
            self.assertTrue(0 <= peer.port <= 65535)
        if wrapper._proxyInfo is not None:
            self.assertTrue(data.endswith(recorder.received))
        else:
            self.assertEqual(recorder.received, b"")
        return wrapper

    @examples
    @given(randomConnections, cutPoints)
    def test_randomBytes(self, data: bytes, cuts: list[int]) -> None:
        """
        Random bytes, cut anywhere.
        """
        self.checkConnection(data, cuts)

    @examples
    @given(validHeaders(), st.binary(max_size=50), cutPoints)
    def test_validHeaders(
        self, header: tuple[bytes, IAddress | None], after: bytes, cuts: list[int]
    ) -> None:
        """
        A valid header, cut anywhere, names its peer (or the connection's
        own) and hands on exactly the bytes after it.
        """
        data, peer = header
        wrapper, recorder, transport = feed(data + after, cuts)
        self.assertEqual(recorder.refusals, [])
        self.assertEqual(wrapper.getPeer(), peer or OWN_PEER)
        self.assertEqual(recorder.received, after)

    @examples
    @given(validHeaders(), st.data(), cutPoints)
    def test_mutatedHeaders(
        self, header: tuple[bytes, IAddress | None], data: st.DataObject, cuts: list[int]
    ) -> None:
        """
        A valid header with bytes changed, inserted or removed: checked as
        any connection.
        """
        raw = bytearray(header[0])
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(raw) - 1))
            change = data.draw(st.sampled_from(["set", "insert", "delete"]))
            byte = data.draw(st.sampled_from([0, 9, 10, 13, 27, 32, 37, 45, 48, 58, 127, 255]) | st.integers(0, 255))
            if change == "set":
                raw[at] = byte
            elif change == "insert":
                raw.insert(at, byte)
            elif len(raw) > 1:
                del raw[at]
        self.checkConnection(bytes(raw), cuts)


class EscapeTests(SynchronousTestCase):
    """
    L{escapeText} and L{escapeBytes}.
    """

    def test_examples(self) -> None:
        """
        Control characters, DEL, line separators and format characters are
        escaped as C{repr} would; printable text is the same object.
        """
        self.assertEqual(
            escapeText("a\nb\tc\x1b[2J\x7f\x85\u2028\u202e\U000e0001 é"),
            "a\\x0ab\\x09c\\x1b[2J\\x7f\\x85\\u2028\\u202e\\U000e0001 é",
        )
        text = "replied to 127.0.0.1:1: sni=a\\x0ab"
        self.assertIs(escapeText(text), text)
        self.assertEqual(escapeBytes(b"a\n\xff\\ "), "a\\x0a\\xff\\ ")

    @given(st.text())
    def test_escapeText(self, text: str) -> None:
        """
        Any text becomes printable, and stays as it is if it was.
        """
        escaped = escapeText(text)
        self.assertTrue(escaped.isprintable())
        self.assertEqual(escapeText(escaped), escaped)
        if text.isprintable():
            self.assertEqual(escaped, text)

    @given(st.binary())
    def test_escapeBytes(self, data: bytes) -> None:
        """
        Any bytes become printable ASCII.
        """
        self.assertTrue(isPrintable(escapeBytes(data)))

"""
PROXY headers over real sockets to a real C{haproxy:} port, and every
field a peer chooses on its way into the log.

A PROXY header is what the peer says; on a port that HAProxy alone should
reach, it is still untrusted input (a stranger who reaches the port, a
misconfigured proxy). What an operator relies on: a header that is not
one is refused with one log line naming what was wrong, at once, never a
traceback; a valid header works however TCP cuts it; the spec's UNKNOWN and
LOCAL connections are served with the connection's own address; and no
byte a peer chose reaches a log line unescaped, so that no client can forge
a line or send the terminal that reads the log an escape sequence.
"""

from __future__ import annotations

import io
import re
import socket
import struct
import time

from OpenSSL import SSL
from twisted.internet import reactor
from twisted.logger import LogEvent, formatEventAsClassicLogText
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.haproxy import startBackend
from tests.support import (
    LOOPBACK,
    RunningServer,
    clientContext,
    inThread,
    makeCertificates,
    startServer,
    temporaryDirectory,
)
from tests.test_hostile import waitForConnectionEvents
from tlsreply.logs.access import AccessLog

#: The PROXY v2 signature.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

#: Generous: the server under test has a 30 s handshake timeout, so a
#: close within this many seconds is the server refusing the header, not
#: the timeout.
CLOSED_WITHIN = 5.0

#: A text log line holds printable characters only (a line feed ends it).
_UNSAFE = re.compile(r"[^\x20-\x7e]")


def v2Header(command: int, familyProtocol: int, addresses: bytes) -> bytes:
    """
    A PROXY v2 header: the signature, version 2 and C{command}, the family
    and protocol byte, the length, then C{addresses}.
    """
    return (
        V2_SIGNATURE
        + bytes([0x20 | command, familyProtocol])
        + struct.pack("!H", len(addresses))
        + addresses
    )


def v2TCP4(source: str, sourcePort: int) -> bytes:
    return v2Header(
        1,
        0x11,
        socket.inet_aton(source) + socket.inet_aton("192.0.2.1") + struct.pack("!HH", sourcePort, 443),
    )


def v2TCP6(source: str, sourcePort: int) -> bytes:
    return v2Header(
        1,
        0x21,
        socket.inet_pton(socket.AF_INET6, source)
        + socket.inet_pton(socket.AF_INET6, "2001:db8::1")
        + struct.pack("!HH", sourcePort, 443),
    )


def v2Unix(source: bytes) -> bytes:
    return v2Header(1, 0x31, source.ljust(108, b"\0") + b"/run/tlsreply.sock".ljust(108, b"\0"))


#: A PROXY v2 LOCAL header, as HAProxy sends it for its health checks.
V2_LOCAL = v2Header(0, 0x00, b"")


def ownAddress(sock: socket.socket) -> str:
    """
    A client socket's address as the server logs it.
    """
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def sendPieces(sock: socket.socket, pieces: list[bytes]) -> None:
    """
    Send each piece in its own segment, a moment apart, so that the server
    reads them one at a time.
    """
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for piece in pieces:
        sock.sendall(piece)
        time.sleep(0.02)


def refused(port: int, header: bytes) -> tuple[str, float]:
    """
    Send C{header} and wait for the server to close the connection.

    @return: the client's address, and the seconds the server took to close.
    """
    with socket.create_connection((LOOPBACK, port), timeout=CLOSED_WITHIN * 2) as sock:
        peer = ownAddress(sock)
        started = time.monotonic()
        sock.sendall(header)
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        return peer, time.monotonic() - started


def servedAfter(
    port: int, caPath: str, pieces: list[bytes], serverName: str = "localhost"
) -> tuple[str, bytes]:
    """
    Send C{pieces} (a PROXY header, cut as given) and then do a TLS
    handshake and read the reply on the same connection.

    @return: the client's own address, and the reply.
    """
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
        peer = ownAddress(raw)
        sendPieces(raw, pieces)
        with clientContext(caPath).wrap_socket(
            raw, server_hostname=serverName, suppress_ragged_eofs=False
        ) as tls:
            reply = b""
            while chunk := tls.recv(100):
                reply += chunk
        return peer, reply


def logText(events: list[LogEvent]) -> list[str]:
    """
    Each event as twistd's text log writes it.
    """
    return [text for text in (formatEventAsClassicLogText(e) for e in events) if text]


class ProxyHeaderTestCase(TestCase):
    """
    A tlsreply server on a C{haproxy:} port, with a handshake timeout far
    longer than any test waits.
    """

    async def startServer(self) -> RunningServer:
        self.server = await startServer(
            self, listen=f"haproxy:tcp:0:interface={LOOPBACK}", handshakeTimeout=30
        )
        return self.server

    async def eventFor(self, peer: str, count: int) -> LogEvent:
        """
        The one connection event for C{peer}, once C{count} connections
        have been logged.
        """
        await waitForConnectionEvents(self.server, count)
        [event] = [e for e in self.server.connectionEvents() if e["peer"] == peer]
        return event

    def assertNothingBad(self) -> None:
        """
        No event carries a failure or is an error, and every line of the
        text log is printable, one line each.
        """
        events = self.server.events
        self.assertEqual(
            [e for e in events if "log_failure" in e or e["log_level"].name in ("error", "critical")],
            [],
        )
        for text in logText(events):
            self.assertEqual(_UNSAFE.findall(text[:-1]), [], text)
            self.assertTrue(text.endswith("\n"), text)


class MalformedHeaderTests(ProxyHeaderTestCase):
    """
    A header that is not a valid one is refused at once, with one line
    that names what was wrong.
    """

    #: (header, what the log line must say), one connection each.
    CASES = [
        (b"PROXY TCP4 198.51.100.7 192.0.2.1 http 443\r\n", "source port 'http' "),
        (b"PROXY TCP4 198.51.100.\xff 192.0.2.1 5555 443\r\n", "source address '198.51.100.\\xff' "),
        (b"PROXY TCP4 not-an-ip!! 192.0.2.1 1012 443\r\n", "source address 'not-an-ip!!' "),
        (b"PROXY TCP4 198.51.100.7 192.0.2.1 99999 443\r\n", "source port '99999' "),
        (b"PROXY TCP4 198.51.100.7 192.0.2.1 -5 443\r\n", "source port '-5' "),
        (b"PROXY TCP4 198.51.100.7 192.0.2.1 5555 +443\r\n", "destination port '+443' "),
        (b"PROXY TCP4 198.51.100.7 192.0.2.1 05555 443\r\n", "source port '05555' "),
        (b"PROXY TCP4 2001:db8::7 192.0.2.1 5555 443\r\n", "source address '2001:db8::7' "),
        (b"PROXY TCP6 fe80::1%eth0 2001:db8::1 5555 443\r\n", "source address 'fe80::1%eth0' "),
        (
            b"PROXY TCP4 1.2.3.4\n2026-01-01T00:00:00+0000\t[tlsreply#critical]\tFORGED-LINE"
            b" 192.0.2.1 5555 443\r\n",
            "source address '1.2.3.4\\x0a2026-01-01T00:00:00+0000\\x09[tlsreply#critical]"
            "\\x09FORGED-LINE' ",
        ),
        (b"PROXY TCP4 1.2.3.4\x1b[2J 192.0.2.1 5555 443\r\n", "source address '1.2.3.4\\x1b[2J' "),
        (b"PROXY TCP5 198.51.100.7 192.0.2.1 5555 443\r\n", "protocol 'TCP5' "),
        (b"PROXY TCP4 198.51.100.7 192.0.2.1 5555  443\r\n", "fields"),
        (b"PROXY TCP4 198.51.100.7 192.0.2.1 5555 443 extra\r\n", "fields"),
        (b"PROXY " + b"1" * 120, "107"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "no PROXY header"),
        (b"GET / HTTP/1.1\r\n\r\n", "no PROXY header"),
        (V2_SIGNATURE + b"\x31\x11\x00\x00", "version 3"),
        (V2_SIGNATURE + b"\x25\x11\x00\x00", "command 5"),
        (V2_SIGNATURE + b"\x21\x41\x00\x00", "address family 4"),
        (V2_SIGNATURE + b"\x21\x13\x00\x00", "transport protocol 3"),
        (V2_SIGNATURE + b"\x21\x11\x00\x04\x01\x02\x03\x04", "4 bytes"),
    ]

    async def test_refusedWithOneLine(self) -> None:
        """
        Each malformed header (a port that is not a number or out of range,
        an address that is not an IP literal of the family given, control
        characters, a wrong layout, a line without its end, a connection
        without a header, bad v2 fields) gets its connection closed at once
        and one log line, with the connection's own address, that names the
        problem, its bytes escaped; never a traceback.
        """
        server = await self.startServer()
        for number, (header, problem) in enumerate(self.CASES, 1):
            peer, took = await inThread(refused, server.port, header)
            self.assertLess(took, CLOSED_WITHIN, header)
            event = await self.eventFor(peer, number)
            self.assertEqual(event["outcome"], "handshake-failed")
            self.assertIn("PROXY header", event["reason"])
            self.assertIn(problem, event["reason"])
        self.assertEqual(len(server.connectionEvents()), len(self.CASES))
        self.assertNothingBad()


class ValidHeaderTests(ProxyHeaderTestCase):
    """
    Valid headers, however they arrive, and the connections the spec says
    to serve with their own address.
    """

    async def served(self, pieces: list[bytes], count: int) -> tuple[str, LogEvent]:
        peer, reply = await inThread(servedAfter, self.server.port, self.server.caPath, pieces)
        self.assertEqual(reply, b"test\n")
        await waitForConnectionEvents(self.server, count)
        event = self.server.connectionEvents()[-1]
        self.assertEqual(event["outcome"], "replied", event)
        return peer, event

    async def test_splitHeaders(self) -> None:
        """
        A v1 and a v2 header cut into single bytes (each in its own TCP
        segment, so the first read is shorter than Twisted's parser wants)
        work as if they came at once.
        """
        await self.startServer()
        v1 = b"PROXY TCP4 198.51.100.7 192.0.2.1 5555 443\r\n"
        _, event = await self.served([bytes([b]) for b in v1], 1)
        self.assertEqual(event["peer"], "198.51.100.7:5555")
        v2 = v2TCP4("198.51.100.8", 6666)
        _, event = await self.served([bytes([b]) for b in v2], 2)
        self.assertEqual(event["peer"], "198.51.100.8:6666")
        _, event = await self.served([v2[:3], v2[3:15], v2[15:20], v2[20:]], 3)
        self.assertEqual(event["peer"], "198.51.100.8:6666")
        self.assertNothingBad()

    async def test_ipv6(self) -> None:
        """
        IPv6 sources are logged in their canonical (compressed) form, from
        v1 and v2 headers.
        """
        await self.startServer()
        _, event = await self.served([v2TCP6("2001:db8::7", 5555)], 1)
        self.assertEqual(event["peer"], "[2001:db8::7]:5555")
        _, event = await self.served(
            [b"PROXY TCP6 2001:DB8:0:0::7 2001:db8::1 5555 443\r\n"], 2
        )
        self.assertEqual(event["peer"], "[2001:db8::7]:5555")

    async def test_unknownAndLocal(self) -> None:
        """
        C{PROXY UNKNOWN} (short, and with addresses to ignore), a v2 LOCAL
        header (HAProxy's health checks) and a v2 PROXY header of the
        unspecified family are served, and logged with the connection's
        own address, as the spec says.
        """
        await self.startServer()
        headers = [
            b"PROXY UNKNOWN\r\n",
            b"PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n",
            V2_LOCAL,
            v2Header(0, 0x11, b"\x01" * 12),
            v2Header(1, 0x00, b""),
        ]
        for number, header in enumerate(headers, 1):
            peer, event = await self.served([header], number)
            self.assertEqual(event["peer"], peer, header)
        self.assertNothingBad()

    async def test_unixSourceEscaped(self) -> None:
        """
        A v2 header from a Unix socket names a path, any bytes: it is
        served and logged with the path's control bytes escaped.
        """
        await self.startServer()
        forged = b"/run/a\n2026-01-01T00:00:00+0000 [tlsreply#critical] FORGED\x1b[2J\xff"
        _, event = await self.served([v2Unix(forged)], 1)
        self.assertEqual(
            event["peer"],
            "unix:/run/a\\x0a2026-01-01T00:00:00+0000 [tlsreply#critical] FORGED\\x1b[2J\\xff",
        )
        self.assertNothingBad()


def hostileTLSClient(port: int, header: bytes) -> bytes:
    """
    A pyOpenSSL client (which sends any bytes it is given as a server name
    and as ALPN protocols) that sends a PROXY header first if given, asks
    for a server name and offers ALPN protocols full of control
    characters, sends an HTTP request line full of them after the
    handshake, and reads the reply.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    with socket.create_connection((LOOPBACK, port)) as raw:
        # Blocking, as pyOpenSSL needs, but never for ever.
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 10, 0))
        raw.sendall(header)
        connection = SSL.Connection(context, raw)
        connection.set_tlsext_host_name(
            b"a\n2026-01-01T00:00:00+0000 [tlsreply#critical] FORGED\x1b[31m\xff.test"
        )
        connection.set_alpn_protos([b"h2\n\x1b[31m", b"\x00\x85"])
        connection.set_connect_state()
        connection.do_handshake()
        connection.sendall(b"GET /\x1b[2J\r\n2026 [tlsreply#critical] FORGED HTTP/1.1\r\n\r\n")
        reply = b""
        try:
            while chunk := connection.recv(100):
                reply += chunk
        except SSL.ZeroReturnError:
            pass
        return reply


class PeerFieldsEscapedTests(TestCase):
    """
    Every field of a connection's line that its peer chose (the address a
    PROXY header names, the server name, the ALPN protocols, what it sends
    after the handshake) reaches no log line unescaped, on the connection
    log (L{AccessLog}) and on twistd's text log.
    """

    async def checkServer(self, listen: str, header: bytes) -> None:
        stream = io.BytesIO()
        accessLog = AccessLog(stream, reactor)
        for log in (accessLog, None):
            server = await startServer(self, listen=listen, accessLog=log)
            records: list[object] = []
            server.factory.recorders.append(records.append)
            reply = await inThread(hostileTLSClient, server.port, header)
            self.assertEqual(reply, b"test\n")
            await server.service.stopService()
            [record] = records
            # The record keeps what the client sent, as data.
            self.assertIn(b"\x1b[2J\r\n2026", record.received)  # type: ignore[attr-defined]
        lines = stream.getvalue().decode("utf-8").splitlines()
        [line] = lines
        self.assertIn("replied to ", line)
        self.assertIn("sni=a\\x0a2026-01-01T00:00:00+0000", line)
        self.assertEqual(_UNSAFE.findall(line), [], line)
        texts = [t for t in logText(server.events) if "replied to" in t]
        self.assertEqual(len(texts), 1)
        for text in logText(server.events):
            self.assertEqual(_UNSAFE.findall(text[:-1]), [], text)

    async def test_tcpPort(self) -> None:
        """
        On a plain TCP port: the server name, ALPN and request.
        """
        await self.checkServer(f"tcp:0:interface={LOOPBACK}", b"")

    async def test_haproxyPort(self) -> None:
        """
        Behind a PROXY v2 header naming a Unix path full of control
        characters, too.
        """
        await self.checkServer(
            f"haproxy:tcp:0:interface={LOOPBACK}",
            v2Unix(b"/x\n2026-01-01T00:00:00+0000 [tlsreply#critical] FORGED\x1b[2J"),
        )


#: A line of twistd's text log: a time stamp, the system, printable text.
_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \[[^\]]+\] [\x20-\x7e]*")


class DaemonLogTests(SynchronousTestCase):
    """
    The log of a real daemon (C{twistd -n tlsreply}, as the deployment
    guide runs it behind HAProxy), with its connection lines on standard
    output.
    """

    def test_noForgedLines(self) -> None:
        """
        Headers that try to forge a line (a line feed, a tab, an escape in
        a v1 address, in a v2 Unix path), one whose port is not a number,
        and a client whose server name and request are full of control
        characters: every line of the log is one of twistd's, printable,
        without a traceback, and each refused header has its one line.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        backend = startBackend(
            self, "tls1", workdir, certificates.certificatePath, certificates.keyPath
        )
        forged = "2026-01-01T00:00:00+0000 [tlsreply#critical] FORGED-LINE"
        headers = [
            b"PROXY TCP4 1.2.3.4\n" + forged.replace(" ", "\t").encode() + b" 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4\x1b[2J\x1b]0;owned\x07 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 http 443\r\n",
            b"PROXY TCP4 1.2.3.\xff 5.6.7.8 1 443\r\n",
        ]
        for header in headers:
            _, took = refused(backend.port, header)
            self.assertLess(took, CLOSED_WITHIN)
        _, reply = servedAfter(
            backend.port,
            str(certificates.caPath),
            [v2Unix(b"/x\n" + forged.encode() + b"\x1b[2J")],
        )
        self.assertEqual(reply, b"test\n")
        hostileTLSClient(backend.port, v2Unix(b"/y\n" + forged.encode()))
        backend.daemon.waitFor(r"replied to unix:/y")
        self.assertEqual(backend.daemon.stop(), 0)
        lines = "".join(backend.daemon.output).splitlines()
        self.assertEqual([line for line in lines if not _LOG_LINE.fullmatch(line)], [])
        self.assertEqual([line for line in lines if line.startswith(forged[:24])], [])
        self.assertEqual(len([line for line in lines if "bad PROXY header" in line]), len(headers))

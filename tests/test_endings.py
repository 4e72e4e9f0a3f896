"""
How a connection ended is a value (L{tlsreply.connection.ending.Ending}):
its kind, decided where the cause is known, is what the metrics count and
the record's C{ending} says; its text is what the log line says. Rewording
a text moves no label; real connections of each kind, over both
connection paths, get their kind in the record and in the metric.
"""

from __future__ import annotations

import socket
import ssl

from OpenSSL import SSL
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import (
    LOOPBACK,
    RunningServer,
    WireTestCase,
    captureLogEvents,
    clientContext,
    fetchWithSSL,
    inThread,
    onMemoryBIO,
    startServer,
)
from tests.test_lifecycle import waitUntil
from tests.test_records import recorded
from tlsreply import ReplyFactory
from tlsreply.connection.ending import (
    ABORTED,
    ENDING_KINDS,
    TIMEOUT,
    Ending,
    openSSLEnding,
    openSSLKind,
)
from tlsreply.connection.records import ConnectionRecord
from tlsreply.metrics.counting import ConnectionMetrics
from tlsreply.protocol import endingFromFailure


def failureCounts(metrics: ConnectionMetrics) -> dict[str, float]:
    """
    C{tlsreply_handshake_failures_total} by reason, the reasons counted
    at least once.
    """
    metrics.publish()
    counts: dict[str, float] = {}
    for kind in ENDING_KINDS:
        value = metrics.registry.get_sample_value(
            "tlsreply_handshake_failures_total", {"reason": kind}
        )
        if value:
            counts[kind] = value
    return counts


class EndingValueTests(SynchronousTestCase):
    """
    What an L{Ending} is and how the metrics and the log use it.
    """

    def test_rewordingKeepsTheLabel(self) -> None:
        """
        Two endings of the same kind with different texts count under the
        same label, whatever the words: even a text that reads like
        another kind's (C{"peer closed the connection"}) counts as its own
        kind. The log line gives each text as it is.
        """
        events = captureLogEvents(self)
        factory = ReplyFactory(clock=Clock())
        metrics = factory.metrics = ConnectionMetrics(5)
        factory.report("192.0.2.7:1", Ending(TIMEOUT, "handshake not completed within 10s"), None)
        factory.report("192.0.2.7:2", Ending(TIMEOUT, "the client took too long: given up"), None)
        factory.report("192.0.2.7:3", Ending(ABORTED, "peer closed the connection"), None)
        self.assertEqual(failureCounts(metrics), {"timeout": 2, "aborted": 1})
        self.assertEqual(
            [event["reason"] for event in events if "outcome" in event],
            [
                "handshake not completed within 10s",
                "the client took too long: given up",
                "peer closed the connection",
            ],
        )

    def test_recordCarriesBoth(self) -> None:
        """
        A connection's record has the text (C{closed}) and the kind
        (C{ending}).
        """
        records: list[ConnectionRecord] = []
        factory = ReplyFactory(clock=Clock())
        factory.recorders.append(records.append)
        factory.report("192.0.2.7:1", Ending(TIMEOUT, "too slow"), None)
        [record] = records
        self.assertEqual((record.closed, record.ending), ("too slow", "timeout"))
        self.assertEqual(record.asDict()["ending"], "timeout")

    def test_after(self) -> None:
        """
        An ending put after what led to it keeps its kind.
        """
        self.assertEqual(
            Ending(ABORTED, "aborted").after("stalled: nothing sent"),
            Ending(ABORTED, "stalled: nothing sent; aborted"),
        )

    def test_openSSLReasons(self) -> None:
        """
        OpenSSL's reason strings, the only text still classified, map to
        their kinds; anything else is C{other}, so the label's values are
        bounded.
        """
        cases = {
            "no shared cipher": "no_shared_cipher",
            "no suitable signature algorithm": "no_shared_cipher",
            "unsupported protocol": "unsupported_version",
            "tlsv1 alert protocol version": "unsupported_version",
            "http request": "not_tls",
            "wrong version number": "not_tls",
            "packet length too long": "not_tls",
            "sslv3 alert bad certificate": "alert",
            "tlsv1 alert unknown ca": "alert",
            "peer did not return a certificate": "client_certificate",
            "unexpected eof while reading": "client_closed",
            "internal error": "aborted",
            "decode error": "other",
        }
        self.assertEqual({reason: openSSLKind(reason) for reason in cases}, cases)
        self.assertEqual(
            openSSLEnding("tlsv1 alert unknown ca"), Ending("alert", "tlsv1 alert unknown ca")
        )

    def test_fromFailure(self) -> None:
        """
        What Twisted's C{connectionLost} reports becomes an ending with the
        kind its cause has and the words the log has always used.
        """
        cases = [
            (ConnectionDone(), True, Ending("client_closed", "peer closed the connection")),
            (
                ConnectionLost(),
                True,
                Ending("client_closed", "peer closed TCP without close_notify, or reset it"),
            ),
            (
                ConnectionLost(),
                False,
                Ending("client_closed", "peer closed the connection without close_notify"),
            ),
            (ConnectionAborted(), True, Ending("aborted", "connection aborted")),
            (
                SSL.Error([("SSL routines", "", "no shared cipher")]),
                True,
                Ending("no_shared_cipher", "no shared cipher"),
            ),
            (SSL.Error("something new 12345"), True, Ending("other", "TLS error: something new 12345")),
            (ValueError("odd"), True, Ending("other", "ValueError: odd")),
        ]
        for error, tcp, ending in cases:
            self.assertEqual(endingFromFailure(Failure(error), tcp), ending)


class EndingOnTheWireTests(WireTestCase):
    """
    Real connections on 127.0.0.1, one of each kind: the record's
    C{ending} and the metric's label are that kind.
    """

    async def serve(self, **arguments: object) -> RunningServer:
        server = await startServer(self, **arguments)  # type: ignore[arg-type]
        self.metrics = server.factory.metrics = ConnectionMetrics(5)
        self.records: list[ConnectionRecord] = []
        server.factory.recorders.append(self.records.append)
        return server

    async def ended(self) -> ConnectionRecord:
        [record] = await recorded(self.records)
        return record

    def silentClient(self, server: RunningServer) -> socket.socket:
        client = socket.create_connection((LOOPBACK, server.port), timeout=10)
        self.addCleanup(client.close)
        return client

    async def test_replied(self) -> None:
        """
        A connection replied to ends with its client closing: no failure
        is counted, one reply is.
        """
        server = await self.serve()
        await inThread(fetchWithSSL, server.port, clientContext(server.caPath))
        record = await self.ended()
        self.assertEqual((record.outcome, record.ending), ("replied", "client_closed"))
        self.assertEqual(failureCounts(self.metrics), {})
        self.assertEqual(self.metrics.registry.get_sample_value("tlsreply_replies_total"), 1)

    async def test_peerClosed(self) -> None:
        """
        A client that connects and closes (a TCP health check) is
        C{client_closed}.
        """
        server = await self.serve()
        self.silentClient(server).close()
        record = await self.ended()
        self.assertEqual((record.outcome, record.ending), ("handshake-failed", "client_closed"))
        self.assertEqual(failureCounts(self.metrics), {"client_closed": 1})

    async def test_handshakeTimeout(self) -> None:
        """
        A client that sends nothing for the handshake timeout is
        C{timeout}, with the timeout's words in the log.
        """
        server = await self.serve(handshakeTimeout=0.2)
        self.silentClient(server)
        record = await self.ended()
        self.assertEqual(
            (record.ending, record.closed), ("timeout", "handshake not completed within 0.2s")
        )
        self.assertEqual(failureCounts(self.metrics), {"timeout": 1})

    async def test_clientAlert(self) -> None:
        """
        A client that does not trust the certificate refuses it with an
        alert (C{unknown_ca}): C{alert}, with OpenSSL's words.
        """
        server = await self.serve()
        untrusting = ssl.create_default_context()
        with self.assertRaises(ssl.SSLError):
            await inThread(fetchWithSSL, server.port, untrusting)
        record = await self.ended()
        self.assertEqual((record.ending, record.closed), ("alert", "tlsv1 alert unknown ca"))
        self.assertEqual(failureCounts(self.metrics), {"alert": 1})

    async def test_noSharedCipher(self) -> None:
        """
        A client with no cipher suite in common is C{no_shared_cipher}.
        """
        server = await self.serve()

        def configure(context: ssl.SSLContext) -> None:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers("AES128-GCM-SHA256")

        with self.assertRaises(ssl.SSLError):
            await inThread(fetchWithSSL, server.port, clientContext(server.caPath, configure))
        record = await self.ended()
        self.assertEqual((record.ending, record.closed), ("no_shared_cipher", "no shared cipher"))
        self.assertEqual(failureCounts(self.metrics), {"no_shared_cipher": 1})

    async def test_abortedAtStop(self) -> None:
        """
        A connection still in progress when the shutdown's grace expires
        is C{aborted}, with the shutdown's words.
        """
        server = await self.serve(handshakeTimeout=30)
        self.silentClient(server)
        await waitUntil(lambda: server.service.connections.inProgress == 1)
        server.service.shutdownGrace = 0
        await server.service.stopService()
        record = await self.ended()
        self.assertEqual(
            (record.ending, record.closed), ("aborted", "aborted at shutdown after the 0s grace")
        )
        self.assertEqual(failureCounts(self.metrics), {"aborted": 1})


EndingOnTheWireTestsOnMemoryBIO = onMemoryBIO(EndingOnTheWireTests)


class ProxyHeaderEndingTests(TestCase):
    """
    A C{haproxy:} port's refused PROXY header is C{proxy_header}, whatever
    the peer's bytes say.
    """

    async def test_refusedHeader(self) -> None:
        """
        A connection that starts with an HTTP request instead of a PROXY
        header (its words would read as C{not_tls} to a text match) is
        C{proxy_header}.
        """
        server = await startServer(
            self, listen=f"haproxy:tcp:0:interface={LOOPBACK}", handshakeTimeout=30
        )
        metrics = server.factory.metrics = ConnectionMetrics(5)
        records: list[ConnectionRecord] = []
        server.factory.recorders.append(records.append)
        client = socket.create_connection((LOOPBACK, server.port), timeout=10)
        self.addCleanup(client.close)
        client.sendall(b"GET / HTTP/1.1 http request\r\n\r\n")
        [record] = await recorded(records)
        self.assertEqual(record.ending, "proxy_header")
        self.assertTrue(record.closed.startswith("no PROXY header"), record.closed)
        self.assertEqual(failureCounts(metrics), {"proxy_header": 1})

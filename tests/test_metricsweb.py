"""
The metrics endpoint against clients that want more than a scrape: a
request body (refused before it is read), other methods, more
connections than its cap, idle connections; on a real port on 127.0.0.1,
except the idle timeout, which runs on a fake clock.
"""

from __future__ import annotations

import http.client
import socket

from prometheus_client import CollectorRegistry, Counter
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import LOOPBACK, captureLogEvents, inThread
from tests.test_lifecycle import waitUntil
from tlsreply.metricsweb import (
    MAX_METRICS_CONNECTIONS,
    METRICS_IDLE_TIMEOUT,
    MetricsService,
)

PEER = IPv4Address("TCP", "192.0.2.7", 50000)


def exchange(port: int, request: bytes) -> bytes:
    """
    Send C{request} as it is, then read until the server closes the
    connection (or 10 s went by, which no test expects).
    """
    with socket.create_connection((LOOPBACK, port), timeout=10) as client:
        client.sendall(request)
        received = b""
        while chunk := client.recv(65536):
            received += chunk
        return received


def ask(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """
    One request with C{http.client}: the status, headers and body.
    """
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def readToEnd(client: socket.socket) -> bytes:
    """
    What the server sends on C{client} until it closes it.
    """
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return received


class WireTests(TestCase):
    """
    A metrics service on an ephemeral port, asked over real sockets.
    """

    def setUp(self) -> None:
        self.events = captureLogEvents(self)
        registry = CollectorRegistry()
        Counter("answers", "Answers.", registry=registry).inc(42)
        self.service = MetricsService(
            TCP4ServerEndpoint(reactor, 0, interface=LOOPBACK),
            f"tcp:0:interface={LOOPBACK}",
            registry,
            reactor=reactor,
        )
        self.service.startService()
        self.addCleanup(self.service.stopService)
        # Cleanups run last first: every connection is gone before the
        # port stops listening, and the reactor is left clean.
        self.addCleanup(waitUntil, lambda: self.service.site.openConnections == 0)
        assert self.service.port is not None
        self.port: int = getattr(self.service.port.getHost(), "port", 0)

    async def test_getAndHead(self) -> None:
        """
        GET answers C{/metrics}, C{/ready} and C{/live}; HEAD answers each
        with the same status, content type and length, without a body.
        """
        expected = {"/metrics": b"answers_total 42.0\n", "/ready": b"ready\n", "/live": b"live\n"}
        for path, text in expected.items():
            status, headers, body = await inThread(ask, self.port, "GET", path)
            self.assertEqual(status, 200, path)
            self.assertIn(text, body)
            headStatus, headHeaders, headBody = await inThread(ask, self.port, "HEAD", path)
            self.assertEqual((headStatus, headBody), (200, b""), path)
            self.assertEqual(headHeaders["Content-Type"], headers["Content-Type"])
            self.assertEqual(headHeaders["Content-Length"], str(len(body)), path)

    async def test_requestsAreNotLogged(self) -> None:
        """
        Requests to the endpoint are not logged (a scraper every 15 s and
        a health check every 2 s would fill the server's log): GET and
        HEAD of every path, an unknown path and a refused method leave no
        log event at all, neither tlsreply's nor twisted.web's.
        """
        before = len(self.events)
        for method in ("GET", "HEAD"):
            for path in ("/metrics", "/ready", "/live", "/unknown"):
                await inThread(ask, self.port, method, path)
        self.assertEqual((await inThread(ask, self.port, "DELETE", "/ready"))[0], 405)
        await waitUntil(lambda: self.service.site.openConnections == 0)
        self.assertEqual(self.events[before:], [])

    async def test_bodyRefusedBeforeItIsRead(self) -> None:
        """
        A POST that announces 2 GB (and would wait for C{100 Continue}) is
        answered 413 as soon as its headers are in, and the connection
        closed: the client sends none of the body, so none of it can have
        been read, let alone stored.
        """
        answer = await inThread(
            exchange,
            self.port,
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000000\r\n"
            b"Expect: 100-continue\r\n\r\n",
        )
        self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer)
        self.assertIn(b"\r\nConnection: close\r\n", answer)
        self.assertNotIn(b"100 Continue", answer)

    async def test_everyKindOfBodyRefused(self) -> None:
        """
        A GET with a body, a chunked body, and a small body that arrived
        with its headers are refused the same way; the request is not
        answered as well (one response only).
        """
        for request in (
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            b"GET /ready HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n",
            b"PUT /metrics HTTP/1.0\r\nContent-Length: 1\r\n\r\nx",
        ):
            answer = await inThread(exchange, self.port, request)
            self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), (request, answer))
            self.assertEqual(answer.count(b"HTTP/1."), 1, answer)

    async def test_otherMethodsRefused(self) -> None:
        """
        Without a body, any method but GET and HEAD is answered 405 with
        C{Allow: GET, HEAD}, on every path.
        """
        for method, path in (("POST", "/metrics"), ("DELETE", "/ready"), ("OPTIONS", "*"),
                             ("PUT", "/nothing")):
            status, headers, _ = await inThread(ask, self.port, method, path)
            self.assertEqual((status, headers.get("Allow")), (405, "GET, HEAD"), method)

    async def test_connectionCap(self) -> None:
        """
        With L{MAX_METRICS_CONNECTIONS} connections open, the next one is
        closed as soon as it is accepted, without an answer, and logged
        once; when they have gone, C{/metrics} answers again.
        """
        held = [socket.create_connection((LOOPBACK, self.port), timeout=10)
                for _ in range(MAX_METRICS_CONNECTIONS)]
        try:
            await waitUntil(
                lambda: self.service.site.openConnections == MAX_METRICS_CONNECTIONS
            )
            with socket.create_connection((LOOPBACK, self.port), timeout=10) as extra:
                self.assertEqual(await inThread(readToEnd, extra), b"")
        finally:
            for each in held:
                each.close()
        [refused] = [e for e in self.events if "at its cap" in e.get("log_format", "")]
        self.assertEqual(refused["maxConnections"], MAX_METRICS_CONNECTIONS)
        await waitUntil(lambda: self.service.site.openConnections == 0)
        [again] = [e for e in self.events if "below its cap" in e.get("log_format", "")]
        self.assertEqual(again["refused"], 1)
        self.assertEqual((await inThread(ask, self.port, "GET", "/metrics"))[0], 200)


class IdleTimeoutTests(SynchronousTestCase):
    """
    Idle metrics connections are closed on the reactor the service was
    given.
    """

    def test_idleConnectionClosed(self) -> None:
        """
        A connection that sends nothing is closed after
        L{METRICS_IDLE_TIMEOUT} seconds on the service's clock, and no
        longer counted once it is gone.
        """
        clock = Clock()
        service = MetricsService(
            TCP4ServerEndpoint(clock, 0), "tcp:0", CollectorRegistry(), reactor=clock
        )
        channel = service.site.buildProtocol(PEER)
        assert channel is not None
        transport = StringTransport(peerAddress=PEER)
        channel.makeConnection(transport)
        self.assertEqual(service.site.openConnections, 1)
        clock.advance(METRICS_IDLE_TIMEOUT - 0.5)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.5)
        self.assertTrue(transport.disconnecting)
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(service.site.openConnections, 0)

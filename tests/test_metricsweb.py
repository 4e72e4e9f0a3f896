"""
The metrics endpoint against clients that want more than a scrape: a
request body (refused before it is read), other methods, more
connections than its cap, requests that trickle in, pipelined floods,
scrapers in a loop. What users see is asked over a real port on
127.0.0.1; deadlines, turns and the scrape cache run on a fake clock.
"""

from __future__ import annotations

import http.client
import socket
import time

from prometheus_client import CollectorRegistry, Counter
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    connectProtocol,
)
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock, LoopingCall
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import LOOPBACK, captureLogEvents, inThread
from tests.test_lifecycle import waitUntil
from tlsreply.metrics.web import (
    MAX_METRICS_CONNECTIONS,
    METRICS_CACHE_SECONDS,
    METRICS_HELD_BYTES,
    METRICS_IDLE_TIMEOUT,
    METRICS_REQUEST_BURST,
    METRICS_REQUEST_TIMEOUT,
    METRICS_REQUESTS_PER_SECOND,
    MetricsService,
)

PEER = IPv4Address("TCP", "192.0.2.7", 50000)

#: A scrape as Prometheus sends it, on a connection it keeps open.
SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: pod:9102\r\nAccept: text/plain\r\n\r\n"

#: A readiness probe as the kubelet sends it.
PROBE = b"GET /ready HTTP/1.1\r\nHost: pod:9102\r\nUser-Agent: kube-probe/1.31\r\n\r\n"


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


def timedAsk(port: int, path: str) -> tuple[int, float]:
    """
    C{GET path}: the status, and the seconds from connecting to the whole
    answer.
    """
    started = time.monotonic()
    status, _, _ = ask(port, "GET", path)
    return status, time.monotonic() - started


def readToEnd(client: socket.socket) -> bytes:
    """
    What the server sends on C{client} until it closes it.
    """
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return received


class Client(Protocol):
    """
    A raw client in the test's reactor: what it received, and when it was
    closed.
    """

    def __init__(self, send: bytes = b"") -> None:
        self.send = send
        self.received = b""
        self.closed: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        if self.send:
            self.transport.write(self.send)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.closed.callback(None)


class Trickler(Client):
    """
    A slow-loris client: one byte of a request's headers every C{interval}
    seconds, a header that never ends.
    """

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self._bytes = iter(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000)
        self._loop = LoopingCall(self._next)

    def connectionMade(self) -> None:
        self._loop.start(self.interval)

    def _next(self) -> None:
        self.transport.write(bytes([next(self._bytes)]))  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._loop.stop()
        super().connectionLost(reason)


def responses(data: bytes) -> int:
    """
    How many HTTP responses C{data} holds.
    """
    return data.count(b"HTTP/1.1 ")


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
        with the same status, content type and length, without a body. The
        response's headers are the ones tlsreply chose: no C{Server} header
        naming the web framework and its version.
        """
        expected = {"/metrics": b"answers_total 42.0\n", "/ready": b"ready\n", "/live": b"live\n"}
        for path, text in expected.items():
            status, headers, body = await inThread(ask, self.port, "GET", path)
            self.assertEqual(status, 200, path)
            self.assertIn(text, body)
            self.assertEqual(
                sorted(headers),
                ["Cache-Control", "Content-Length", "Content-Type", "Date"],
                path,
            )
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

    async def test_badRequestInItsOwnWords(self) -> None:
        """
        A request twisted.web cannot parse is answered 400 with a line of
        text, a length and C{Connection: close}, then closed.
        """
        answer = await inThread(exchange, self.port, b"NONSENSE\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer)
        self.assertIn(b"\r\nConnection: close\r\n", answer)
        self.assertTrue(answer.endswith(b"\r\n\r\nnot an HTTP/1.1 request\n"), answer)

    async def test_fullEndpointMakesRoom(self) -> None:
        """
        With L{MAX_METRICS_CONNECTIONS} connections open that have sent
        nothing, a probe still gets its answer: it takes the place of the
        connection that has waited longest, which is closed, and that is
        logged once. When they have gone, the endpoint says it is below
        its cap again, with how many connections made room.
        """
        held = []
        for _ in range(MAX_METRICS_CONNECTIONS):
            held.append(socket.create_connection((LOOPBACK, self.port), timeout=10))
            await waitUntil(lambda: self.service.site.openConnections == len(held))
        try:
            self.assertEqual((await inThread(ask, self.port, "GET", "/ready"))[0], 200)
            self.assertEqual(await inThread(readToEnd, held[0]), b"")
        finally:
            for each in held:
                each.close()
        [full] = [e for e in self.events if "at its cap" in e.get("log_format", "")]
        self.assertEqual(full["maxConnections"], MAX_METRICS_CONNECTIONS)
        await waitUntil(lambda: self.service.site.openConnections == 0)
        [again] = [e for e in self.events if "below its cap" in e.get("log_format", "")]
        self.assertEqual((again["evicted"], again["refused"]), (1, 0))

    async def test_probesAnswerWhileSlowClientsHoldEveryPlace(self) -> None:
        """
        L{MAX_METRICS_CONNECTIONS} slow-loris clients, each sending one
        byte of a request's headers every 0.3 s, hold every place of the
        endpoint: C{/ready} and C{/live} are still answered within a
        second, and every slow client is closed within
        L{METRICS_REQUEST_TIMEOUT} seconds of its start, however it trickles.
        """
        endpoint = TCP4ClientEndpoint(reactor, LOOPBACK, self.port)
        tricklers = [Trickler(0.3) for _ in range(MAX_METRICS_CONNECTIONS)]
        started = time.monotonic()
        for each in tricklers:
            await connectProtocol(endpoint, each)
        await waitUntil(lambda: self.service.site.openConnections == MAX_METRICS_CONNECTIONS)
        for path in ("/ready", "/live"):
            status, seconds = await inThread(timedAsk, self.port, path)
            self.assertEqual(status, 200, path)
            self.assertLess(seconds, 1.0, path)
        for each in tricklers:
            await each.closed
        self.assertLess(time.monotonic() - started, METRICS_REQUEST_TIMEOUT + 2)
        for each in tricklers:
            self.assertIn(each.received[:13], (b"", b"HTTP/1.1 408 "))

    async def test_pipelinedFloodTakesTurns(self) -> None:
        """
        20,000 pipelined C{GET /metrics} in one send are answered at the
        endpoint's pace, one at a time, not back to back on the reactor:
        within their first second the flood gets at most what
        L{METRICS_REQUESTS_PER_SECOND} allows, and a probe on another
        connection meanwhile is answered within a second.
        """
        flood = Client(SCRAPE * 20_000)
        await connectProtocol(TCP4ClientEndpoint(reactor, LOOPBACK, self.port), flood)
        await waitUntil(lambda: responses(flood.received) > 0)
        first = time.monotonic()
        status, seconds = await inThread(timedAsk, self.port, "/ready")
        self.assertEqual(status, 200)
        self.assertLess(seconds, 1.0)
        elapsed = time.monotonic() - first
        self.assertLessEqual(
            responses(flood.received),
            METRICS_REQUEST_BURST + 1 + METRICS_REQUESTS_PER_SECOND * (elapsed + 0.1),
        )
        flood.transport.loseConnection()  # type: ignore[union-attr]
        await flood.closed


def memoryService(clock: Clock, **options: float) -> MetricsService:
    """
    A metrics service whose connections are timed on C{clock}, with one
    counter in its registry.
    """
    registry = CollectorRegistry()
    Counter("answers", "Answers.", registry=registry).inc(42)
    return MetricsService(
        TCP4ServerEndpoint(clock, 0), "tcp:0", registry, reactor=clock, **options  # type: ignore[arg-type]
    )


def connect(service: MetricsService, port: int = 50000) -> tuple[Protocol, StringTransport]:
    """
    A connection to C{service} over an in-memory transport.
    """
    peer = IPv4Address("TCP", "192.0.2.7", port)
    channel = service.site.buildProtocol(peer)
    assert channel is not None
    transport = StringTransport(peerAddress=peer)
    channel.makeConnection(transport)
    return channel, transport


class DeadlineTests(SynchronousTestCase):
    """
    A request must arrive whole within L{METRICS_REQUEST_TIMEOUT} seconds,
    however slowly it trickles; a connection may wait
    L{METRICS_IDLE_TIMEOUT} seconds between requests. On a fake clock.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.service = memoryService(self.clock)

    def test_silentConnectionClosed(self) -> None:
        """
        A connection that sends nothing is closed
        L{METRICS_REQUEST_TIMEOUT} seconds after it was accepted, without
        an answer, and no longer counted once it is gone.
        """
        channel, transport = connect(self.service)
        self.assertEqual(self.service.site.openConnections, 1)
        self.clock.advance(METRICS_REQUEST_TIMEOUT - 0.5)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.5)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.service.site.openConnections, 0)

    def test_tricklingRequestClosedFromTheStart(self) -> None:
        """
        A client that sends one byte of its request every 4 s (each byte
        would reset an idle timer) is answered 408 and closed
        L{METRICS_REQUEST_TIMEOUT} seconds after the connection started.
        """
        channel, transport = connect(self.service)
        for byte in PROBE[:-1]:
            channel.dataReceived(bytes([byte]))
            if transport.disconnecting:
                break
            self.clock.advance(4)
        self.assertTrue(transport.disconnecting)
        self.assertLessEqual(self.clock.seconds(), METRICS_REQUEST_TIMEOUT + 4)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 Request Timeout\r\n"))
        self.assertIn(b"\r\nConnection: close\r\n", transport.value())

    def test_keptAliveThenTrickling(self) -> None:
        """
        After an answer, a kept-alive connection may stay silent for up to
        L{METRICS_IDLE_TIMEOUT} seconds; its next request, once its first
        byte has come, must be whole within L{METRICS_REQUEST_TIMEOUT}
        seconds of that byte.
        """
        channel, transport = connect(self.service)
        channel.dataReceived(PROBE)
        self.assertEqual(responses(transport.value()), 1)
        self.clock.advance(METRICS_IDLE_TIMEOUT - 1)
        self.assertFalse(transport.disconnecting)
        channel.dataReceived(PROBE[:5])
        self.clock.advance(METRICS_REQUEST_TIMEOUT - 0.5)
        channel.dataReceived(PROBE[5:10])
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.5)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(responses(transport.value()), 2)  # the 408

    def test_idleKeptAliveConnectionClosed(self) -> None:
        """
        A kept-alive connection that sends nothing after its answer is
        closed L{METRICS_IDLE_TIMEOUT} seconds after the answer, without a
        408 (the client may be about to send a request).
        """
        channel, transport = connect(self.service)
        channel.dataReceived(PROBE)
        self.clock.advance(0)
        self.clock.advance(METRICS_IDLE_TIMEOUT - 0.5)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.5)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(responses(transport.value()), 1)

    def test_clientThatDoesNotReadIsAborted(self) -> None:
        """
        An answer the client does not read (the transport says it cannot
        take more) holds the connection's next request back, and the
        connection is aborted after L{METRICS_IDLE_TIMEOUT} seconds.
        """
        channel, transport = connect(self.service)
        original = transport.write

        def full(data: bytes) -> None:
            original(data)
            channel.pauseProducing()  # type: ignore[attr-defined]

        transport.write = full  # type: ignore[method-assign]
        channel.dataReceived(SCRAPE * 2)
        self.clock.advance(1)
        self.assertEqual(responses(transport.value()), 1)
        self.clock.advance(METRICS_IDLE_TIMEOUT)
        self.assertTrue(transport.disconnected)
        self.assertEqual(responses(transport.value()), 1)

    def test_headTooLarge(self) -> None:
        """
        A request head that passes 16 KiB without ending is answered 431
        and the connection closed.
        """
        channel, transport = connect(self.service)
        channel.dataReceived(b"GET /ready HTTP/1.1\r\nX: " + b"a" * 16_384)
        self.assertTrue(transport.disconnecting)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 431 "), transport.value())


class PipeliningTests(SynchronousTestCase):
    """
    A connection has one request in flight; what a client sends after it
    waits, up to L{METRICS_HELD_BYTES}, and is taken one request per turn
    of the reactor. On a fake clock.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.service = memoryService(self.clock)

    def test_oneRequestAtATime(self) -> None:
        """
        100 pipelined requests in one read get one answer; the others are
        taken later (a fake clock runs every later turn in one C{advance},
        so at most a burst of them at once), in order, at the endpoint's
        pace, and all are answered in the end.
        """
        channel, transport = connect(self.service)
        channel.dataReceived(PROBE + SCRAPE * 99)
        self.assertEqual(responses(transport.value()), 1)
        self.assertTrue(transport.value().endswith(b"\r\n\r\nready\n"))
        self.clock.advance(0)
        self.assertLessEqual(responses(transport.value()), METRICS_REQUEST_BURST)
        for _ in range(100 * 100 // METRICS_REQUESTS_PER_SECOND + 100):
            self.clock.advance(0.01)
        self.assertEqual(responses(transport.value()), 100)
        self.assertFalse(transport.disconnecting)

    def test_floodIsNotReadWhole(self) -> None:
        """
        A flood of pipelined requests (2 MB, read 64 KiB at a time) is
        not buffered whole: past L{METRICS_HELD_BYTES} the connection is
        no longer read (TCP pushes back on the client), and one request
        has been answered.
        """
        channel, transport = connect(self.service)
        flood = SCRAPE * (2_000_000 // len(SCRAPE))
        for start in range(0, len(flood), 65536):
            if transport.producerState == "paused":
                break
            channel.dataReceived(flood[start:start + 65536])
        self.assertEqual(transport.producerState, "paused")
        self.assertLess(start, METRICS_HELD_BYTES + 65536)
        self.assertEqual(responses(transport.value()), 1)

    def test_readingResumes(self) -> None:
        """
        Once the requests it held back have been answered, the connection
        is read again.
        """
        channel, transport = connect(self.service)
        count = METRICS_HELD_BYTES // len(PROBE) + 2
        channel.dataReceived(PROBE * count)
        self.assertEqual(transport.producerState, "paused")
        for _ in range(count * 100 // METRICS_REQUESTS_PER_SECOND + 100):
            self.clock.advance(0.01)
        self.assertEqual(responses(transport.value()), count)
        self.assertEqual(transport.producerState, "producing")


class TurnTests(SynchronousTestCase):
    """
    The endpoint answers at most L{METRICS_REQUESTS_PER_SECOND} requests a
    second, over all its connections, first come first served, and renders
    C{/metrics} at most once a L{METRICS_CACHE_SECONDS}. On a fake clock.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.service = memoryService(self.clock)

    def test_requestsTakeTurns(self) -> None:
        """
        30 connections whose requests arrive at once: a burst of
        L{METRICS_REQUEST_BURST} is answered at once, the others in the
        order they came at the endpoint's pace, all within a second.
        """
        connections = [connect(self.service, 50000 + i) for i in range(30)]
        for channel, _ in connections:
            channel.dataReceived(PROBE)
        answered = [responses(t.value()) for _, t in connections]
        self.assertEqual(answered, [1] * METRICS_REQUEST_BURST + [0] * (30 - METRICS_REQUEST_BURST))
        self.clock.advance(1 / METRICS_REQUESTS_PER_SECOND)
        self.assertEqual(responses(connections[METRICS_REQUEST_BURST][1].value()), 1)
        self.assertEqual(responses(connections[METRICS_REQUEST_BURST + 1][1].value()), 0)
        for _ in range(METRICS_REQUESTS_PER_SECOND - 1):
            self.clock.advance(1 / METRICS_REQUESTS_PER_SECOND)
        self.assertEqual([responses(t.value()) for _, t in connections], [1] * 30)

    def test_healthChecksFirst(self) -> None:
        """
        A probe that comes while scrapes wait for their turns takes the
        next turn, before them.
        """
        scrapes = [connect(self.service, 50000 + i) for i in range(METRICS_REQUEST_BURST + 5)]
        for channel, _ in scrapes:
            channel.dataReceived(SCRAPE)
        probe, transport = connect(self.service, 60000)
        probe.dataReceived(PROBE)
        self.assertEqual(transport.value(), b"")
        self.clock.advance(1 / METRICS_REQUESTS_PER_SECOND)
        self.assertTrue(transport.value().endswith(b"ready\n"))
        self.assertEqual(
            [responses(t.value()) for _, t in scrapes],
            [1] * METRICS_REQUEST_BURST + [0] * 5,
        )

    def test_scrapesShareOneRender(self) -> None:
        """
        Scrapes within L{METRICS_CACHE_SECONDS} of a render get its
        exposition; the first one after that renders again (and samples
        the server's numbers again).
        """
        sampled: list[float] = []
        self.service.metricsResource.beforeScrape.append(
            lambda: sampled.append(self.clock.seconds())
        )
        for _ in range(5):
            channel, transport = connect(self.service)
            channel.dataReceived(SCRAPE)
            self.assertIn(b"answers_total 42.0", transport.value())
            self.clock.advance(METRICS_CACHE_SECONDS / 10)
        self.assertEqual(sampled, [0.0])
        self.clock.advance(METRICS_CACHE_SECONDS)
        channel, transport = connect(self.service)
        channel.dataReceived(SCRAPE)
        self.assertEqual(len(sampled), 2)


class PlacesTests(SynchronousTestCase):
    """
    At L{MAX_METRICS_CONNECTIONS}, a new connection takes the place of the
    one that has waited longest for its client. On a fake clock.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.service = memoryService(self.clock)

    def test_longestWaitingMakesRoom(self) -> None:
        """
        With every place taken by clients that sent part of a request, a
        new connection closes the one that has waited longest, and gets
        its answer.
        """
        held = []
        for i in range(MAX_METRICS_CONNECTIONS):
            channel, transport = connect(self.service, 50000 + i)
            channel.dataReceived(b"GET /metr")
            held.append(transport)
            self.clock.advance(0.1)
        channel, transport = connect(self.service, 60000)
        self.assertEqual([t.disconnecting for t in held], [True] + [False] * (len(held) - 1))
        channel.dataReceived(PROBE)
        self.assertIn(b"ready\n", transport.value())

    def test_noPlaceWhileEveryRequestWaitsItsTurn(self) -> None:
        """
        When every connection has a first request waiting for its turn,
        a new connection is closed at once; once turns have come, there
        is room again.
        """
        for i in range(METRICS_REQUEST_BURST):
            channel, transport = connect(self.service, 40000 + i)
            channel.dataReceived(PROBE)
            self.assertEqual(responses(transport.value()), 1)
            channel.connectionLost(Failure(ConnectionDone()))
        connections = []
        for i in range(MAX_METRICS_CONNECTIONS):
            channel, transport = connect(self.service, 50000 + i)
            channel.dataReceived(PROBE)
            self.assertEqual(transport.value(), b"")
            connections.append((channel, transport))
        self.assertIsNone(
            self.service.site.buildProtocol(IPv4Address("TCP", "192.0.2.8", 1))
        )
        self.clock.advance(1)
        channel, transport = connect(self.service, 60000)
        self.assertEqual(sum(t.disconnecting for _, t in connections), 1)

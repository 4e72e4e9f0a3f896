# -*- test-case-name: tests.test_metricsweb -*-
"""
The metrics endpoint's connections: what a client of C{--metrics} may ask,
how much of the reactor it may take, and for how long it may hold a place.

Anyone who can reach the port can talk to it, and it shares its reactor
with the TLS listeners (with C{--workers}, with the parent's supervision of
its workers), so every connection is held to:

  - B{one request at a time}: a request head (the request line and its
    headers; the endpoint takes no body) is handed to twisted.web only once
    it has arrived whole, and whatever the client sends after it
    (pipelined requests) waits until the answer has been written out. At
    most L{METRICS_HELD_BYTES} wait; past that, the connection is not read
    (TCP pushes back on the client), so a flood of pipelined requests never
    fills the server's memory. The next request is taken on a later turn
    of the reactor, never back to back.
  - B{deadlines, not idle timers}: a request must arrive whole within
    L{METRICS_REQUEST_TIMEOUT} seconds of the connection's start, or, on a
    kept-alive connection, of its first byte (or of the previous answer,
    for a request that was already waiting), however slowly it trickles;
    otherwise it is answered 408 and closed. A kept-alive connection may
    wait L{METRICS_IDLE_TIMEOUT} seconds for its next request, and an
    answer as long for the client to read it, before it is closed.
  - B{turns}: the requests of every connection together are answered at
    most L{METRICS_REQUESTS_PER_SECOND} a second, in bursts of at most
    L{METRICS_REQUEST_BURST}, first come first served, health checks
    (C{/ready}, C{/live}) before scrapes (L{RequestPacer}): a handful of
    scrapers and probes never wait, scrapers in a loop cannot take the
    reactor from the TLS connections, and a probe waits at most for one
    turn, or for those of other health checks (two thirds of a second if
    every other connection has one).
  - B{places}: at most L{MAX_METRICS_CONNECTIONS} connections. When all
    are taken, a new connection takes the place of the one that has waited
    longest for its client (to send a whole request, or to read an
    answer), which is closed: slow clients cannot keep a probe out. If
    every connection has a request waiting for its turn, the one that has
    been answered most makes room; if none has been answered yet, the new
    connection is closed (and the turns free a place within two thirds of
    a second).

A client that can open connections faster than the turns answer them can
still keep probes out: that is for the network to stop (only the kubelet,
the load balancer and Prometheus should reach the port; see
docs/deployment.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from tlsreply.connection.addresses import formatAddress
from tlsreply.metrics._pacing import RequestPacer

_log = Logger(namespace="tlsreply.metrics")

#: The most connections the metrics endpoint has open at once (see the
#: module's docstring for what a new one does beyond). A scraper and a few
#: health checks need a handful. Without C{--workers}, they come out of
#: the 64 descriptors the server keeps beyond C{--max-connections} for its
#: listeners and logs (L{tlsreply.lifecycle.raiseDescriptorLimit}).
MAX_METRICS_CONNECTIONS: Final = 32

#: Seconds a request has to arrive whole, from the connection's start or
#: the first byte of a later request on a kept-alive connection.
METRICS_REQUEST_TIMEOUT: Final = 5.0

#: Seconds a kept-alive connection may wait for its next request, and an
#: answer for the client to read it.
METRICS_IDLE_TIMEOUT: Final = 10.0

#: Requests the endpoint answers a second, over all its connections: far
#: more than Prometheus and probes need, little of the reactor (a scrape
#: costs 0.1 to 0.6 ms of server CPU, rendering aside), and enough that a
#: probe behind a request on every other connection waits under a second.
METRICS_REQUESTS_PER_SECOND: Final = 50

#: Requests the endpoint answers at once after a quiet moment.
METRICS_REQUEST_BURST: Final = 10

#: Bytes a connection may send ahead of the request being answered before
#: it is no longer read; also the longest request head (the request line
#: and its headers) the endpoint takes.
METRICS_HELD_BYTES: Final = 16384

#: The paths of the health checks, whose requests take their turns before
#: scrapes.
HEALTH_PATHS: Final = (b"/ready", b"/live")

#: The methods the endpoint answers; any other is 405.
METHODS: Final = (b"GET", b"HEAD")

_END_OF_HEAD: Final = b"\r\n\r\n"


def _plainResponse(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 %s\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\n"
        b"Connection: close\r\n"
        b"\r\n%s" % (status, len(text), text)
    )


_TOO_LARGE: Final = _plainResponse(
    b"413 Content Too Large", b"the metrics endpoint takes no request body\n"
)
_TOO_SLOW: Final = _plainResponse(
    b"408 Request Timeout",
    b"the request did not arrive whole within %g seconds\n" % METRICS_REQUEST_TIMEOUT,
)
_BAD_REQUEST: Final = _plainResponse(b"400 Bad Request", b"not an HTTP/1.1 request\n")
_HEAD_TOO_LARGE: Final = _plainResponse(
    b"431 Request Header Fields Too Large",
    b"the request line and headers must fit in %d bytes\n" % METRICS_HELD_BYTES,
)


class MetricsRequest(Request):
    """
    A request to the metrics endpoint: GET or HEAD, without a body, and
    answered with the headers tlsreply chose (not twisted.web's C{Server}).

    A request that announces a body (a C{Content-Length} other than 0, or
    C{Transfer-Encoding: chunked}), whatever its method, is answered 413
    as soon as its headers are in and the connection is closed: nothing of
    the body is read. Any other method than GET and HEAD is answered 405,
    before a resource is looked up.
    """

    _refused = False

    def gotLength(self, length: int | None) -> None:
        """
        Called by C{twisted.web.http.HTTPChannel} once the headers are in, with the
        length they announce (C{None} for chunked): where twisted.web
        would make the body's buffer, refuse any body.
        """
        if length == 0:
            super().gotLength(length)
            return
        self._refused = True
        # allHeadersReceived answers "Expect: 100-continue" right after
        # this: no 100 Continue must follow the 413.
        self.requestHeaders.removeHeader(b"expect")
        channel = self.channel
        if isinstance(channel, MetricsChannel):
            channel.refuse(_TOO_LARGE)

    def handleContentChunk(self, data: bytes) -> None:
        """
        Drop what came of a refused body with its headers (none does: the
        channel hands over heads only).
        """
        if not self._refused:
            super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)

    def process(self) -> None:
        if self.method in METHODS:
            super().process()
            return
        self.setResponseCode(http.NOT_ALLOWED)
        self.setHeader(b"allow", b", ".join(METHODS))
        self.setHeader(b"content-type", b"text/plain; charset=utf-8")
        self.write(b"the metrics endpoint answers GET and HEAD\n")
        self.finish()

    def write(self, data: bytes) -> None:
        """
        Before the headers go out, take twisted.web's own C{Server} header
        (its name and version) off them.
        """
        if not self.startedWriting:
            self.responseHeaders.removeHeader(b"server")
        super().write(data)


# What a connection is doing (MetricsChannel._state).
_READING = "reading"  # waiting for a request to arrive whole
_WAITING = "waiting"  # a whole request waits for its turn, or is answered
_RESTING = "resting"  # answered; the next request is looked at next turn
_WRITING = "writing"  # answered; the client has not read it all
_CLOSING = "closing"  # closed by the endpoint, not yet gone
_CLOSED = "closed"


class MetricsChannel(http.HTTPChannel):
    """
    A connection to the metrics endpoint: one request at a time, each
    whole within its deadline, in its turn (see the module's docstring).

    @ivar answered: how many of its requests have been answered.
    @ivar waitingSince: when it started waiting for what it waits for now.
    """

    site: MetricsSite

    def __init__(self) -> None:
        super().__init__()
        self._held = bytearray()
        self._state = _READING
        self._timer: IDelayedCall | None = None
        self._deadline = 0.0
        self._resting: IDelayedCall | None = None
        self._notReading = False
        self.answered = 0
        self.waitingSince = 0.0

    @property
    def waitingForClient(self) -> bool:
        """
        Whether it waits for its client, to send a request or to read an
        answer (and would be the first to make room for a new connection).
        """
        return self._state in (_READING, _RESTING, _WRITING, _CLOSING)

    def _now(self) -> float:
        return self.site.reactor.seconds()

    def _setTimer(self, seconds: float, expired: Callable[[], None]) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._deadline = self._now() + seconds
        self._timer = self.site.reactor.callLater(seconds, expired)

    def connectionMade(self) -> None:
        super().connectionMade()
        self.site.connectionOpened(self)
        self._awaitRequest(self.site.requestTimeout)

    def _awaitRequest(self, seconds: float) -> None:
        """
        Wait for the next request; one that is not whole within C{seconds}
        is refused.
        """
        self._state = _READING
        self.waitingSince = self._now()
        self._setTimer(seconds, self._tooSlow if self._held else self._idle)
        self._takeRequest()

    def dataReceived(self, data: bytes) -> None:
        if self._state in (_CLOSING, _CLOSED):
            return
        if self._state == _READING and not self._held and data:
            # The first byte of a request: the first request's deadline
            # runs from the connection's start, a later one's from now.
            seconds = self.site.requestTimeout
            if not self.answered:
                seconds = max(0.0, min(seconds, self._deadline - self._now()))
            self._setTimer(seconds, self._tooSlow)
        self._held += data
        if self._state == _READING:
            self._takeRequest()
        self._limitReading()

    def _takeRequest(self) -> None:
        """
        If a request has arrived whole, ask for its turn.
        """
        if self._held.find(_END_OF_HEAD) < 0:
            if len(self._held) > METRICS_HELD_BYTES:
                self.refuse(_HEAD_TOO_LARGE)
            return
        self._state = _WAITING
        self.waitingSince = self._now()
        # Turns come within a second or so; this only bounds the unforeseen.
        self._setTimer(self.site.idleTimeout, self._abort)
        self.site.pacer.ask(self._answer, urgent=self._isHealthCheck())

    def _isHealthCheck(self) -> bool:
        """
        Whether the request that arrived whole asks for C{/ready} or
        C{/live} (a cheap look at its request line; twisted.web parses it
        in its turn).
        """
        requestLine = bytes(self._held[: self._held.find(b"\r\n")])
        parts = requestLine.split(b" ")
        return len(parts) == 3 and parts[1].split(b"?")[0] in HEALTH_PATHS

    def _answer(self) -> None:
        """
        Its turn: hand the request to twisted.web, which answers it.
        """
        end = self._held.find(_END_OF_HEAD) + len(_END_OF_HEAD)
        head = bytes(self._held[:end])
        del self._held[:end]
        super().dataReceived(head)

    def requestDone(self, request: http.Request) -> None:
        """
        The answer is written: take the next request on a later turn of
        the reactor, once the client has read the answer.
        """
        super().requestDone(request)
        self.answered += 1
        if self._state in (_CLOSING, _CLOSED):
            return
        if not self.persistent:
            # twisted.web closed it (HTTP/1.0, or "Connection: close").
            self._closing()
            return
        if self._waitingForTransport:
            self._state = _WRITING
            self.waitingSince = self._now()
            self._setTimer(self.site.idleTimeout, self._abort)
        else:
            self._rest()

    def _rest(self) -> None:
        self._state = _RESTING
        self.waitingSince = self._now()
        self._setTimer(self.site.idleTimeout, self._idle)
        self._resting = self.site.reactor.callLater(0, self._nextRequest)
        self._limitReading()

    def _nextRequest(self) -> None:
        self._resting = None
        self._awaitRequest(
            self.site.requestTimeout if self._held else self.site.idleTimeout
        )

    def resumeProducing(self) -> None:
        """
        The transport has written out what it held: an answer the client
        was slow to read is out.
        """
        super().resumeProducing()
        if self._state == _WRITING:
            self._rest()
        self._limitReading()

    def _limitReading(self) -> None:
        """
        Read the connection only while it holds at most
        L{METRICS_HELD_BYTES} ahead of the request being answered.
        """
        if self._state in (_CLOSING, _CLOSED) or self.transport is None:
            return
        tooMuch = len(self._held) > METRICS_HELD_BYTES
        if tooMuch:
            # Again each time: twisted.web resumes reading as it finishes
            # an answer.
            self._notReading = True
            self.transport.pauseProducing()  # type: ignore[attr-defined]
        elif self._notReading and not self._waitingForTransport:
            self._notReading = False
            self.transport.resumeProducing()  # type: ignore[attr-defined]

    def refuse(self, response: bytes) -> None:
        """
        Write C{response} (a whole response, with C{Connection: close}),
        then close the connection.
        """
        if self._state in (_CLOSING, _CLOSED) or self.transport is None:
            return
        self.transport.write(response)
        self._closing()

    def _respondToBadRequestAndDisconnect(self) -> None:
        # twisted.web's own answer to a request it cannot parse, in words
        # tlsreply chose.
        self.refuse(_BAD_REQUEST)

    def _tooSlow(self) -> None:
        self.refuse(_TOO_SLOW)

    def _idle(self) -> None:
        if self._state not in (_CLOSING, _CLOSED):
            self._closing()

    def _closing(self) -> None:
        """
        Close the connection once what was written is out; abort it if the
        client does not read that within the idle timeout.
        """
        self._state = _CLOSING
        self.waitingSince = self._now()
        self._held.clear()
        if self._resting is not None:
            self._resting.cancel()
            self._resting = None
        self.site.pacer.cancel(self._answer)
        self._setTimer(self.site.idleTimeout, self._abort)
        if self.transport is not None:
            self.transport.loseConnection()

    def _abort(self) -> None:
        self._state = _CLOSING
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def makeRoom(self) -> None:
        """
        Close this connection for a new one: gently if it waits for a
        request (nothing is lost), at once if the client is slow to read.
        """
        if self._state == _WRITING:
            self._abort()
        else:
            self._closing()

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self._state = _CLOSED
        self._held.clear()
        for call in (self._timer, self._resting):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._resting = None
        self.site.pacer.cancel(self._answer)
        super().connectionLost(reason)
        self.site.connectionClosed(self)

    def timeoutConnection(self) -> None:
        # twisted.web's idle timer is off (the site's timeOut is None);
        # the deadlines above replace it, and log nothing per connection.
        self._closing()


class MetricsSite(Site):
    """
    The metrics endpoint's site: quiet (a scraper every 15 s and a health
    check every 2 s would fill the server's log with one line a request),
    plain HTTP/1.1, its connections held to the module's rules.

    @ivar connections: those open now, oldest first.
    @ivar evicted: how many were closed to make room since the cap was
        reached (logged once the endpoint is below it again).
    @ivar refused: how many new ones were closed at once since then.
    """

    noisy = False
    protocol = MetricsChannel  # type: ignore[assignment]

    def __init__(
        self,
        root: Resource,
        reactor: IReactorTime,
        maxConnections: int = MAX_METRICS_CONNECTIONS,
        idleTimeout: float = METRICS_IDLE_TIMEOUT,
        requestTimeout: float = METRICS_REQUEST_TIMEOUT,
    ) -> None:
        super().__init__(root, MetricsRequest, timeout=None, reactor=reactor)
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
        self.pacer = RequestPacer(reactor, METRICS_REQUESTS_PER_SECOND, METRICS_REQUEST_BURST)
        self.connections: dict[MetricsChannel, None] = {}
        self.evicted = 0
        self.refused = 0
        self._full = False

    @property
    def openConnections(self) -> int:
        """
        How many connections are open now.
        """
        return len(self.connections)

    def buildProtocol(  # type: ignore[override]
        self, addr: IAddress | None
    ) -> http.HTTPChannel | None:
        if len(self.connections) >= self.maxConnections:
            room = self._makeRoom()
            if not self._full:
                self._full = True
                _log.warn(
                    "metrics endpoint at its cap of {maxConnections} connections: "
                    "each new one (from {peer} first) takes the place of the one "
                    "that waited longest for its client",
                    maxConnections=self.maxConnections,
                    peer=formatAddress(addr) if addr is not None else "?",
                )
            if room is None:
                self.refused += 1
                return None
            self.evicted += 1
            del self.connections[room]
            room.makeRoom()
        return super().buildProtocol(addr)

    def _makeRoom(self) -> MetricsChannel | None:
        """
        The connection to close for a new one, if any.
        """
        waiting = [c for c in self.connections if c.waitingForClient]
        if waiting:
            return min(waiting, key=lambda c: c.waitingSince)
        answered = [c for c in self.connections if c.answered]
        if answered:
            return max(answered, key=lambda c: (c.answered, -c.waitingSince))
        return None

    def connectionOpened(self, channel: MetricsChannel) -> None:
        self.connections[channel] = None

    def connectionClosed(self, channel: MetricsChannel) -> None:
        self.connections.pop(channel, None)
        if self._full and len(self.connections) < self.maxConnections:
            self._full = False
            _log.info(
                "metrics endpoint below its cap again; {evicted} connection(s) "
                "were closed to make room, {refused} new one(s) closed at once",
                evicted=self.evicted,
                refused=self.refused,
            )
            self.evicted = self.refused = 0

    def log(self, request: http.Request) -> None:
        pass

    def logPrefix(self) -> str:
        return "tlsreply metrics"

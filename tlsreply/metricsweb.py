# -*- test-case-name: tests.test_metrics -*-
"""
The metrics endpoint (C{--metrics ENDPOINT}): C{/metrics} for Prometheus,
C{/ready} and C{/live} for load balancers and orchestrators, on a
C{twisted.web} site of its own, apart from the TLS listeners.

  - C{/metrics}: every metric of the registry, in the format the scraper
    asks for (Prometheus text, or OpenMetrics), rendered in the reactor's
    thread (a scrape reads a few hundred numbers, and with C{--workers} a
    few small files);
  - C{/ready}: 200 C{ready} while the server takes connections, 503
    C{draining} once L{Health.startDraining} was called (a load balancer
    then stops sending new clients before the listeners close);
  - C{/live}: 200 C{live} while the process answers at all.

Anyone who can reach the port can talk to it, so it takes only what these
need: GET and HEAD without a request body (a body is refused before any of
it is read; twisted.web's own L{Request} would store it whole first, up to
gigabytes in a temporary file), at most L{MAX_METRICS_CONNECTIONS}
connections at once, each closed after L{METRICS_IDLE_TIMEOUT} seconds
without a request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from tlsreply.addresses import escapeIPv6Interface, formatAddress
from tlsreply.errors import ConfigurationError

#: The name of the metrics service among the top service's children
#: (C{lifecycle.getServiceNamed(METRICS_SERVICE_NAME)}).
METRICS_SERVICE_NAME = "metrics"

_log = Logger(namespace="tlsreply.metrics")

#: The most connections the metrics endpoint has open at once; those
#: beyond are closed as soon as they are accepted. A scraper and a few
#: health checks need a handful. Without C{--workers}, they come out of the
#: 64 descriptors the server keeps beyond C{--max-connections} for its
#: listeners and logs (L{tlsreply.lifecycle.raiseDescriptorLimit}).
MAX_METRICS_CONNECTIONS: Final = 32

#: Seconds a metrics connection may stay idle (no request under way)
#: before it is closed: a scraper or load balancer that keeps its
#: connection open between checks opens another one.
METRICS_IDLE_TIMEOUT: Final = 10.0

#: The methods the endpoint answers; any other is 405.
_METHODS: Final = (b"GET", b"HEAD")

_BODY_REFUSED: Final = b"the metrics endpoint takes no request body\n"
_TOO_LARGE: Final = (
    b"HTTP/1.1 413 Content Too Large\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n"
    b"\r\n%s" % (len(_BODY_REFUSED), _BODY_REFUSED)
)


class Health:
    """
    Whether the server wants new clients: what C{/ready} answers.

    @ivar draining: set by L{startDraining}; C{/ready} then answers 503.
    """

    def __init__(self) -> None:
        self.draining = False

    def startDraining(self) -> None:
        """
        From now on, C{/ready} answers 503 C{draining}: a load balancer's
        health check (or a Kubernetes readiness probe) takes the server out
        of rotation, while connections in progress, and new ones that still
        arrive, are served as before. Call it before closing the listeners.
        It cannot be undone: a draining server is about to stop.
        """
        self.draining = True


def parseMetricsAddress(reactor: object, description: str) -> IStreamServerEndpoint:
    """
    Turn C{--metrics}'s value into an endpoint: a Twisted server endpoint
    description (C{tcp:9102:interface=127.0.0.1}, C{tcp6:9102:interface=::1}
    with or without the colons escaped, as C{--port} takes it), or a bare
    port number for C{tcp:N} on every interface.

    @raise ConfigurationError: naming C{--metrics}, for a description that
        Twisted cannot parse.
    """
    given = escapeIPv6Interface(description.strip())
    if re.fullmatch(r"\d+", given):
        given = f"tcp:{given}"
    parts = re.split(r"(?<!\\):", given)
    if parts[0] in ("tcp", "tcp6"):
        keywords = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        positional = [p for p in parts[1:] if "=" not in p]
        port = keywords.get("port", positional[0] if positional else "")
        if not port.isdigit() or int(port) > 65535:
            raise ConfigurationError(
                f"--metrics: {description!r}: the port must be a number from 0 to "
                f"65535, not {port!r} (e.g. tcp:9102:interface=127.0.0.1)"
            )
    try:
        return serverFromString(reactor, given)
    except (ValueError, TypeError, KeyError, IndexError) as e:
        why = f": {e}" if str(e) else ""
        raise ConfigurationError(
            f"--metrics: bad endpoint description {description!r}{why} "
            "(e.g. tcp:9102:interface=127.0.0.1)"
        ) from None


def _headOf(renderGET: Callable[[Any, Request], bytes]) -> Callable[[Any, Request], bytes]:
    """
    A resource's C{render_HEAD}, from its C{render_GET}: the same status
    and headers, with the body's C{Content-Length}, and no body. Without
    one, twisted.web logs a line for every HEAD while it fakes it with
    C{render_GET}; and given the body, it logs a line that it "will eat
    it": either way, a health check's every probe would be in the log.
    """

    def render_HEAD(resource: Any, request: Request) -> bytes:
        body = renderGET(resource, request)
        request.setHeader(b"content-length", b"%d" % (len(body),))
        return b""

    return render_HEAD


class _Text(Resource):
    """
    A fixed plain-text answer, whose status a callable decides.
    """

    isLeaf = True

    def __init__(self, answer: Callable[[], tuple[int, bytes]]) -> None:
        super().__init__()
        self._answer = answer

    def render_GET(self, request: Request) -> bytes:
        status, body = self._answer()
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return body

    render_HEAD = _headOf(render_GET)


#: What any other path answers.
_NOT_FOUND: Final = _Text(lambda: (404, b"not found\n"))


class _Root(Resource):
    """
    The endpoint's root: its three paths, and a plain 404 elsewhere
    (Twisted's default for an unknown child is deprecated).
    """

    def getChild(self, path: bytes, request: Request) -> Resource:
        return _NOT_FOUND


class MetricsResource(Resource):
    """
    C{/metrics}: the registry's metrics, in the exposition format the
    scraper's C{Accept} header asks for.

    @ivar beforeScrape: called first on every scrape (to sample what a
        single-process server counts as plain numbers, see
        L{tlsreply.metrics.ServerSampler}).
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry
        self.beforeScrape: list[Callable[[], None]] = []

    def render_GET(self, request: Request) -> bytes:
        for sample in self.beforeScrape:
            sample()
        accept = request.getHeader(b"accept")
        encoder, contentType = choose_encoder(accept.decode("latin-1") if accept else "")
        request.setHeader(b"content-type", contentType.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return encoder(self.registry)

    # A HEAD costs what a GET does.
    render_HEAD = _headOf(render_GET)


def healthResource(registry: CollectorRegistry, health: Health) -> tuple[Resource, MetricsResource]:
    """
    The endpoint's tree: C{/metrics}, C{/ready}, C{/live}.

    @return: the root, and its C{/metrics} resource.
    """
    metrics = MetricsResource(registry)
    root = _Root()
    root.putChild(b"metrics", metrics)
    root.putChild(
        b"ready",
        _Text(lambda: (503, b"draining\n") if health.draining else (200, b"ready\n")),
    )
    root.putChild(b"live", _Text(lambda: (200, b"live\n")))
    return root, metrics


class _MetricsRequest(Request):
    """
    A request to the metrics endpoint: GET or HEAD, without a body.

    A request that announces a body (a C{Content-Length} other than 0, or
    C{Transfer-Encoding: chunked}), whatever its method, is answered 413
    as soon as its headers are in and the connection is closed: nothing of
    the body is read. Any other method than GET and HEAD is answered 405,
    before a resource is looked up.
    """

    _refused = False

    def gotLength(self, length: int | None) -> None:
        """
        Called by L{http.HTTPChannel} once the headers are in, with the
        length they announce (L{None} for chunked): where twisted.web
        would make the body's buffer, refuse any body.
        """
        if length == 0:
            super().gotLength(length)
            return
        self._refused = True
        # allHeadersReceived answers "Expect: 100-continue" right after
        # this: no 100 Continue must follow the 413.
        self.requestHeaders.removeHeader(b"expect")
        transport = self.channel.transport
        if transport is not None:
            transport.write(_TOO_LARGE)
            self.channel.loseConnection()

    def handleContentChunk(self, data: bytes) -> None:
        """
        Drop what came of a refused body with its headers (reading stopped
        once the 413 was written).
        """
        if not self._refused:
            super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)

    def process(self) -> None:
        if self.method in _METHODS:
            super().process()
            return
        self.setResponseCode(http.NOT_ALLOWED)
        self.setHeader(b"allow", b", ".join(_METHODS))
        self.setHeader(b"content-type", b"text/plain; charset=utf-8")
        self.write(b"the metrics endpoint answers GET and HEAD\n")
        self.finish()


class _MetricsChannel(http.HTTPChannel):
    """
    A connection to the metrics endpoint, counted by its site while open.
    """

    #: Seconds after the idle timeout closed the connection, for a client
    #: that does not read what is left, before it is aborted.
    abortTimeout = 5

    site: _MetricsSite

    def connectionMade(self) -> None:
        self.site.connectionOpened()
        super().connectionMade()

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        super().connectionLost(reason)
        self.site.connectionClosed()


class _MetricsSite(Site):
    """
    The metrics endpoint's site: quiet (a scraper every 15 s and a health
    check every 2 s would fill the server's log with one line a request),
    plain HTTP/1.1, at most C{maxConnections} connections at once.

    @ivar openConnections: how many are open now.
    @ivar refused: how many were closed at once since the cap was reached
        (logged once the endpoint is below it again).
    """

    noisy = False
    protocol = _MetricsChannel  # type: ignore[assignment]

    def __init__(
        self, root: Resource, reactor: IReactorTime, maxConnections: int, timeout: float
    ) -> None:
        super().__init__(root, _MetricsRequest, timeout=timeout, reactor=reactor)
        self.maxConnections = maxConnections
        self.openConnections = 0
        self.refused = 0

    def buildProtocol(  # type: ignore[override]
        self, addr: IAddress | None
    ) -> http.HTTPChannel | None:
        if self.openConnections >= self.maxConnections:
            if not self.refused:
                _log.warn(
                    "metrics endpoint at its cap of {maxConnections} connections: "
                    "closing new ones (from {peer} first) until some close",
                    maxConnections=self.maxConnections,
                    peer=formatAddress(addr) if addr is not None else "?",
                )
            self.refused += 1
            return None
        return super().buildProtocol(addr)

    def connectionOpened(self) -> None:
        self.openConnections += 1

    def connectionClosed(self) -> None:
        self.openConnections -= 1
        if self.refused and self.openConnections < self.maxConnections:
            _log.info(
                "metrics endpoint below its cap again; {refused} connection(s) were closed",
                refused=self.refused,
            )
            self.refused = 0

    def log(self, request: http.Request) -> None:
        pass

    def logPrefix(self) -> str:
        return "tlsreply metrics"


class MetricsService(Service):
    """
    Serves the metrics endpoint. It listens in C{privilegedStartService}
    (before twistd drops privileges, like the TLS listeners), and a failure
    to listen is a L{ConfigurationError} at start-up.

    @ivar health: what C{/ready} answers; L{Health.startDraining} turns it
        to 503.
    @ivar metricsResource: C{/metrics}.
    @ivar port: the listening port, once listening.
    @ivar atStop: called once the service has stopped listening.
    """

    _log = Logger()

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        description: str,
        registry: CollectorRegistry,
        health: Health | None = None,
        *,
        reactor: IReactorTime | None = None,
        maxConnections: int = MAX_METRICS_CONNECTIONS,
        idleTimeout: float = METRICS_IDLE_TIMEOUT,
    ) -> None:
        """
        @param reactor: what the connections' idle timeouts are timed on;
            the global reactor when L{None}.
        @param maxConnections: see L{MAX_METRICS_CONNECTIONS}.
        @param idleTimeout: see L{METRICS_IDLE_TIMEOUT}.
        """
        self.setName(METRICS_SERVICE_NAME)
        self.endpoint = endpoint
        self.description = description
        self.health = health if health is not None else Health()
        root, self.metricsResource = healthResource(registry, self.health)
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        self.site = _MetricsSite(root, reactor, maxConnections, idleTimeout)
        self.port: IListeningPort | None = None
        self.atStop: list[Callable[[], None]] = []
        self._listening = False

    def startDraining(self) -> None:
        """
        See L{Health.startDraining}.
        """
        self.health.startDraining()

    @property
    def draining(self) -> bool:
        return self.health.draining

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._listen()

    def startService(self) -> None:
        super().startService()
        self._listen()

    def _listen(self) -> None:
        if self._listening:
            return
        self._listening = True
        failures: list[Failure] = []
        self.endpoint.listen(self.site).addCallbacks(self._listened, failures.append)
        if failures:
            self._listening = False
            error = failures[0].value
            why = str(error) or type(error).__name__
            if isinstance(error, CannotListenError) and error.socketError is not None:
                why = getattr(error.socketError, "strerror", None) or str(error.socketError)
            raise ConfigurationError(f"--metrics: cannot listen on {self.description}: {why}")

    def _listened(self, port: IListeningPort) -> None:
        self.port = port
        self._log.info(
            "metrics on {address}: /metrics, /ready, /live",
            address=formatAddress(port.getHost()),
        )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._listening = False
        port, self.port = self.port, None
        stopped = maybeDeferred(port.stopListening) if port is not None else succeed(None)

        def done(_: object) -> None:
            for call in self.atStop:
                call()

        return stopped.addCallback(done)

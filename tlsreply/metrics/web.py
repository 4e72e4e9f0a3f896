# -*- test-case-name: tests.test_metrics -*-
"""
The metrics endpoint (C{--metrics ENDPOINT}): C{/metrics} for Prometheus,
C{/ready} and C{/live} for load balancers and orchestrators, on a
C{twisted.web} site of its own, apart from the TLS listeners.

  - C{/metrics}: every metric of the registry, in the format the scraper
    asks for (Prometheus text, or OpenMetrics), rendered in the reactor's
    thread (a scrape reads a few hundred numbers, and with C{--workers} a
    few small files) at most once every L{METRICS_CACHE_SECONDS} for each
    format: scrapes in between get the same exposition, so any number of
    scrapers cost one rendering a second;
  - C{/ready}: 200 C{ready} while the server takes connections, 503
    C{draining} once L{Health.startDraining} was called (a load balancer
    then stops sending new clients before the listeners close);
  - C{/live}: 200 C{live} while the process answers at all.

Anyone who can reach the port can talk to it, so it takes only what these
need: GET and HEAD without a request body (a body is refused before any of
it is read; twisted.web's own C{Request} would store it whole first, up to
gigabytes in a temporary file), one request at a time on each connection,
each whole within a deadline, in turns, from at most
L{MAX_METRICS_CONNECTIONS} connections at once: L{tlsreply.metrics._http}
says how.
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
from twisted.internet.interfaces import (
    IListeningPort,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request

from tlsreply.connection.addresses import escapeIPv6Interface, formatAddress
from tlsreply.errors import ConfigurationError, cannotListen
from tlsreply.metrics._http import (
    MAX_METRICS_CONNECTIONS,
    METRICS_HELD_BYTES,
    METRICS_IDLE_TIMEOUT,
    METRICS_REQUEST_BURST,
    METRICS_REQUEST_TIMEOUT,
    METRICS_REQUESTS_PER_SECOND,
    MetricsSite,
)

__all__ = [
    "MAX_METRICS_CONNECTIONS",
    "METRICS_CACHE_SECONDS",
    "METRICS_HELD_BYTES",
    "METRICS_IDLE_TIMEOUT",
    "METRICS_REQUEST_BURST",
    "METRICS_REQUEST_TIMEOUT",
    "METRICS_REQUESTS_PER_SECOND",
    "METRICS_SERVICE_NAME",
    "Health",
    "MetricsResource",
    "MetricsService",
    "healthResource",
    "parseMetricsAddress",
]

#: The name of the metrics service among the top service's children
#: (C{lifecycle.getServiceNamed(METRICS_SERVICE_NAME)}).
METRICS_SERVICE_NAME = "metrics"

_log = Logger(namespace="tlsreply.metrics")

#: Seconds a rendered C{/metrics} exposition is served again before the
#: next scrape renders a new one.
METRICS_CACHE_SECONDS: Final = 1.0


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

    @ivar beforeScrape: called first on every rendering (to sample what a
        single-process server counts as plain numbers, see
        L{tlsreply.metrics.counting.ServerSampler}).
    @ivar cacheSeconds: how long a rendering is served again.
    """

    isLeaf = True

    def __init__(
        self,
        registry: CollectorRegistry,
        clock: IReactorTime,
        cacheSeconds: float = METRICS_CACHE_SECONDS,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.beforeScrape: list[Callable[[], None]] = []
        self.cacheSeconds = cacheSeconds
        self._clock = clock
        # Content type -> (when rendered, exposition).
        self._rendered: dict[str, tuple[float, bytes]] = {}

    def render_GET(self, request: Request) -> bytes:
        accept = request.getHeader(b"accept")
        encoder, contentType = choose_encoder(accept.decode("latin-1") if accept else "")
        request.setHeader(b"content-type", contentType.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        now = self._clock.seconds()
        rendered = self._rendered.get(contentType)
        if rendered is not None and 0 <= now - rendered[0] < self.cacheSeconds:
            return rendered[1]
        for sample in self.beforeScrape:
            sample()
        exposition: bytes = encoder(self.registry)
        self._rendered[contentType] = (now, exposition)
        return exposition

    # A HEAD costs what a GET does.
    render_HEAD = _headOf(render_GET)


def healthResource(
    registry: CollectorRegistry,
    health: Health,
    clock: IReactorTime,
    cacheSeconds: float = METRICS_CACHE_SECONDS,
) -> tuple[Resource, MetricsResource]:
    """
    The endpoint's tree: C{/metrics}, C{/ready}, C{/live}.

    @param clock: what C{/metrics}' renderings are timed on.
    @return: the root, and its C{/metrics} resource.
    """
    metrics = MetricsResource(registry, clock, cacheSeconds)
    root = _Root()
    root.putChild(b"metrics", metrics)
    root.putChild(
        b"ready",
        _Text(lambda: (503, b"draining\n") if health.draining else (200, b"ready\n")),
    )
    root.putChild(b"live", _Text(lambda: (200, b"live\n")))
    return root, metrics


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
        requestTimeout: float = METRICS_REQUEST_TIMEOUT,
        cacheSeconds: float = METRICS_CACHE_SECONDS,
    ) -> None:
        """
        @param reactor: what the connections' deadlines, their turns and
            C{/metrics}' renderings are timed on; the global reactor when
            C{None}.
        @param maxConnections: see L{MAX_METRICS_CONNECTIONS}.
        @param idleTimeout: see L{METRICS_IDLE_TIMEOUT}.
        @param requestTimeout: see L{METRICS_REQUEST_TIMEOUT}.
        @param cacheSeconds: see L{METRICS_CACHE_SECONDS}.
        """
        self.setName(METRICS_SERVICE_NAME)
        self.endpoint = endpoint
        self.description = description
        self.health = health if health is not None else Health()
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        root, self.metricsResource = healthResource(
            registry, self.health, reactor, cacheSeconds
        )
        self.site = MetricsSite(root, reactor, maxConnections, idleTimeout, requestTimeout)
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
            error = cannotListen(self.description, failures[0].value)
            raise ConfigurationError(f"--metrics: {error}")

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

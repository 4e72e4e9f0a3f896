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
"""

from __future__ import annotations

import re
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
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

    render_HEAD = render_GET


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


def healthResource(registry: CollectorRegistry, health: Health) -> tuple[Resource, MetricsResource]:
    """
    The endpoint's tree: C{/metrics}, C{/ready}, C{/live}.

    @return: the root, and its C{/metrics} resource.
    """
    metrics = MetricsResource(registry)
    root = Resource()
    root.putChild(b"metrics", metrics)
    root.putChild(
        b"ready",
        _Text(lambda: (503, b"draining\n") if health.draining else (200, b"ready\n")),
    )
    root.putChild(b"live", _Text(lambda: (200, b"live\n")))
    return root, metrics


class _QuietSite(Site):
    """
    A site that logs no line per request: a scraper every 15 s and a health
    check every 2 s would fill the server's log.
    """

    noisy = False

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
    ) -> None:
        self.setName(METRICS_SERVICE_NAME)
        self.endpoint = endpoint
        self.description = description
        self.health = health if health is not None else Health()
        root, self.metricsResource = healthResource(registry, self.health)
        self.site = _QuietSite(root)
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

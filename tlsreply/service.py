# -*- test-case-name: tests.test_wire,tests.test_embedding,tests.test_lifecycle -*-
"""
The listening service: a L{ReplyFactory} wrapped in TLS on one or more
endpoints, with a fail-fast start and a graceful stop.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from tlsreply.connection.addresses import escapeIPv6Interface, formatAddress
from tlsreply.connection.limits import DEFAULT_MAX_CONNECTIONS, AcceptLimit
from tlsreply.connection.registry import ServerConnections
from tlsreply.errors import ConfigurationError, cannotListen
from tlsreply.protocol import ReplyFactory
from tlsreply.tls.policy import TLSPolicy
from tlsreply.transport.listening import ListeningReactor
from tlsreply.transport.proxyheader import ProxyHeaderEndpoint
from tlsreply.transport.tlsmemory import wrapWithTLS

if TYPE_CHECKING:
    from twisted.internet.interfaces import IOpenSSLServerConnectionCreator

DEFAULT_SHUTDOWN_GRACE = 5.0

@runtime_checkable
class FollowsPolicy(Protocol):
    """
    Contexts that say which L{TLSPolicy} they follow (L{ServerContexts},
    L{ReloadableContexts}), so the service can report it without being
    told twice.
    """

    @property
    def policy(self) -> TLSPolicy: ...


def parseListenAddress(reactor: object, description: str) -> IStreamServerEndpoint:
    """
    Turn a listening address into an endpoint.

    A bare port number means C{tcp:N}; anything else is a Twisted server
    endpoint description; TCP and Unix listeners get a backlog of 511
    unless the description sets one (C{tcp:4433:interface=::}, C{unix:/run/t.sock},
    C{haproxy:tcp:4433}, C{systemd:domain=INET:index=0}). TLS is not part of
    the description: tlsreply wraps the factory, so every kind carries it.
    C{haproxy:} reads the PROXY header with L{tlsreply.transport.proxyheader}.

    @raise ConfigurationError: for a description Twisted cannot parse.
    """
    given = description.strip()
    description = escapeIPv6Interface(given)
    if re.fullmatch(r"\d+", description):
        description = f"tcp:{description}"
    if description.split(":", 1)[0] in ("ssl", "tls"):
        raise ConfigurationError(
            f"listen address {given!r}: tlsreply adds TLS itself; "
            "use a plain stream endpoint such as tcp:4433"
        )
    _checkPort(given, description)
    try:
        described = _withBacklog(description)
        if described.startswith("haproxy:"):
            # tlsreply's own reading of the PROXY header, not Twisted's.
            return ProxyHeaderEndpoint(serverFromString(reactor, described[len("haproxy:") :]))
        return serverFromString(reactor, described)
    except IndexError:
        if description.startswith("systemd:"):
            raise ConfigurationError(
                f"listen address {given!r}: systemd passed no such socket "
                "(LISTEN_FDS is not set for this process); start tlsreply "
                "from a systemd .socket unit"
            ) from None
        raise ConfigurationError(f"bad listen address {given!r}") from None
    except (ValueError, TypeError, KeyError) as e:
        raise ConfigurationError(
            f"bad listen address {given!r}: {e or type(e).__name__}"
        ) from None


_UNESCAPED_COLON = re.compile(r"(?<!\\):")


def _checkPort(given: str, description: str) -> None:
    """
    Check the port of a TCP description (also behind C{haproxy:}), so that
    a mistake names the port rather than Python's C{int()}.

    @raise ConfigurationError: for a port that is not 0 to 65535.
    """
    parts = _UNESCAPED_COLON.split(description)
    if parts[0] == "haproxy":
        parts = parts[1:]
    if not parts or parts[0] not in ("tcp", "tcp6"):
        return
    keywords = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    positional = [p for p in parts[1:] if "=" not in p]
    port = keywords.get("port", positional[0] if positional else None)
    if port is None:
        raise ConfigurationError(f"listen address {given!r}: no port (e.g. tcp:4433)")
    if not port.isdigit() or int(port) > 65535:
        raise ConfigurationError(
            f"listen address {given!r}: the port must be a number from 0 to 65535, "
            f"not {port!r}"
        )


#: The listen backlog when a description does not give one. Twisted's
#: default, 50, makes the kernel drop SYNs in a burst of clients, each of
#: which then waits a second to retry; nginx uses 511.
DEFAULT_BACKLOG = 511


def _withBacklog(description: str) -> str:
    kinds = description.split(":", 2)
    kind = kinds[1] if kinds[0] == "haproxy" and len(kinds) > 1 else kinds[0]
    if kind in ("tcp", "tcp6", "unix") and "backlog=" not in description:
        return f"{description}:backlog={DEFAULT_BACKLOG}"
    return description


class TLSReplyService(Service):
    """
    Serve a L{ReplyFactory} over TLS on every given endpoint.

    Listening happens in C{privilegedStartService} (so twistd binds before
    dropping privileges) and a failure to listen is raised there, at
    start-up, as a L{ConfigurationError}; the line that says it listens is
    logged by C{startService}. Stopping stops listening at once,
    lets connections in progress finish for up to C{shutdownGrace} seconds,
    then aborts the rest.

    @ivar listeningPorts: the ports, once listening.
    @ivar connections: every connection in progress, on every port.
    @ivar tlsFactory: the factory every endpoint listens with.
    """

    _log = Logger()

    def __init__(
        self,
        endpoints: Sequence[tuple[str, IStreamServerEndpoint]],
        contextFactory: IOpenSSLServerConnectionCreator,
        replyFactory: ReplyFactory,
        policy: TLSPolicy | None = None,
        shutdownGrace: float = DEFAULT_SHUTDOWN_GRACE,
        maxConnections: int = DEFAULT_MAX_CONNECTIONS,
        label: str = "tlsreply",
    ) -> None:
        """
        @param endpoints: (description, endpoint) pairs; the description is
            used in messages.
        @param contextFactory: usually from L{buildServerContexts}, or a
            L{ReloadableContexts} to rotate certificates.
        @param replyFactory: makes the protocol for each connection.
        @param policy: the TLS policy, only to report it at start-up; by
            default the one C{contextFactory} follows (L{FollowsPolicy}),
            else L{TLSPolicy}'s defaults. Give it only for contexts made
            some other way (a C{twisted.internet.ssl.CertificateOptions}, for instance).
        @param shutdownGrace: seconds that connections in progress get to
            finish when the service stops.
        @param maxConnections: connections in progress (from accept to
            close) at which the service stops accepting until one ends.
        @param label: what its log lines call it (C{"tlsreply worker 2"}).
        """
        if not endpoints:
            raise ConfigurationError("no listen address given")
        self.endpoints = list(endpoints)
        self.replyFactory = replyFactory
        self.limit = AcceptLimit(maxConnections)
        self.connections = ServerConnections(
            replyFactory.clock,
            replyFactory.handshakeTimeout,
            replyFactory.closeTimeout,
            self.limit,
        )
        self.tlsFactory = wrapWithTLS(contextFactory, replyFactory, self.connections)
        if policy is None:
            policy = (
                contextFactory.policy
                if isinstance(contextFactory, FollowsPolicy)
                else TLSPolicy()
            )
        self.policy = policy
        self.shutdownGrace = shutdownGrace
        self.label = label
        self.listeningPorts: list[IListeningPort] = []
        self._listening: Deferred[None] | None = None

    @classmethod
    def fromDescriptions(
        cls,
        reactor: object,
        descriptions: Sequence[str],
        contextFactory: IOpenSSLServerConnectionCreator,
        replyFactory: ReplyFactory,
        policy: TLSPolicy | None = None,
        shutdownGrace: float = DEFAULT_SHUTDOWN_GRACE,
        maxConnections: int = DEFAULT_MAX_CONNECTIONS,
        socketTLS: bool = True,
    ) -> TLSReplyService:
        """
        Build the service from listening addresses as the command line takes
        them (see L{parseListenAddress}).

        @param socketTLS: serve C{tcp:}, C{unix:} and C{systemd:} addresses
            on tlsreply's own ports, with TLS on the socket
            (L{tlsreply.transport.listening}); C{False} for Twisted's ports and TLS
            over memory BIOs on every address, as C{haproxy:} always has.
        @raise ConfigurationError: for an address that cannot be parsed.
        """
        listener = ListeningReactor(reactor, socketTLS)
        endpoints = [(d, parseListenAddress(listener, d)) for d in descriptions]
        return cls(
            endpoints, contextFactory, replyFactory, policy, shutdownGrace, maxConnections
        )

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._listen()

    def startService(self) -> None:
        super().startService()
        self._listen()
        # Said once started, not once bound: under twistd that is after
        # the whole process has bound its ports and made what it needs
        # (the development certificate) and dropped privileges.
        assert self._listening is not None
        self._listening.addCallback(lambda _: self._logStarted())

    def _listen(self) -> None:
        if self._listening is not None:
            return
        pending: list[Deferred[None]] = []
        for description, endpoint in self.endpoints:
            errors: list[ConfigurationError] = []
            listening = endpoint.listen(self.tlsFactory)
            listening.addCallbacks(
                self.listeningPorts.append,
                self._listenFailed,
                errbackArgs=(description, errors),
            )
            if errors:
                # Most endpoints fail synchronously (address in use,
                # permission denied): fail the start, leave nothing bound.
                self._stopListening()
                raise errors[0]
            pending.append(listening.addCallback(self._logLateErrors, errors))
        self.limit.ports = self.listeningPorts
        self._listening = DeferredList(pending).addCallback(lambda _: None)

    @staticmethod
    def _listenFailed(
        failure: Failure, description: str, errors: list[ConfigurationError]
    ) -> None:
        errors.append(_listenError(description, failure))

    def _logLateErrors(self, _: object, errors: list[ConfigurationError]) -> None:
        """
        Report listening failures of endpoints that fail asynchronously.
        """
        for error in errors:
            self._log.error("{error}", error=str(error))

    def _logStarted(self) -> None:
        self._log.info(
            "{name} listening on {addresses}; TLS policy: {policyText}",
            name=self.label,
            addresses=self.addresses,
            policy=self.policy.describe(),
            policyText=", ".join(f"{k}={v}" for k, v in self.policy.describe().items()),
            reply=self.replyFactory.reply,
            handshakeTimeout=self.replyFactory.handshakeTimeout,
            closeTimeout=self.replyFactory.closeTimeout,
            maxConnections=self.limit.maximum,
        )

    @property
    def addresses(self) -> list[str]:
        """
        The addresses listened on, e.g. C{["127.0.0.1:4433"]}.
        """
        return [formatAddress(port.getHost()) for port in self.listeningPorts]

    def _stopListening(self) -> Deferred[None]:
        ports, self.listeningPorts = self.listeningPorts, []
        self.limit.ports = ()
        stopped = DeferredList([maybeDeferred(port.stopListening) for port in ports])
        return stopped.addCallback(lambda _: None)

    def stopService(self) -> Deferred[None]:
        """
        Stop listening, then wait up to C{shutdownGrace} seconds for the
        connections in progress before aborting the rest.
        """
        super().stopService()
        self._listening = None
        connections = self.connections
        clock = self.replyFactory.clock
        stopped = self._stopListening()

        def drain(_: object) -> Deferred[None]:
            inProgress = connections.inProgress
            if not inProgress:
                self._flushAccessLog()
                self._log.info(
                    "{name} stopped; no connection was in progress", name=self.label
                )
                return succeed(None)
            self._log.info(
                "{name} stopped listening; waiting up to {grace:g}s for "
                "{inProgress} connection(s) in progress",
                name=self.label,
                grace=self.shutdownGrace,
                inProgress=inProgress,
            )
            idle = connections.whenIdle()
            timer = clock.callLater(self.shutdownGrace, abortStragglers)

            def done(result: None) -> None:
                self._flushAccessLog()
                if timer.active():
                    timer.cancel()
                    self._log.info(
                        "all {inProgress} connection(s) finished", inProgress=inProgress
                    )

            return idle.addCallback(done)

        def abortStragglers() -> None:
            # Logged first: the last abort lets the stop complete at once.
            self._log.warn(
                "aborting {aborted} connection(s) still open after {grace:g}s",
                aborted=connections.inProgress,
                grace=self.shutdownGrace,
            )
            connections.abortAll(
                f"aborted at shutdown after the {self.shutdownGrace:g}s grace"
            )

        # A trim waiting for its turn is not run once all has stopped.
        return stopped.addCallback(drain).addCallback(
            lambda _: connections.heapTrim.stop()
        )

    def _flushAccessLog(self) -> None:
        """
        Write out the connection log's buffer before the shutdown's own
        lines, so that the log reads in order.
        """
        accessLog = self.replyFactory.accessLog
        if accessLog is not None:
            accessLog.flush()


def _listenError(description: str, failure: Failure) -> ConfigurationError:
    return cannotListen(description, failure.value)

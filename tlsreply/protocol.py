# -*- test-case-name: tests.test_protocol,tests.test_wire -*-
"""
The reply protocol: write the reply, send close_notify, close.

The protocol knows nothing about certificates or listening: it runs inside
L{TLSMemoryBIOProtocol} (see L{wrapWithTLS}), so any stream endpoint can
carry it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from OpenSSL import SSL
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHandshakeListener,
    IReactorTime,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from tlsreply._tcpinfo import bytesAcknowledged, unsentBytes
from tlsreply.clienthello import ClientHello
from tlsreply.errors import openSSLReasons
from tlsreply.handshake import ConnectionRecord, HandshakeInfo, describeHandshake
from tlsreply.transport import (
    ClientHelloFirstFactory,
    ReplyTLSFactory,
)

if TYPE_CHECKING:
    from twisted.internet.interfaces import IOpenSSLServerConnectionCreator

DEFAULT_REPLY = b"test\n"
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
DEFAULT_CLOSE_TIMEOUT = 3.0


def formatAddress(address: IAddress) -> str:
    """
    Render a peer or listening address the way operators write them:
    C{127.0.0.1:4433}, C{[::1]:4433}, C{unix:/run/tlsreply.sock}.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    if name is not None:
        path = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
        return f"unix:{path}"
    return str(address)


def describeFailure(reason: Failure) -> str:
    """
    One line saying why a connection ended, with OpenSSL's own reason
    strings for TLS errors (C{"no shared cipher"}, C{"wrong version
    number"}, ...).
    """
    error = reason.value
    if isinstance(error, SSL.Error):
        return openSSLReasons(error) or f"TLS error: {error}"
    if isinstance(error, ConnectionDone):
        return "peer closed the connection"
    if isinstance(error, ConnectionAborted):
        return "connection aborted"
    if isinstance(error, ConnectionLost):
        # Twisted's TLS layer reports a TCP close without close_notify as
        # ConnectionLost too, so this covers both.
        return "peer closed TCP without close_notify, or reset it"
    return f"{type(error).__name__}: {error}"


@implementer(IHandshakeListener)
class ReplyProtocol(Protocol):
    """
    Send the factory's reply to one client, then close the connection
    cleanly.

    C{connectionMade} writes the reply and calls C{loseConnection()} at
    once; the TLS layer holds both until the handshake completes, then sends
    the reply, then close_notify, then waits for the client's close_notify
    before closing TCP. Reading goes on until then, so that a client which
    sent something first (an HTTP request) is never answered with a TCP
    reset that could destroy the reply in flight.

    Two timers bound a connection's life, both on the factory's clock: the
    handshake timer, from accept to handshake completion; and the close
    timer, from handshake completion (when the reply and close_notify are
    written) to the client closing. When either expires the connection is
    aborted: Twisted's TLS transport would otherwise wait for the client's
    close_notify for ever, holding its descriptor. A client still receiving
    a large reply when the close timer expires gets another period for as
    long as it keeps acknowledging data (see L{tlsreply._tcpinfo}).

    @ivar handshake: what the handshake negotiated, once it has completed.
    """

    factory: ReplyFactory
    # A TLSMemoryBIOProtocol in practice: ISSLTransport and ITCPTransport.
    transport: Any
    handshake: HandshakeInfo | None = None
    _log = Logger()
    _timer: IDelayedCall | None = None
    _timeoutReason: str | None = None
    _acknowledged: int | None = None

    def connectionMade(self) -> None:
        """
        Queue the reply and the close; the TLS layer sends them as soon as
        the handshake allows.
        """
        factory = self.factory
        now = factory.clock.seconds()
        # Accepted earlier if the ClientHello was read first (ReplyTLSProtocol).
        acceptedAt = getattr(self.transport, "acceptedAt", None)
        self._acceptedAt = now if acceptedAt is None else acceptedAt
        factory.connections.add(self)
        if factory.handshakeTimeout:
            self._startTimer(
                max(0.0, factory.handshakeTimeout - (now - self._acceptedAt)),
                f"handshake not completed within {factory.handshakeTimeout:g}s",
            )
        self.transport.write(factory.reply)
        self.transport.loseConnection()

    def handshakeCompleted(self) -> None:
        """
        Record what was negotiated and give the client
        C{factory.closeTimeout} seconds to read the reply and close.
        """
        factory = self.factory
        self.handshake = describeHandshake(
            self.transport.getHandle(),
            factory.clock.seconds() - self._acceptedAt,
            getattr(self.transport, "clientHello", None),
        )
        self._cancelTimer()
        if factory.closeTimeout:
            self._acknowledged = self._delivery()[1]
            self._timer = factory.clock.callLater(factory.closeTimeout, self._closeDue)

    def dataReceived(self, data: bytes) -> None:
        """
        Discard what the client sends: the reply does not depend on it.
        Reading it still matters, see the class docstring.
        """

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Log the connection's one event, hand its record to the factory, and
        forget it.
        """
        self._cancelTimer()
        self.factory.connections.discard(self)
        # Read only now: behind haproxy: the client's address is known once
        # the PROXY header has arrived, after connectionMade.
        self.factory.report(
            formatAddress(self.transport.getPeer()),
            self._timeoutReason or describeFailure(reason),
            self.handshake,
            getattr(self.transport, "clientHello", None),
        )

    def _delivery(self) -> tuple[int | None, int | None]:
        """
        Bytes still queued to the client, and bytes it has acknowledged so
        far, as the kernel tells them (L{None} where it does not).
        """
        lower = getattr(self.transport, "transport", None)
        try:
            sock = lower.getHandle() if lower is not None else None
        except AttributeError:
            sock = None
        if not isinstance(sock, socket.socket):
            return None, None
        return unsentBytes(sock), bytesAcknowledged(sock)

    def _closeDue(self) -> None:
        """
        The close timeout expired. A client still receiving the reply (bytes
        queued, and more acknowledged than last time) gets another period;
        any other is cut off.
        """
        self._timer = None
        closeTimeout = self.factory.closeTimeout
        unsent, acknowledged = self._delivery()
        if unsent and acknowledged is not None and acknowledged != self._acknowledged:
            self._acknowledged = acknowledged
            self._timer = self.factory.clock.callLater(closeTimeout, self._closeDue)
            return
        if unsent:
            self.abort(f"peer stopped reading the reply for {closeTimeout:g}s")
        else:
            self.abort(
                f"peer did not close within {closeTimeout:g}s of the reply and close_notify"
            )

    def _startTimer(self, seconds: float, why: str) -> None:
        self._timer = self.factory.clock.callLater(seconds, self._timeOut, why)

    def _cancelTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timeOut(self, why: str) -> None:
        self._timer = None
        self.abort(why)

    def abort(self, why: str) -> None:
        """
        Abort the connection now; C{why} is what its log event says.
        """
        self._cancelTimer()
        self._timeoutReason = why
        self.transport.abortConnection()


class ReplyFactory(Factory[ReplyProtocol]):
    """
    Makes a L{ReplyProtocol} for every connection and keeps the settings
    they share.

    @ivar reply: the bytes every client receives.
    @ivar clock: the time source for timers and handshake durations.
    @ivar handshakeTimeout: seconds from accept to a completed handshake;
        C{0} for no limit.
    @ivar closeTimeout: seconds the client has, after the reply and
        close_notify were sent, to close; C{0} for no limit.
    @ivar connections: the connections in progress whose ClientHello has
        arrived (the listening layer, L{ClientHelloFirstFactory}, counts
        every connection, waits for them and aborts them on stop).
    @ivar recorders: called with a L{ConnectionRecord} as each connection
        ends (L{tlsreply.testing} records connections this way).
    """

    protocol = ReplyProtocol
    noisy = False

    def __init__(
        self,
        reply: bytes = DEFAULT_REPLY,
        clock: IReactorTime | None = None,
        handshakeTimeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        closeTimeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        """
        @raise ValueError: for an empty reply (TLS would then have nothing
            to wait for and drop the connection mid-handshake) or a negative
            timeout.
        """
        if not isinstance(reply, bytes) or not reply:
            raise ValueError("the reply must be at least one byte")
        if handshakeTimeout < 0 or closeTimeout < 0:
            raise ValueError("timeouts must be zero (no limit) or positive")
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self.reply = reply
        self.clock: IReactorTime = clock
        self.handshakeTimeout = handshakeTimeout
        self.closeTimeout = closeTimeout
        self.connections: set[ReplyProtocol] = set()
        self.recorders: list[Callable[[ConnectionRecord], None]] = []

    def report(
        self,
        peer: str,
        closed: str,
        handshake: HandshakeInfo | None,
        clientHello: ClientHello | None = None,
    ) -> None:
        """
        Log a connection's one event and hand its record to the recorders.

        Called as each connection ends: by its L{ReplyProtocol}, or by the
        listening layer for a connection that ended before sending a byte
        (no TLS state is made for those).

        @param peer: the client's address, formatted.
        @param closed: how the connection ended.
        @param handshake: what was negotiated, or L{None} if the handshake
            did not complete.
        """
        log = ReplyProtocol._log
        if handshake is None:
            log.info(
                "handshake failed with {peer}: {reason}",
                peer=peer,
                reason=closed,
                outcome="handshake-failed",
            )
        else:
            log.info(
                "replied to {peer}: {tlsVersion} {cipher} group={group} "
                "resumed={resumed} sni={serverName} alpn={alpnProtocol} "
                "handshake={handshakeMilliseconds:.1f}ms"
                "{earlyDataNote}{clientCertificateNote}; {closed}",
                peer=peer,
                outcome="replied",
                closed=closed,
                handshakeMilliseconds=handshake.duration * 1000,
                earlyDataNote=(
                    " early-data-offered=refused" if handshake.earlyDataOffered else ""
                ),
                clientCertificateNote=(
                    f" client-cert={handshake.clientCertificate!r} "
                    f"verify={handshake.clientVerification}"
                    if handshake.clientCertificate
                    else ""
                ),
                **handshake.asLogFields(),
            )
        if not self.recorders:
            return
        record = ConnectionRecord.build(peer, closed, handshake, clientHello)
        for recorder in self.recorders:
            try:
                recorder(record)
            except Exception:
                log.failure("connection recorder {recorder!r} failed", recorder=recorder)

    def reportSilent(self, peer: IAddress, reason: Failure, why: str | None) -> None:
        """
        Report a connection that ended before the client sent a byte.
        """
        self.report(formatAddress(peer), why or describeFailure(reason), None)


def wrapWithTLS(
    contextFactory: IOpenSSLServerConnectionCreator,
    factory: ReplyFactory,
) -> ClientHelloFirstFactory:
    """
    Put TLS around a L{ReplyFactory}, so that any stream endpoint
    (C{tcp:}, C{unix:}, C{haproxy:}, C{systemd:}) can carry it.

    The ClientHello is read before TLS starts (L{ClientHelloFirstFactory}),
    so that a L{ServerContexts} can create each connection from the context
    for the name the client asked for.

    @param contextFactory: usually from L{buildServerContexts}; any
        L{IOpenSSLServerConnectionCreator} (a L{CertificateOptions}) works.
    """
    tls = ReplyTLSFactory(contextFactory, False, factory, clock=factory.clock)
    return ClientHelloFirstFactory(
        tls, factory.clock, factory.handshakeTimeout, reportSilent=factory.reportSilent
    )

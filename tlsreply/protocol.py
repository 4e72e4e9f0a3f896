# -*- test-case-name: tests.test_protocol,tests.test_wire -*-
"""
The reply protocol: write the reply, send close_notify, close.

The protocol knows nothing about certificates or listening: it runs on a
TLS transport of tlsreply's, on the socket (L{tlsreply.transport.tlssocket}) or over
any stream endpoint (L{wrapWithTLS}).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from OpenSSL import SSL
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IHandshakeListener,
    IReactorTime,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from tlsreply.clienthello.offered import ClientHello
from tlsreply.connection.addresses import formatAddress
from tlsreply.connection.ending import (
    CONNECTION_ABORTED,
    OTHER,
    PEER_CLOSED,
    PEER_LOST_TCP,
    PEER_LOST_UNIX,
    Ending,
    openSSLEnding,
)
from tlsreply.connection.peertext import escapeText
from tlsreply.connection.records import (
    RECEIVED_LIMIT,
    ConnectionRecord,
    HandshakeInfo,
    describeHandshake,
)
from tlsreply.errors import openSSLReasons
from tlsreply.logs.access import (
    FAILED_FORMAT,
    REPLIED_FORMAT,
    ConnectionLog,
    repliedFields,
)

if TYPE_CHECKING:
    from tlsreply.metrics.counting import ConnectionMetrics
    from tlsreply.transport.tlsmemory import TLSReplyServerFactory

DEFAULT_REPLY = b"test\n"
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
DEFAULT_CLOSE_TIMEOUT = 3.0


def endingFromFailure(reason: Failure, tcp: bool = True) -> Ending:
    """
    How a connection ended, from the failure Twisted's C{connectionLost}
    gave: OpenSSL's errors in its own reason strings (C{"no shared
    cipher"}, C{"wrong version number"}, ...), classified once, here
    (L{openSSLKind}).

    @param tcp: whether the connection is TCP (else a Unix socket, which
        has no reset), for the wording.
    """
    error = reason.value
    if isinstance(error, SSL.Error):
        reasons = openSSLReasons(error)
        if reasons:
            return openSSLEnding(reasons)
        return Ending(OTHER, f"TLS error: {error}")
    if isinstance(error, ConnectionDone):
        return PEER_CLOSED
    if isinstance(error, ConnectionAborted):
        return CONNECTION_ABORTED
    if isinstance(error, ConnectionLost):
        # Twisted's TLS layer reports a TCP close without close_notify as
        # ConnectionLost too, so this covers both.
        return PEER_LOST_TCP if tcp else PEER_LOST_UNIX
    return Ending(OTHER, f"{type(error).__name__}: {error}")


def describeFailure(reason: Failure, tcp: bool = True) -> str:
    """
    One line saying why a connection ended: the text of
    L{endingFromFailure}.
    """
    return endingFromFailure(reason, tcp).text


def lostWithoutCloseNotify() -> Failure:
    """
    A C{Failure} for a TCP connection that ended without close_notify (at
    EOF, or by a reset: OpenSSL does not tell them apart here), as
    Twisted's TLS transport reports it, so that L{endingFromFailure} words it
    the same on tlsreply's own socket path (L{tlsreply.transport.tlssocket}).
    """
    return Failure(ConnectionLost())


def failureFromOpenSSL(error: SSL.Error) -> Failure:
    """
    Why a connection on the socket path ended, from an OpenSSL error: the
    end of TCP without close_notify however OpenSSL words it (pyOpenSSL
    turns most of those into C{OpenSSL.SSL.SysCallError}, but not all), else the
    error itself.
    """
    if "unexpected eof while reading" in (openSSLReasons(error) or ""):
        return lostWithoutCloseNotify()
    return Failure(error)


@implementer(IHandshakeListener)
class ReplyProtocol(Protocol):
    """
    Send the factory's reply to one client, then close the connection
    cleanly.

    C{connectionMade} writes the reply and calls C{loseConnection()} at
    once; the TLS transport holds both until the handshake completes, then
    sends the reply, then close_notify, then reads until the client's
    close_notify before closing TCP, so that a client which sent something
    first (an HTTP request) is never answered with a TCP reset that could
    destroy the reply in flight.

    It runs on tlsreply's TLS transports (L{tlsreply.transport.tlssocket} on
    tlsreply's own ports, L{tlsreply.transport.tlsmemory} on any endpoint, see
    L{wrapWithTLS}), whose C{connection} holds the connection's state: when
    it was accepted, what its ClientHello offered, its deadlines (the
    handshake and close timeouts, L{tlsreply.connection.registry}) and why it was
    aborted, if it was.

    @ivar handshake: what the handshake negotiated, once it has completed.
    @ivar received: what the client sent after the handshake, when the
        connection is recorded (see L{dataReceived}); else C{None}.
    """

    factory: ReplyFactory
    # A tlsreply TLS transport: ITransport, ISSLTransport and a connection.
    transport: Any
    handshake: HandshakeInfo | None = None
    received: bytearray | None = None

    def connectionMade(self) -> None:
        """
        Queue the reply and the close; the TLS layer sends them as soon as
        the handshake allows.
        """
        transport = self.transport
        transport.write(self.factory.reply)
        transport.loseConnection()

    def handshakeCompleted(self) -> None:
        """
        Record what was negotiated; from now the client has the close
        timeout to read the reply and close.
        """
        transport = self.transport
        connection = transport.connection
        tls = transport.getHandle()
        self.handshake = describeHandshake(
            tls,
            self.factory.clock.seconds() - connection.acceptedAt,
            connection.earlyDataOffered,
            connection.servedCertificate(tls),
        )
        connection.handshakeCompleted()

    def dataReceived(self, data: bytes) -> None:
        """
        Keep what the client sends for the connection's record, if it will
        have one (L{ReplyFactory.recorders}), up to
        L{RECEIVED_LIMIT} bytes and one more to mark it truncated;
        otherwise discard it. The reply does not depend on it. Reading it
        matters either way, see the class docstring.
        """
        if not self.factory.recorders:
            return
        received = self.received
        if received is None:
            received = self.received = bytearray()
        room = RECEIVED_LIMIT + 1 - len(received)
        if room > 0:
            received += data[:room] if len(data) > room else data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Report the connection: its log line and its record.
        """
        connection = self.transport.connection
        abortReason = connection.abortReason
        # The peer is read only now: behind haproxy: the client's address
        # is known once the PROXY header has arrived, after connectionMade.
        self.factory.report(
            connection.peerText(),
            abortReason or endingFromFailure(reason, connection.overTCP),
            self.handshake,
            connection.clientHello,
            abortReason is not None,
            self.received,
        )


#: The connection log's namespace, on both of its paths (L{AccessLog} and
#: C{twisted.logger}).
ACCESS_LOG_NAMESPACE = "tlsreply.access"

_accessLog = Logger(namespace=ACCESS_LOG_NAMESPACE)


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
    @ivar accessLog: where the one line per connection goes: an
        L{tlsreply.logs.access.AccessLog} (cheap: a buffered write), or
        C{None} for a structured C{twisted.logger} event (what an embedding
        application's observers expect; it costs about a tenth of a
        millisecond per connection under twistd's text observer).
    @ivar recorders: called with a L{ConnectionRecord} as each connection
        ends (L{tlsreply.testing} records connections this way). With a
        recorder, each connection's ClientHello is parsed in full and what
        the client sends after the handshake is kept (up to
        L{RECEIVED_LIMIT} bytes); without one, neither is.
    @ivar metrics: counts every connection for Prometheus
        (L{tlsreply.metrics.counting.ConnectionMetrics}), or C{None}: then the
        only cost is checking this attribute, once per connection.
    @cvar serverFactoryType: the server factory that carries this factory's
        protocols over TLS (L{tlsreply.transport.tlsmemory.wrapWithTLS}); C{None} for
        tlsreply's own, L{TLSReplyServerFactory}. A test scenario whose
        server misbehaves below the reply (L{tlsreply.scenarios.misbehaving})
        names its own.
    """

    protocol = ReplyProtocol
    noisy = False
    serverFactoryType: ClassVar[type[TLSReplyServerFactory] | None] = None

    def __init__(
        self,
        reply: bytes = DEFAULT_REPLY,
        clock: IReactorTime | None = None,
        handshakeTimeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        closeTimeout: float = DEFAULT_CLOSE_TIMEOUT,
        accessLog: ConnectionLog | None = None,
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
        self.accessLog = accessLog
        self.recorders: list[Callable[[ConnectionRecord], None]] = []
        self.metrics: ConnectionMetrics | None = None

    def buildProtocol(self, addr: IAddress | None) -> ReplyProtocol:
        """
        A new L{ReplyProtocol}. C{addr} is C{None} on tlsreply's own ports,
        which make no address object before one is asked for: the
        transport's C{getPeer()} gives it.
        """
        protocol = ReplyProtocol()
        protocol.factory = self
        return protocol

    def report(
        self,
        peer: str,
        ending: Ending,
        handshake: HandshakeInfo | None,
        clientHello: ClientHello | None = None,
        aborted: bool = False,
        received: bytearray | None = None,
    ) -> None:
        """
        Log a connection's one line, count it in the metrics and hand its
        record to the recorders.

        Called as each connection ends, by its L{ReplyProtocol} (or, on the
        endpoint path, for a connection that ended before sending a byte,
        by the layer below: no TLS state is made for those).

        @param peer: the client's address, formatted (L{formatAddress}).
        @param ending: how the connection ended: the log line gives its
            text, the metrics count its kind, the record has both.
        @param handshake: what was negotiated, or C{None} if the handshake
            did not complete.
        @param aborted: whether tlsreply aborted the connection (a timeout,
            the shutdown) rather than the client closing it.
        @param received: what the client sent after the handshake, for the
            record (L{ReplyProtocol.received}).
        """
        # Both may hold what the peer chose (a Unix path, a refused PROXY
        # header's bytes): every line and record of a connection starts
        # here, so this is where they are made printable, once.
        peer = escapeText(peer)
        closed = escapeText(ending.text)
        accessLog = self.accessLog
        if accessLog is not None:
            accessLog.connectionEnded(peer, closed, handshake)
        elif handshake is None:
            _accessLog.info(
                FAILED_FORMAT, peer=peer, reason=closed, outcome="handshake-failed"
            )
        else:
            _accessLog.info(
                REPLIED_FORMAT,
                peer=peer,
                outcome="replied",
                closed=closed,
                **repliedFields(handshake),
            )
        metrics = self.metrics
        if metrics is not None:
            metrics.connectionEnded(ending.kind, handshake, aborted)
        if not self.recorders:
            return
        record = ConnectionRecord.build(
            peer, closed, handshake, clientHello, received, ending.kind
        )
        for recorder in self.recorders:
            try:
                recorder(record)
            except Exception:
                _accessLog.failure(
                    "connection recorder {recorder!r} failed", recorder=recorder
                )

    def reportSilent(self, peer: IAddress, reason: Failure, why: Ending | None) -> None:
        """
        Report a connection that ended before the client sent a byte.

        @param why: why tlsreply aborted it, if it did.
        """
        self.report(
            formatAddress(peer), why or endingFromFailure(reason), None, None, why is not None
        )

# -*- test-case-name: tests.test_protocol,tests.test_wire,tests.test_failedhandshakes -*-
"""
The connection path for any Twisted stream endpoint: TLS over memory BIOs::

    endpoint -> ClientHelloFirst -> ReplyTLSProtocol -> ReplyProtocol

This path carries tlsreply over whatever an endpoint delivers, also where
the bytes are not a plain socket's (C{haproxy:}, which strips the PROXY
header first, or an endpoint of an embedding application). It costs more
per connection than tlsreply's own ports (L{tlsreply.transport.tlssocket}): every
TLS byte goes through Python twice, through Twisted's C{TLSMemoryBIOProtocol}.

L{ClientHelloFirst} owns the connection's state
(L{tlsreply.connection.registry.AcceptedConnection}): it holds the connection's
first bytes until they make a whole ClientHello, then starts TLS, so that
the TLS connection is created from the context for the server name the
client asked for.
"""

from __future__ import annotations

import socket
from typing import Any, ClassVar, runtime_checkable
from typing import Protocol as TypingProtocol

from OpenSSL import SSL
from twisted.internet.address import UNIXAddress
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IOpenSSLServerConnectionCreator,
    ITransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.protocols.tls import (
    BufferingTLSTransport,
    TLSMemoryBIOFactory,
    TLSMemoryBIOProtocol,
)
from twisted.python.failure import Failure
from zope.interface import directlyProvides, implementer, providedBy

from tlsreply.clienthello.offered import ClientHello
from tlsreply.clienthello.parser import ClientHelloParser, NotAClientHello
from tlsreply.connection.addresses import formatAddress
from tlsreply.connection.ending import Ending
from tlsreply.connection.registry import ServerConnections
from tlsreply.protocol import ReplyFactory


@runtime_checkable
class HandshakeContexts(TypingProtocol):
    """
    TLS contexts that can be chosen by the server name a client asks for
    (L{tlsreply.tls.contexts.ServerContexts}, L{tlsreply.tls.reload.ReloadableContexts}).
    """

    def contextForHandshake(self, serverName: str | None) -> SSL.Context:
        """
        The context to make a connection from, for a client that asked for
        C{serverName}.
        """

    def servedCertificate(self, connection: SSL.Connection) -> str | None:
        """
        Which certificate C{connection} was served, for its log line.
        """


class ReplyTLSProtocol(BufferingTLSTransport):
    """
    Twisted's TLS protocol, with the connection's state at hand.

    @ivar connection: the connection's state, set by L{ClientHelloFirst}
        before TLS starts.
    """

    connection: ClientHelloFirst


@implementer(IOpenSSLServerConnectionCreator)
class _ByServerName:
    """
    Creates each TLS connection from the context for the name its client
    asked for, read off the connection's state.
    """

    def __init__(self, contexts: HandshakeContexts) -> None:
        self._contexts = contexts

    def serverConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        assert isinstance(tlsProtocol, ReplyTLSProtocol)
        hello = tlsProtocol.connection.clientHello
        serverName = hello.serverName if hello is not None else None
        return SSL.Connection(self._contexts.contextForHandshake(serverName), None)


class ReplyTLSFactory(TLSMemoryBIOFactory):
    """
    A C{twisted.protocols.tls.TLSMemoryBIOFactory} that makes L{ReplyTLSProtocol}s.
    """

    protocol = ReplyTLSProtocol


class ClientHelloFirst(ProtocolWrapper):
    """
    One connection on the endpoint path: reads the ClientHello, then starts
    the TLS protocol above and hands it every byte received.

    TLS starts early, with whatever has arrived, when the client goes away
    or the handshake timeout expires first: the protocols above then end
    the connection and log it, as they do every other. A connection that
    ends before sending a byte is reported without making any TLS state.

    When the handshake fails, the TLS protocol above has written its alert
    and closes: the protocols above are told at once (the connection is
    logged), but the connection lingers, its writing side ended, reading
    and discarding until the client closes (see
    L{ServerConnections.handshakeFailed}), so that the client reads the
    alert instead of a reset.
    """

    factory: TLSReplyServerFactory
    wrappedProtocol: Any
    _started = False
    earlyDataOffered = False
    clientHello: ClientHello | None = None
    abortReason: Ending | None = None
    acknowledged: int | None = None
    _handshakeDone = False
    _lingering = False
    _lost = False

    def makeConnection(self, transport: ITransport) -> None:
        """
        Like C{ProtocolWrapper.makeConnection}, but leave the TLS protocol
        unconnected until the ClientHello is in.
        """
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)
        factory = self.factory
        self._parser: ClientHelloParser | None = ClientHelloParser()
        self.acceptedAt = factory.replyFactory.clock.seconds()
        self.overTCP = not isinstance(transport.getHost(), UNIXAddress)
        factory.connections.opened(self)

    def dataReceived(self, data: bytes) -> None:
        if self._started:
            if not self._lingering:
                self.wrappedProtocol.dataReceived(data)
            return
        assert self._parser is not None
        try:
            hello = self._parser.feed(data)
        except NotAClientHello:
            hello = None
        else:
            if hello is None:
                return
        self._start(hello)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._lost = True
        connections = self.factory.connections
        try:
            if self._lingering:
                return  # reported when the handshake failed
            if not self._started and self._silent():
                # Nothing arrived: report it without making TLS state (tens
                # of kilobytes each) only to log it.
                self.factory.replyFactory.reportSilent(
                    self.transport.getPeer(),  # type: ignore[union-attr]
                    reason,
                    self.abortReason,
                )
                return
            if not self._started:
                self._start(None)
            # The protocols above first (they log the connection), then the
            # count: whoever waits for the server to go idle must find every
            # connection already logged, and the count must drop even if
            # they raise.
            self.wrappedProtocol.connectionLost(reason)
        finally:
            self.wrappedProtocol = None
            self._parser = None
            connections.closed(self)

    # AcceptedConnection

    def handshakeCompleted(self) -> None:
        """
        Told by the protocol: from now the close timeout applies.
        """
        self._handshakeDone = True
        self.factory.connections.handshakeCompleted(self)

    def loseConnection(self) -> None:
        """
        Close, as the TLS protocol above asks once it is done; or, when it
        asks before the handshake completed (it failed, and the alert is
        written), linger: end the writing side, report the connection now,
        and close when the client does.
        """
        transport: Any = self.transport
        halfClose = getattr(transport, "loseWriteConnection", None)
        if (
            self._handshakeDone
            or self._lingering
            or self._lost  # the client is gone: nothing to deliver
            or not self._started
            or halfClose is None
        ):
            transport.loseConnection()
            return
        self._lingering = True
        halfClose()
        self.factory.connections.handshakeFailed(self)
        tls, self.wrappedProtocol = self.wrappedProtocol, None
        # The TLS protocol reports the failure it kept, whatever the reason
        # given here.
        tls.connectionLost(Failure(ConnectionDone()))

    def abort(self, why: Ending) -> None:
        """
        Abort the connection, with C{why} as how it ended.
        """
        if self._lingering:
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        self.abortReason = why
        if not self._started and self._silent():
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        if not self._started:
            self._start(None)
        if self.wrappedProtocol is not None:
            self.wrappedProtocol.abortConnection()

    def peerText(self) -> str:
        """
        The client's address as the log gives it (behind C{haproxy:}, the
        one the PROXY header names).
        """
        return formatAddress(self.transport.getPeer())  # type: ignore[union-attr]

    def servedCertificate(self, connection: SSL.Connection) -> str | None:
        contexts = self.factory.handshakeContexts
        return contexts.servedCertificate(connection) if contexts is not None else None

    def tcpSocket(self) -> socket.socket | None:
        try:
            handle = self.transport.getHandle()  # type: ignore[union-attr]
        except AttributeError:
            return None
        if isinstance(handle, socket.socket) and handle.family != socket.AF_UNIX:
            return handle
        return None

    # Starting TLS.

    def _start(self, hello: ClientHello | None) -> None:
        self._started = True
        if hello is not None:
            self.clientHello = hello
            self.earlyDataOffered = hello.earlyDataOffered
        tls = self.wrappedProtocol
        tls.connection = self
        tls.makeConnection(self)
        parser, self._parser = self._parser, None
        if parser is not None and parser.received and self.wrappedProtocol is not None:
            self.wrappedProtocol.dataReceived(parser.received)

    def _silent(self) -> bool:
        """
        Has the client sent nothing yet?
        """
        return self._parser is not None and not self._parser.received


class TLSReplyServerFactory(WrappingFactory):
    """
    The server side of one tlsreply server, for any stream endpoint: builds
    a L{ClientHelloFirst} for every connection; tlsreply's own ports
    (L{tlsreply.transport.listening}) read the same settings to serve TLS on the
    socket instead.

    @ivar replyFactory: makes the protocol that replies.
    @ivar connections: every connection in progress, whichever path
        accepted it.
    @ivar handshakeContexts: the contexts, when they can be chosen by
        server name (then tlsreply's own ports can serve them); C{None}
        for another kind of connection creator.
    @cvar socketTLS: whether tlsreply's own ports may serve this factory's
        connections with TLS on the socket (L{tlsreply.transport.tlssocket}), which
        runs the plain reply and nothing else: a subclass whose connections
        do more (a test scenario's misbehaving server,
        L{tlsreply.scenarios.misbehaving}) says no, and is served here.
    """

    protocol = ClientHelloFirst
    noisy = False
    socketTLS: ClassVar[bool] = True

    def __init__(
        self,
        contextFactory: IOpenSSLServerConnectionCreator,
        replyFactory: ReplyFactory,
        connections: ServerConnections,
    ) -> None:
        handshakeContexts: HandshakeContexts | None = None
        creator: IOpenSSLServerConnectionCreator = contextFactory
        if isinstance(contextFactory, HandshakeContexts):
            handshakeContexts = contextFactory
            creator = _ByServerName(contextFactory)
        super().__init__(ReplyTLSFactory(creator, False, replyFactory, clock=replyFactory.clock))
        self.replyFactory = replyFactory
        self.connections = connections
        self.handshakeContexts = handshakeContexts

    def registerProtocol(self, p: Any) -> None:
        """
        Not kept here: L{ServerConnections} counts every connection.
        """

    def unregisterProtocol(self, p: Any) -> None:
        """
        Not kept here: L{ServerConnections} counts every connection.
        """

    def logPrefix(self) -> str:
        return "tlsreply"


def wrapWithTLS(
    contextFactory: IOpenSSLServerConnectionCreator,
    factory: ReplyFactory,
    connections: ServerConnections | None = None,
) -> TLSReplyServerFactory:
    """
    Put TLS around a L{ReplyFactory}, so that any stream endpoint
    (C{tcp:}, C{unix:}, C{haproxy:}, C{systemd:}) can carry it.

    The ClientHello is read before TLS starts
    (L{tlsreply.transport.tlsmemory.ClientHelloFirst}), so
    that a L{ServerContexts} can create each connection from the context
    for the name the client asked for.

    @param contextFactory: usually from L{buildServerContexts}; any
        C{IOpenSSLServerConnectionCreator} (a Twisted C{CertificateOptions}) works.
    @param connections: the registry of the server's connections; a new
        one, with the factory's timeouts and no cap, by default.
    @return: a L{TLSReplyServerFactory}, or the subclass the reply factory
        names (L{ReplyFactory.serverFactoryType}).
    """
    if connections is None:
        connections = ServerConnections(
            factory.clock, factory.handshakeTimeout, factory.closeTimeout
        )
    serverFactory = factory.serverFactoryType or TLSReplyServerFactory
    return serverFactory(contextFactory, factory, connections)

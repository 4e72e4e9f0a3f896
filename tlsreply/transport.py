# -*- test-case-name: tests.test_protocol,tests.test_policy -*-
"""
The layers between a stream endpoint and L{ReplyProtocol}:

    endpoint -> L{ClientHelloFirst} -> L{ReplyTLSProtocol} -> ReplyProtocol

L{ClientHelloFirst} holds the connection's first bytes until they make a
whole ClientHello, then starts TLS, so that the TLS connection is created
from the context for the server name the client asked for (see
L{tlsreply.clienthello}).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IProtocolFactory,
    IReactorTime,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.protocols.tls import BufferingTLSTransport, TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import directlyProvides, providedBy

from tlsreply.clienthello import ClientHello, ClientHelloParser, NotAClientHello
from tlsreply.limits import AcceptLimit


class ReplyTLSProtocol(BufferingTLSTransport):
    """
    Twisted's TLS protocol, told what the client offered and when it
    connected before its OpenSSL connection is made.

    @ivar clientHello: what the client offered, if its first bytes were a
        well-formed ClientHello.
    @ivar acceptedAt: when the TCP connection was accepted.
    """

    clientHello: ClientHello | None = None
    acceptedAt: float | None = None


class ReplyTLSFactory(TLSMemoryBIOFactory):
    """
    A L{TLSMemoryBIOFactory} that makes L{ReplyTLSProtocol}s.
    """

    protocol = ReplyTLSProtocol


class ClientHelloFirst(ProtocolWrapper):
    """
    Read the ClientHello, then start the TLS protocol above and hand it
    every byte received.

    TLS starts early, with whatever has arrived, when the client goes away
    or the handshake timeout expires first: the protocols above then end
    the connection and log it, as they do every other.
    """

    factory: ClientHelloFirstFactory
    _started = False
    _timer: IDelayedCall | None = None
    _abortReason: str | None = None

    def makeConnection(self, transport: Any) -> None:
        """
        Like L{ProtocolWrapper.makeConnection}, but leave the TLS protocol
        unconnected until the ClientHello is in.
        """
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)
        self._parser = ClientHelloParser()
        clock = self.factory.clock
        self._acceptedAt = clock.seconds()
        if self.factory.handshakeTimeout:
            self._timer = clock.callLater(self.factory.handshakeTimeout, self._timeOut)

    def dataReceived(self, data: bytes) -> None:
        if self._started:
            self.wrappedProtocol.dataReceived(data)
            return
        try:
            hello = self._parser.feed(data)
        except NotAClientHello:
            hello = None
        else:
            if hello is None:
                return
        self._start(hello)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self._started and self._silent():
            # Nothing arrived: report it without making TLS state (tens of
            # kilobytes each) only to log it.
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._timer = None
            try:
                self.factory.reportSilent(  # type: ignore[misc]
                    self.transport.getPeer(), reason, self._abortReason  # type: ignore[union-attr]
                )
            finally:
                self.wrappedProtocol = None  # type: ignore[assignment]
                self._parser = None  # type: ignore[assignment]
                self.factory.unregisterProtocol(self)
            return
        if not self._started:
            self._start(None)
        # The protocols above first (they log the connection), then the
        # factory's count: whoever waits for the server to go idle must find
        # every connection already logged, and the count must drop even if
        # they raise.
        try:
            self.wrappedProtocol.connectionLost(reason)
        finally:
            self.wrappedProtocol = None  # type: ignore[assignment]  # as ProtocolWrapper does
            self._parser = None  # type: ignore[assignment]
            self.factory.unregisterProtocol(self)

    def abort(self, why: str) -> None:
        """
        Abort the connection, with C{why} as the reason the log gives.
        """
        if not self._started and self._silent():
            self._abortReason = why
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        if not self._started:
            self._start(None)
        reply = getattr(self.wrappedProtocol, "wrappedProtocol", None)
        abort = getattr(reply, "abort", None)
        if abort is not None:
            abort(why)
        else:
            self.transport.abortConnection()  # type: ignore[union-attr]

    def _start(self, hello: ClientHello | None) -> None:
        self._started = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        tls = self.wrappedProtocol
        if isinstance(tls, ReplyTLSProtocol):
            tls.clientHello = hello
            tls.acceptedAt = self._acceptedAt
        tls.makeConnection(self)  # type: ignore[arg-type]
        if self._parser.received and self.wrappedProtocol is not None:
            self.wrappedProtocol.dataReceived(self._parser.received)

    def _timeOut(self) -> None:
        """
        No whole ClientHello in time. A client that sent nothing at all is
        aborted here; otherwise TLS starts with what there is, and the reply
        protocol's handshake timer, already due, aborts the connection and
        logs why.
        """
        self._timer = None
        if self._silent():
            self.abort(
                f"handshake not completed within {self.factory.handshakeTimeout:g}s"
            )
            return
        self._start(None)

    def _silent(self) -> bool:
        """
        Has the client sent nothing yet (and is there a way to report a
        connection without TLS)?
        """
        return self.factory.reportSilent is not None and not self._parser.received


class ClientHelloFirstFactory(WrappingFactory[ClientHelloFirst]):
    """
    Wraps a L{ReplyTLSFactory}; see L{ClientHelloFirst}.
    """

    protocol = ClientHelloFirst
    noisy = False

    #: Told of every connection accepted and closed, to cap them.
    limit: AcceptLimit | None = None

    def __init__(
        self,
        wrappedFactory: IProtocolFactory,
        clock: IReactorTime,
        handshakeTimeout: float,
        reportSilent: Callable[[IAddress, Failure, str | None], None] | None = None,
    ) -> None:
        """
        @param reportSilent: reports a connection that ended before the
            client sent a byte (its peer, why TCP ended, and the reason
            tlsreply gives if it aborted it); without it such connections
            go through TLS like any other.
        """
        super().__init__(wrappedFactory)
        self.clock = clock
        self.handshakeTimeout = handshakeTimeout
        self.reportSilent = reportSilent
        self._idleWaiters: list[Deferred[None]] = []

    def registerProtocol(self, p: ClientHelloFirst) -> None:
        super().registerProtocol(p)
        if self.limit is not None:
            self.limit.connectionsChanged(self.inProgress)

    def unregisterProtocol(self, p: ClientHelloFirst) -> None:
        super().unregisterProtocol(p)
        if self.limit is not None:
            self.limit.connectionsChanged(self.inProgress)
        if not self.protocols:
            waiters, self._idleWaiters = self._idleWaiters, []
            for waiter in waiters:
                waiter.callback(None)

    @property
    def inProgress(self) -> int:
        """
        Connections accepted and not yet closed, at any stage.
        """
        return len(self.protocols)

    def whenIdle(self) -> Deferred[None]:
        """
        @return: a L{Deferred} that fires once no connection is in progress.
        """
        if not self.protocols:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idleWaiters.append(waiter)
        return waiter

    def abortAll(self, why: str) -> int:
        """
        Abort every connection in progress.

        @param why: the reason each connection's log event gives.
        @return: how many were aborted.
        """
        connections = list(self.protocols)
        for connection in connections:
            connection.abort(why)
        return len(connections)

    def logPrefix(self) -> str:
        return str(self.wrappedFactory.logPrefix())

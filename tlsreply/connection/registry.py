# -*- test-case-name: tests.test_lifecycle,tests.test_hostile,tests.test_protocol,tests.test_failedhandshakes -*-
"""
Every connection of one server, from accept to close.

One registry per server holds the connections in progress whichever way
they were accepted (tlsreply's own accept loop, L{tlsreply.transport.tlssocket}, or
any Twisted endpoint, L{tlsreply.transport.tlsmemory}). It is the one place that:

  - counts them, for the connection cap (L{AcceptLimit}) and the graceful
    stop (L{ServerConnections.whenIdle}, L{ServerConnections.abortAll});
  - holds their deadlines, the handshake timeout (from accept to a
    completed handshake) and the close timeout (from the reply and
    close_notify, or from the alert of a failed handshake, to the client
    closing), each on one timer for all connections (L{Deadlines});
  - knows when a burst of handshakes has ended, to give the memory they
    freed back to the system (L{HeapTrim}).

The connections themselves provide L{AcceptedConnection}: the state of one
connection, handed from layer to layer by that name.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

from tlsreply.connection._deadlines import Deadlines
from tlsreply.connection._heaptrim import HeapTrim, glibcHeap
from tlsreply.connection.ending import ABORTED, TIMEOUT, Ending
from tlsreply.connection.limits import AcceptLimit
from tlsreply.connection.tcpinfo import bytesAcknowledged, unsentBytes

if TYPE_CHECKING:
    from OpenSSL import SSL

    from tlsreply.clienthello.offered import ClientHello


class AcceptedConnection(Protocol):
    """
    What every layer of tlsreply knows about one connection, owned by the
    lowest of them (the one that accepted it).

    @ivar acceptedAt: when the connection was accepted (the clock's
        seconds); the handshake timeout and the handshake's duration count
        from here.
    @ivar earlyDataOffered: whether the ClientHello offered 0-RTT data
        (which tlsreply never accepts).
    @ivar clientHello: everything the ClientHello offered, parsed only when
        something consumes it (a recorder, see L{ReplyFactory.recorders}).
    @ivar abortReason: why tlsreply aborted the connection, if it did (a
        timeout, the shutdown), for its log line and its metrics.
    @ivar acknowledged: bytes the peer had acknowledged when the close
        timeout last looked, or C{None}.
    @ivar overTCP: whether the connection is TCP (else a Unix socket).
    """

    acceptedAt: float
    earlyDataOffered: bool
    clientHello: ClientHello | None
    abortReason: Ending | None
    acknowledged: int | None
    overTCP: bool

    def handshakeCompleted(self) -> None:
        """
        The handshake completed (the reply protocol says so): the reply and
        close_notify are on their way, and the close timeout starts.
        """

    def abort(self, why: Ending) -> None:
        """
        Close the connection now, without waiting for anything; C{why} is
        how it ended, for its log line and its metrics.
        """

    def peerText(self) -> str:
        """
        The client's address as the log gives it (C{127.0.0.1:50123},
        C{[::1]:50123}).
        """

    def servedCertificate(self, connection: SSL.Connection) -> str | None:
        """
        Which certificate the connection was served (see
        L{tlsreply.tls.contexts.ServerContexts.servedCertificate}).
        """

    def tcpSocket(self) -> socket.socket | None:
        """
        The connection's TCP socket, to ask the kernel how far the reply
        has been delivered; C{None} if it is not a TCP socket.
        """


class ServerConnections:
    """
    The connections in progress of one server, their deadlines and their
    count.

    @ivar handshakeDeadlines: connections between accept and a completed
        handshake.
    @ivar closeDeadlines: connections whose reply and close_notify were
        sent and whose client has not closed yet.
    @ivar lingerDeadlines: connections whose handshake failed (and were
        reported), kept open until the client closes (L{handshakeFailed}).
    @ivar limit: told of every change in the count, to cap it.
    @ivar handshakeTimeouts: connections aborted so far because their
        handshake timeout expired (for metrics, L{tlsreply.metrics.counting}).
    @ivar closeTimeouts: connections aborted so far because their close
        timeout expired.
    @ivar heapTrim: told of every handshake's start and end, to give the
        heap back to the system after a burst.
    """

    def __init__(
        self,
        clock: IReactorTime,
        handshakeTimeout: float,
        closeTimeout: float,
        limit: AcceptLimit | None = None,
        heapTrim: HeapTrim | None = None,
    ) -> None:
        """
        @param handshakeTimeout: seconds from accept to a completed
            handshake; C{0} for no limit.
        @param closeTimeout: seconds from the end of the handshake (when
            the reply and close_notify are written) for the client to
            close; C{0} for no limit.
        @param heapTrim: by default one that trims glibc's heap (if the
            C library is glibc) on C{clock}.
        """
        self.clock = clock
        self.heapTrim = heapTrim or HeapTrim(clock, glibcHeap())
        self.limit = limit
        self.handshakeDeadlines: Deadlines[AcceptedConnection] = Deadlines(
            clock, handshakeTimeout, self._handshakeExpired
        )
        self.closeDeadlines: Deadlines[AcceptedConnection] = Deadlines(
            clock, closeTimeout, self._closeExpired
        )
        self.lingerDeadlines: Deadlines[AcceptedConnection] = Deadlines(
            clock, closeTimeout, self._lingerExpired
        )
        self._open: dict[AcceptedConnection, None] = {}
        self.handshakeTimeouts = 0
        self.closeTimeouts = 0
        self._idleWaiters: list[Deferred[None]] = []

    @property
    def inProgress(self) -> int:
        """
        Connections accepted and not yet closed, at any stage.
        """
        return len(self._open)

    @property
    def full(self) -> bool:
        """
        Whether the connection cap is reached: accept no more for now.
        """
        limit = self.limit
        return limit is not None and len(self._open) >= limit.maximum

    def opened(self, connection: AcceptedConnection) -> None:
        """
        A connection was accepted (just now): count it and start its
        handshake deadline.
        """
        self._open[connection] = None
        self.handshakeDeadlines.add(connection)
        self.heapTrim.handshakeStarted(connection)
        if self.limit is not None:
            self.limit.connectionsChanged(len(self._open))

    def handshakeCompleted(self, connection: AcceptedConnection) -> None:
        """
        The handshake is done and the reply and close_notify are on their
        way: the client now has the close timeout to close.
        """
        self.handshakeDeadlines.discard(connection)
        self.heapTrim.handshakeEnded(connection)
        self.closeDeadlines.add(connection)

    def handshakeFailed(self, connection: AcceptedConnection) -> None:
        """
        The handshake failed, and the connection was reported: the alert
        was sent, then the end of the server's side of TCP. The connection
        stays open, reading and discarding what the client still sends,
        until the client closes, for at most the close timeout (as after a
        reply): a socket closed with input still arriving answers it with a
        reset, which destroys the alert before the client has read it.
        """
        self.handshakeDeadlines.discard(connection)
        self.heapTrim.handshakeEnded(connection)
        self.lingerDeadlines.add(connection)

    def exempt(self, connection: AcceptedConnection) -> None:
        """
        No deadline applies to C{connection} any more: a test scenario's
        server that stalls or dribbles on purpose
        (L{tlsreply.scenarios.misbehaving}) bounds the connection itself. It is
        still counted, and aborted by a stop.
        """
        self.handshakeDeadlines.discard(connection)
        self.closeDeadlines.discard(connection)
        self.lingerDeadlines.discard(connection)

    def closed(self, connection: AcceptedConnection) -> None:
        """
        A connection ended (and was reported): forget it.
        """
        self.handshakeDeadlines.discard(connection)
        self.closeDeadlines.discard(connection)
        self.lingerDeadlines.discard(connection)
        self.heapTrim.handshakeEnded(connection)
        if connection not in self._open:
            return
        del self._open[connection]
        if self.limit is not None:
            self.limit.connectionsChanged(len(self._open))
        if not self._open and self._idleWaiters:
            waiters, self._idleWaiters = self._idleWaiters, []
            for waiter in waiters:
                waiter.callback(None)

    def whenIdle(self) -> Deferred[None]:
        """
        @return: a C{Deferred} that fires once no connection is in progress.
        """
        if not self._open:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idleWaiters.append(waiter)
        return waiter

    def abortAll(self, why: str) -> int:
        """
        Abort every connection in progress (their ending's kind is
        L{ABORTED}).

        @param why: the reason each connection's log line gives.
        @return: how many were aborted.
        """
        ending = Ending(ABORTED, why)
        connections = list(self._open)
        for connection in connections:
            connection.abort(ending)
        return len(connections)

    def _handshakeExpired(self, connection: AcceptedConnection) -> None:
        self.handshakeTimeouts += 1
        connection.abort(
            Ending(TIMEOUT, f"handshake not completed within {self.handshakeDeadlines.delay:g}s")
        )

    def _lingerExpired(self, connection: AcceptedConnection) -> None:
        connection.abort(
            Ending(
                TIMEOUT,
                f"peer did not close within {self.lingerDeadlines.delay:g}s of the alert",
            )
        )

    def _closeExpired(self, connection: AcceptedConnection) -> None:
        """
        The close timeout expired. A client still receiving the reply
        (bytes queued, and more acknowledged than at the last look; the
        first look is this first expiry) gets another period; any other is
        cut off.
        """
        closeTimeout = self.closeDeadlines.delay
        sock = connection.tcpSocket()
        unsent = unsentBytes(sock) if sock is not None else None
        if not unsent:
            self.closeTimeouts += 1
            connection.abort(
                Ending(
                    TIMEOUT,
                    f"peer did not close within {closeTimeout:g}s of the reply and close_notify",
                )
            )
            return
        assert sock is not None
        acknowledged = bytesAcknowledged(sock)
        if acknowledged is not None and acknowledged != connection.acknowledged:
            connection.acknowledged = acknowledged
            self.closeDeadlines.add(connection)
            return
        self.closeTimeouts += 1
        connection.abort(Ending(TIMEOUT, f"peer stopped reading the reply for {closeTimeout:g}s"))

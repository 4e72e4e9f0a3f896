# -*- test-case-name: tests.test_wire,tests.test_lifecycle,tests.test_unixpaths -*-
"""
tlsreply's own listening ports: the lean path from accept to TLS.

A L{SocketTLSPort} is Twisted's TCP (or Unix) port, with its binding,
address and stop, but its own accept loop: it accepts until the kernel has
no more connections queued (within the connection cap, which it checks for
every connection, so the cap is exact), turns on C{TCP_NODELAY} (without
it the ticket, the reply and close_notify, three separate writes, wait on
Nagle's algorithm and delayed acknowledgements), and hands each socket to
a L{TLSSocketConnection}.

Endpoint descriptions stay Twisted's: L{ListeningReactor} is the reactor
that C{twisted.internet.endpoints.serverFromString} is given, so that the
C{tcp:}, C{tcp6:}, C{unix:} and C{systemd:} endpoints it parses create
these ports for a tlsreply server. C{haproxy:} endpoints (which must read
the PROXY header first) get Twisted's port and the memory-BIO path
(L{tlsreply.transport.tlsmemory}), as L{QueueServingPort}.

Every port tlsreply listens on serves its accept queue before it closes
(L{serveQueue}): a stop or a drain behind a load balancer resets no
connection the kernel had already completed.

A Unix socket's path is removed only by the process that bound it: a port
that adopted its socket (C{systemd:}, a worker of C{--workers}) leaves it
(L{AdoptableUNIXPort}).
"""

from __future__ import annotations

import errno
import select
import socket
from typing import Any, TypeVar

from twisted.internet import tcp, unix
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorSocket,
    IReactorTCP,
    IReactorUNIX,
)
from twisted.internet.posixbase import PosixReactorBase
from twisted.logger import Logger
from zope.interface import implementer

from tlsreply.connection.ending import INTERNAL_ERROR
from tlsreply.transport._poller import readinessFor
from tlsreply.transport.tlsmemory import HandshakeContexts, TLSReplyServerFactory
from tlsreply.transport.tlssocket import PEEK_SIZE, TLSSocketConnection

#: accept() errors that mean "no descriptor or memory for now": accepting
#: pauses briefly instead of spinning on a listening socket that stays
#: readable.
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

#: accept() errors about one connection only (it went away, or a firewall
#: refused it): go on with the next.
_SKIP_ERRORS = frozenset({errno.ECONNABORTED, errno.EPERM, errno.EPROTO, errno.EINTR})

T = TypeVar("T", bound=tcp.Port)

_log = Logger(namespace="tlsreply")

#: Seconds accepting pauses after running out of descriptors or memory.
RESOURCE_PAUSE = 0.1

#: At most this many accept rounds when a port serves its queue before
#: closing: a bound, for a queue that keeps refilling.
_QUEUE_ROUNDS = 64


def serveQueue(port: tcp.Port) -> None:
    """
    Accept the connections the kernel has queued on a listening port that
    is about to close, so that closing it resets none of them.

    Closing a listening socket resets every connection in its accept
    queue, and those clients (or a load balancer, which has already
    forwarded their first bytes and can no longer try another server) see
    a failure. Accepted now, right before the close, they are served
    during the shutdown grace like any connection in progress. Only a
    connection that completes between the last accept and the close (a
    few microseconds) is still reset; what keeps even that window empty is
    draining first (C{--drain-delay}), so that the load balancer has
    stopped sending.
    """
    listening = select.poll()
    listening.register(port.fileno(), select.POLLIN)
    for _ in range(_QUEUE_ROUNDS):
        if not listening.poll(0):
            return
        port.doRead()


class QueueServingPort(tcp.Port):
    """
    Twisted's TCP port, serving its accept queue before it closes (for the
    memory-BIO path: C{haproxy:} addresses and other factories).
    """

    def connectionLost(self, reason: Any) -> None:
        serveQueue(self)
        super().connectionLost(reason)


class AdoptableUNIXPort(unix.Port):
    """
    Twisted's Unix socket port, which leaves a socket it adopted (from
    systemd, or from the parent of C{--workers}) as it found it.

    Twisted's port would chmod the socket's path (to 0666 unless told
    otherwise), listen again with its own backlog, shut the socket down
    when it stops and unlink the path. The socket is another process's,
    shared with it: a shutdown refuses every later client of the socket,
    and an unlinked path leaves them ENOENT, while that process (or the
    other workers, or systemd for the next start) still serves it; the
    chmod undoes C{SocketMode=} or C{mode=}. Only the process that bound a
    path removes it: a port that bound its own does, as Twisted's.
    """

    _adopted = False

    @classmethod
    def _fromListeningDescriptor(  # type: ignore[override]  # unix.Port's own
        cls, reactor: Any, fd: int, factory: Any
    ) -> Any:
        port = super()._fromListeningDescriptor(reactor, fd, factory)
        port._adopted = True
        return port

    def startListening(self) -> None:
        if not self._adopted:
            super().startListening()
            return
        # Twisted's TCP port with a socket handed over, without the path's
        # chmod and the listen() that unix.Port adds.
        tcp._reservedFD.reserve()
        sock = self._preexistingSocket
        assert sock is not None
        self._preexistingSocket = None
        self._shouldShutdown = False
        assert self.factory is not None
        self.factory.doStart()
        self.connected = True
        self.socket = sock
        self.fileno = sock.fileno  # type: ignore[method-assign]
        self.numberAccepts = 100
        self.startReading()

    def connectionLost(self, reason: Any) -> None:
        if self._adopted:
            tcp.Port.connectionLost(self, reason)  # no unlink
        else:
            super().connectionLost(reason)


class QueueServingUNIXPort(AdoptableUNIXPort):
    """
    Twisted's Unix socket port, serving its accept queue before it closes.
    """

    def connectionLost(self, reason: Any) -> None:
        serveQueue(self)
        super().connectionLost(reason)


class SocketTLSPort(tcp.Port):
    """
    A TCP port serving TLS on each accepted socket: Twisted's port with
    tlsreply's accept loop, for a L{TLSReplyServerFactory}.
    """

    _log = Logger()
    _resumeCall: Any = None

    def startListening(self) -> None:
        super().startListening()
        factory = self.factory
        assert isinstance(factory, TLSReplyServerFactory)
        contexts = factory.handshakeContexts
        assert contexts is not None
        self.contexts: HandshakeContexts = contexts
        self.replyFactory = factory.replyFactory
        self.connections = factory.connections
        #: Where each first flight is peeked at (one per port: a port
        #: belongs to one reactor, and so to one thread).
        self.peekBuffer = bytearray(PEEK_SIZE)
        #: Watches the connections (one for all the reactor's ports).
        self.readiness = readinessFor(self.reactor)

    def doRead(self) -> None:
        """
        Accept every connection queued (up to the cap) and start each.
        """
        accept = self.socket.accept
        connections = self.connections
        replyFactory = self.replyFactory
        clock = replyFactory.clock
        family = int(self.addressFamily)
        isTCP = family != socket.AF_UNIX
        while self.connected and not connections.full:
            try:
                sock, address = accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in _SKIP_ERRORS:
                    continue
                if e.errno in _RESOURCE_ERRORS:
                    self._pauseAccepting(e)
                    return
                raise
            sock.setblocking(False)
            if isTCP:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            protocol = replyFactory.buildProtocol(None)
            if protocol is None:
                sock.close()
                continue
            connection = TLSSocketConnection(
                self, sock, family, address, protocol, clock.seconds()
            )
            try:
                connection.begin()
            except Exception:
                # A fault in one connection must not close the port.
                self._log.failure("unexpected error starting a connection")
                connection.abort(INTERNAL_ERROR)

    def _pauseAccepting(self, error: OSError) -> None:
        """
        Out of descriptors or memory: stop accepting for a moment (the
        kernel's backlog holds new clients) and say so, once per pause.
        """
        self.stopReading()
        if self._resumeCall is None:
            self._log.warn(
                "cannot accept connections ({error}); pausing {pause:g}s",
                error=errno.errorcode.get(error.errno or 0, str(error)),
                pause=RESOURCE_PAUSE,
            )
            self._resumeCall = self.replyFactory.clock.callLater(
                RESOURCE_PAUSE, self._resumeAccepting
            )

    def _resumeAccepting(self) -> None:
        self._resumeCall = None
        limit = self.connections.limit
        if self.connected and not (limit is not None and limit.paused):
            self.startReading()

    def connectionLost(self, reason: Any) -> None:
        if self._resumeCall is not None and self._resumeCall.active():
            self._resumeCall.cancel()
        self._resumeCall = None
        # Within the connection cap, as always (doRead checks it).
        serveQueue(self)
        super().connectionLost(reason)

    def logPrefix(self) -> str:
        return "tlsreply"


class SocketTLSUNIXPort(SocketTLSPort, AdoptableUNIXPort):
    """
    A Unix socket port serving TLS on each accepted socket.
    """


def servesOnSocket(reactor: object, factory: object) -> bool:
    """
    Can tlsreply's own port serve this factory on this reactor? It needs a
    tlsreply server factory whose contexts are chosen by name and whose
    connections run the reply alone (L{TLSReplyServerFactory.socketTLS}), and a
    reactor that Twisted's own TCP ports run on (one of file descriptors:
    epoll, poll, select, asyncio; not a test's memory reactor).
    """
    return (
        isinstance(factory, TLSReplyServerFactory)
        and factory.socketTLS
        and factory.handshakeContexts is not None
        and isinstance(reactor, PosixReactorBase)
    )


#: How systemd: endpoint descriptions name the address families.
_DOMAINS: dict[int, str] = {socket.AF_INET: "INET", socket.AF_INET6: "INET6"}


def _actualFamily(fileDescriptor: int, described: int) -> int:
    """
    The address family of an inherited listening socket, which is what its
    addresses must be read as, whatever the endpoint description said: an
    IPv6 socket read as IPv4 (C{systemd:domain=INET} for a systemd socket
    unit whose C{ListenStream=443} made an IPv6 one) turns every address in
    the log into garbage. A mismatch is logged once, with the fix.
    """
    inherited = socket.socket(fileno=fileDescriptor)
    try:
        actual = int(inherited.family)
    finally:
        inherited.detach()
    if actual != described:
        _log.warn(
            "the inherited socket {fd} is {actual}, not {described} as its "
            "description says; using {actual} (for systemd, write "
            "domain={domain} in the address)",
            fd=fileDescriptor,
            actual=socket.AddressFamily(actual).name,
            described=socket.AddressFamily(described).name,
            domain=_DOMAINS.get(actual, "UNIX"),
        )
    return actual


@implementer(IReactorTCP, IReactorUNIX, IReactorSocket)
class ListeningReactor:
    """
    A reactor for Twisted's endpoint parsers whose listeners are tlsreply's
    ports: for a tlsreply server factory, with C{socketTLS}, its own
    (L{SocketTLSPort}); for any other factory (C{haproxy:}'s) or without
    C{socketTLS}, Twisted's, serving their queue before they close
    (L{QueueServingPort}). Everything else goes to the real reactor.
    """

    def __init__(self, reactor: Any, socketTLS: bool = True) -> None:
        """
        @param socketTLS: whether a tlsreply server factory is served with
            TLS on the socket; C{False} for TLS over memory BIOs everywhere.
        """
        self._reactor = reactor
        self._socketTLS = socketTLS

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def _portFor(
        self, factory: object, socketTLS: type[T], memoryBIO: type[T]
    ) -> type[T] | None:
        """
        Which port class listens for C{factory}: tlsreply's own, Twisted's
        serving its queue before it closes, or (C{None}) the reactor's own,
        on a reactor that is not one of file descriptors (a test's).
        """
        if not isinstance(self._reactor, PosixReactorBase):
            return None
        if self._socketTLS and servesOnSocket(self._reactor, factory):
            return socketTLS
        return memoryBIO

    def listenTCP(
        self, port: int, factory: IProtocolFactory, backlog: int = 50, interface: str = ""
    ) -> IListeningPort:
        portType = self._portFor(factory, SocketTLSPort, QueueServingPort)
        if portType is None:
            return self._reactor.listenTCP(port, factory, backlog, interface)
        listening = portType(port, factory, backlog, interface, self._reactor)
        listening.startListening()
        return listening

    def listenUNIX(
        self,
        address: str | bytes,
        factory: IProtocolFactory,
        backlog: int = 50,
        mode: int = 0o666,
        wantPID: int = 0,
    ) -> IListeningPort:
        portType = self._portFor(factory, SocketTLSUNIXPort, QueueServingUNIXPort)
        if portType is None:
            return self._reactor.listenUNIX(address, factory, backlog, mode, wantPID)
        listening = portType(
            address.encode() if isinstance(address, str) else address,
            factory,
            backlog,
            mode,
            self._reactor,
            wantPID,
        )
        listening.startListening()
        return listening

    def adoptStreamPort(
        self, fileDescriptor: int, addressFamily: int, factory: IProtocolFactory
    ) -> IListeningPort:
        addressFamily = _actualFamily(fileDescriptor, addressFamily)
        listening: tcp.Port
        if addressFamily == socket.AF_UNIX:
            unixType = self._portFor(factory, SocketTLSUNIXPort, QueueServingUNIXPort)
            if unixType is None:
                return self._reactor.adoptStreamPort(fileDescriptor, addressFamily, factory)
            listening = unixType._fromListeningDescriptor(
                self._reactor, fileDescriptor, factory
            )
        else:
            tcpType = self._portFor(factory, SocketTLSPort, QueueServingPort)
            if tcpType is None:
                return self._reactor.adoptStreamPort(fileDescriptor, addressFamily, factory)
            listening = tcpType._fromListeningDescriptor(
                self._reactor, fileDescriptor, addressFamily, factory
            )
        listening.startListening()
        return listening

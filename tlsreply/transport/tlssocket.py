# -*- test-case-name: tests.test_wire,tests.test_hostile,tests.test_hellointerrupted -*-
"""
The lean connection path: TLS directly on the accepted socket.

tlsreply's own listening ports (L{tlsreply.transport.listening}) accept connections
and hand each socket to a L{TLSSocketConnection}, which drives an OpenSSL
connection bound to the socket by the reactor's readiness events and runs
the same L{ReplyProtocol} as every other path. Compared with Twisted's TLS
over memory BIOs on a C{tcp.Server}, this saves, per connection, the
copies of every TLS byte through Python, a transport object and its log
prefix, a wrapping protocol and a timer or two: about a third of the
server's CPU time per handshake (see C{BENCHMARKS.md}).

Before any TLS state exists, the first bytes are only peeked at (they stay
in the socket for OpenSSL to read): enough to choose the context by the
server name the client asked for and to note a 0-RTT offer. A connection
that never sends a byte costs no OpenSSL state at all.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any, Protocol

from OpenSSL import SSL
from twisted.internet.error import ConnectionAborted
from twisted.internet.interfaces import (
    IAddress,
    INegotiated,
    IReadDescriptor,
    ISSLTransport,
    ITransport,
    IWriteDescriptor,
)
from twisted.internet.main import CONNECTION_DONE
from twisted.python.failure import Failure
from zope.interface import implementer

from tlsreply.clienthello.offered import ClientHello
from tlsreply.clienthello.parser import MAXIMUM_HELLO_SIZE
from tlsreply.clienthello.peek import HelloPeek
from tlsreply.connection.addresses import formatPeer, peerAddress
from tlsreply.connection.ending import ABORT_REQUESTED, Ending
from tlsreply.protocol import failureFromOpenSSL, lostWithoutCloseNotify
from tlsreply.transport._lingering import LingeringSocket, drainSocket

if TYPE_CHECKING:
    from tlsreply.connection.registry import ServerConnections
    from tlsreply.protocol import ReplyFactory, ReplyProtocol
    from tlsreply.transport._poller import Readiness
    from tlsreply.transport.tlsmemory import HandshakeContexts


class AcceptingPort(Protocol):
    """
    What a connection needs of the port that accepted it
    (L{tlsreply.transport.listening.SocketTLSPort}).
    """

    reactor: Any
    contexts: HandshakeContexts
    replyFactory: ReplyFactory
    connections: ServerConnections
    readiness: Readiness
    peekBuffer: bytearray

    def getHost(self) -> Any: ...


#: Twisted's shared C{Failure} for a clean close: no traceback is captured.
_DONE = Failure(CONNECTION_DONE)

#: How much the first peek can see: a whole ClientHello at its largest.
PEEK_SIZE = MAXIMUM_HELLO_SIZE + 2048

_WantRead = SSL.WantReadError
_WantWrite = SSL.WantWriteError
_ZeroReturn = SSL.ZeroReturnError
_SysCallError = SSL.SysCallError
_Error = SSL.Error
_MSG_PEEK = socket.MSG_PEEK


@implementer(IReadDescriptor, IWriteDescriptor, ITransport, ISSLTransport, INegotiated)
class TLSSocketConnection:
    """
    One accepted connection with TLS on its socket, from accept to close.

    It is both the transport of its L{ReplyProtocol} (which writes the reply
    and calls L{loseConnection} at once, as on any TLS transport) and the
    connection's state (L{tlsreply.connection.registry.AcceptedConnection}: accept
    time, what the ClientHello offered, how to abort), so it is also its
    own C{connection}.

    Life of a connection: the first bytes are peeked at until they hold a
    whole ClientHello; the OpenSSL connection is made from the context for
    the name it asks for; the handshake runs; the reply is written, then
    close_notify; then whatever the client sends is read and discarded
    until its close_notify or EOF (closing with unread data would make the
    kernel send a reset, which can destroy the reply in flight); then the
    socket is closed and the protocol told, once.
    """

    __slots__ = (
        "protocol",
        "acceptedAt",
        "earlyDataOffered",
        "clientHello",
        "abortReason",
        "acknowledged",
        "overTCP",
        "_port",
        "_socket",
        "_fd",
        "_family",
        "_address",
        "_peer",
        "_tls",
        "_pending",
        "_handshakeDone",
        "_closeRequested",
        "_shutdownSent",
        "_closed",
        "_writing",
        "_peeked",
        "_hello",
        "_lingering",
    )

    def __init__(
        self,
        port: AcceptingPort,
        sock: socket.socket,
        family: int,
        address: Any,
        protocol: ReplyProtocol,
        acceptedAt: float,
    ) -> None:
        """
        @param family: the socket's address family (C{AF_INET}, ...).
        @param address: the peer's address as C{accept} returned it.
        """
        self.protocol = protocol
        self.acceptedAt = acceptedAt
        self.earlyDataOffered = False
        self.clientHello: ClientHello | None = None
        self.abortReason: Ending | None = None
        self.acknowledged: int | None = None
        self._port = port
        self._socket = sock
        self._fd = sock.fileno()
        self._family = family
        self.overTCP = family != socket.AF_UNIX
        self._address = address
        self._peer: IAddress | None = None
        self._tls: SSL.Connection | None = None
        self._pending: list[bytes | memoryview] = []
        self._handshakeDone = False
        self._closeRequested = False
        self._shutdownSent = False
        self._closed = False
        self._writing = False
        self._peeked = 0
        self._hello: HelloPeek | None = None
        self._lingering: LingeringSocket | None = None

    # The reactor's side: IReadDescriptor, IWriteDescriptor.

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return "tlsreply"

    def doRead(self) -> None:
        """
        The socket is readable: peek at the ClientHello, or go on with the
        handshake, or read and discard what the client sends.
        """
        if self._tls is None and not self._startTLS():
            return
        if not self._handshakeDone:
            self._handshake()
        else:
            self._discardInput()

    def doWrite(self) -> None:
        """
        The socket is writable again: go on with whatever wanted to write
        (the handshake, the reply, close_notify, or a read that had to
        write first).
        """
        self._stopWriting()
        if not self._handshakeDone:
            self._handshake()
            return
        if self._flush() and self._closeRequested and not self._shutdownSent:
            self._shutdown()
        if not self._closed:
            self._discardInput()

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor dropped this connection (it is shutting down, or a
        method above raised): close it and report it like any other.
        """
        self._close(reason)

    # The connection's side: AcceptedConnection.

    @property
    def connection(self) -> TLSSocketConnection:
        """
        The connection's state, which this transport holds itself.
        """
        return self

    def peerText(self) -> str:
        return formatPeer(self._family, self._address)

    def servedCertificate(self, connection: SSL.Connection) -> str | None:
        return self._port.contexts.servedCertificate(connection)

    def tcpSocket(self) -> socket.socket | None:
        return self._socket if self._family != socket.AF_UNIX else None

    def handshakeCompleted(self) -> None:
        """
        Told by the protocol: from now the close timeout applies.
        """
        self._port.connections.handshakeCompleted(self)

    def abort(self, why: Ending) -> None:
        if not self._closed:
            self.abortReason = why
            self._close(Failure(ConnectionAborted()), drain=True)
        elif self._lingering is not None:
            self._lingering.close()

    def begin(self) -> None:
        """
        Start the connection, right after accept: count it, connect its
        protocol, and read whatever the client has already sent (under
        load its ClientHello usually arrived before the accept), which
        saves a round through the reactor.
        """
        self._port.connections.opened(self)
        self.protocol.makeConnection(self)
        if self._closed:
            return
        # Watched before that first read: it may complete the handshake
        # (the client answered the server's flight before OpenSSL went back
        # to reading) and then have to wait until the socket is writable
        # (a large reply), which epoll can be told only of a descriptor it
        # watches.
        self._port.readiness.addReader(self)
        self.doRead()

    # The protocol's side: ITransport, ISSLTransport.

    def write(self, data: bytes) -> None:
        if self._closed or self._closeRequested or not data:
            return
        if self._handshakeDone and not self._pending:
            self._pending.append(data)
            self._flush()
        else:
            self._pending.append(data)

    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Send close_notify once everything written has been sent, then wait
        for the client to close.
        """
        if self._closed or self._closeRequested:
            return
        self._closeRequested = True
        if self._handshakeDone and not self._pending:
            self._shutdown()

    def abortConnection(self) -> None:
        self.abort(ABORT_REQUESTED)

    def getPeer(self) -> Any:
        """
        The client's address: an C{IPv4Address}, C{IPv6Address} or
        C{UNIXAddress}.
        """
        if self._peer is None:
            self._peer = peerAddress(self._family, self._address)
        return self._peer

    def getHost(self) -> Any:
        return self._port.getHost()

    def loseWriteConnection(self) -> None:
        """
        For TLS, closing the writing side is sending close_notify, which
        L{loseConnection} does once the reply is out.
        """
        self.loseConnection()

    def getTcpNoDelay(self) -> bool:
        return self._option(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    def setTcpNoDelay(self, enabled: bool) -> None:
        if self.tcpSocket() is not None:
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, enabled)

    def getTcpKeepAlive(self) -> bool:
        return self._option(socket.SOL_SOCKET, socket.SO_KEEPALIVE)

    def setTcpKeepAlive(self, enabled: bool) -> None:
        if self.tcpSocket() is not None:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, enabled)

    def _option(self, level: int, option: int) -> bool:
        if self.tcpSocket() is None or self._closed:
            return False
        return bool(self._socket.getsockopt(level, option))

    def getHandle(self) -> SSL.Connection | None:
        """
        The OpenSSL connection (as Twisted's TLS transport gives it), or
        C{None} before the ClientHello has arrived.
        """
        return self._tls

    def getPeerCertificate(self) -> Any:
        return self._tls.get_peer_certificate() if self._tls is not None else None

    @property
    def negotiatedProtocol(self) -> bytes | None:
        if self._tls is None or not self._handshakeDone:
            return None
        return self._tls.get_alpn_proto_negotiated() or None

    @property
    def disconnecting(self) -> bool:
        return self._closeRequested

    @property
    def connected(self) -> bool:
        return not self._closed

    # The connection's life.

    def _startTLS(self) -> bool:
        """
        Peek at the first bytes. Once they hold a whole ClientHello (or
        cannot be one, or cannot grow any more), make the OpenSSL connection
        from the context for the name it asks for.

        @return: whether TLS has started.
        """
        port = self._port
        buffer = port.peekBuffer
        try:
            length = self._socket.recv_into(buffer, PEEK_SIZE, _MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:
            self._close(lostWithoutCloseNotify())
            return False
        if not length:
            # Closed before sending a byte: no TLS state is made for it.
            self._close(_DONE)
            return False
        if length == self._peeked:
            # Woken with no new byte since the last look: the client shut
            # down its side mid-hello. OpenSSL ends it with its reason.
            self._hello = None
            return self._makeTLS(None)
        hello = self._hello
        if hello is None:
            hello = self._hello = HelloPeek(bool(port.replyFactory.recorders))
        waitFor = hello.look(buffer, length)
        if waitFor:
            # Part of a ClientHello is here: have the kernel wake us only
            # once the bytes up to the next record boundary that matters
            # have arrived (see HelloPeek.look), or the client closed.
            self._peeked = length
            lowWater = min(waitFor, PEEK_SIZE)
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowWater)
            return False
        self._hello = None
        self.earlyDataOffered = hello.earlyDataOffered
        self.clientHello = hello.clientHello
        return self._makeTLS(hello.serverName)

    def _makeTLS(self, serverName: str | None) -> bool:
        """
        Make the OpenSSL connection, on the socket, from the context for
        C{serverName}.

        @return: C{True}: TLS has started.
        """
        if self._peeked:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
        context = self._port.contexts.contextForHandshake(serverName)
        tls = self._tls = SSL.Connection(context, self._socket)
        tls.set_accept_state()
        return True

    def _handshake(self) -> None:
        tls = self._tls
        assert tls is not None
        try:
            tls.do_handshake()
        except _WantRead:
            return
        except _WantWrite:
            self._startWriting()
            return
        except _SysCallError:
            self._close(lostWithoutCloseNotify())
            return
        except _Error as e:
            self._close(failureFromOpenSSL(e), linger=True)
            return
        self._handshakeDone = True
        self.protocol.handshakeCompleted()
        if self._closed:
            return
        if self._flush() and self._closeRequested:
            self._shutdown()
        # No read now: the client answers close_notify a round trip later,
        # and whatever it sent already (a request after its Finished) is
        # still in the socket, not in OpenSSL (which reads one record at a
        # time), so the next readiness event reports it.

    def _flush(self) -> bool:
        """
        Write what the protocol wrote, as far as the socket takes it.

        @return: whether everything was written.
        """
        pending = self._pending
        tls = self._tls
        assert tls is not None
        while pending:
            data = pending[0]
            try:
                sent = tls.send(data)
            except _WantWrite:
                self._startWriting()
                return False
            except _WantRead:
                return False
            except _SysCallError:
                self._close(lostWithoutCloseNotify())
                return False
            except _Error as e:
                self._close(failureFromOpenSSL(e), drain=True)
                return False
            if sent < len(data):
                pending[0] = memoryview(data)[sent:]
            else:
                del pending[0]
        return True

    def _shutdown(self) -> None:
        """
        Send close_notify; the close timeout starts with it (see
        L{tlsreply.connection.registry.ServerConnections.handshakeCompleted}).
        """
        tls = self._tls
        assert tls is not None
        try:
            done = tls.shutdown()
        except _WantWrite:
            self._startWriting()
            return
        except _WantRead:
            return
        except _SysCallError:
            self._close(lostWithoutCloseNotify())
            return
        except _Error as e:
            self._close(failureFromOpenSSL(e), drain=True)
            return
        self._shutdownSent = True
        if done:
            # The client's close_notify had already arrived.
            self._close(_DONE)

    def _discardInput(self) -> None:
        """
        Read and discard until the client's close_notify (a clean close)
        or the end of TCP.
        """
        tls = self._tls
        assert tls is not None
        protocol = self.protocol
        while True:
            try:
                data = tls.recv(65536)
            except _WantRead:
                return
            except _ZeroReturn:
                self._close(_DONE)
                return
            except _WantWrite:
                self._startWriting()
                return
            except _SysCallError:
                self._close(lostWithoutCloseNotify())
                return
            except _Error as e:
                self._close(failureFromOpenSSL(e), drain=True)
                return
            protocol.dataReceived(data)
            if self._closed:
                return

    def _startWriting(self) -> None:
        if not self._writing and not self._closed:
            self._writing = True
            self._port.readiness.setWriting(self, True)

    def _stopWriting(self) -> None:
        if self._writing:
            self._writing = False
            self._port.readiness.setWriting(self, False)

    def _close(self, reason: Failure, drain: bool = False, linger: bool = False) -> None:
        """
        Close the socket and report the connection, once.

        @param drain: first read and discard what the client sent that
            OpenSSL did not read (after an abort): closing a socket with
            unread bytes makes the kernel answer with a reset, which can
            destroy a reply still in flight.
        @param linger: report now, but leave the socket to a
            L{LingeringSocket} until the client closes (after a failed
            handshake, so that the client reads the alert).
        """
        if self._closed:
            return
        self._closed = True
        self._writing = False
        port = self._port
        lingering = None
        if linger:
            lingering = self._lingering = LingeringSocket(port, self._socket, self)
        else:
            port.readiness.forget(self)
            if drain:
                drainSocket(self._socket, port.peekBuffer)
            self._socket.close()
        self._pending = []
        protocol = self.protocol
        try:
            protocol.connectionLost(reason)
        finally:
            if lingering is None or lingering.closed:
                port.connections.closed(self)
            # Break the cycle with the protocol, so that both are freed at
            # once rather than by the cyclic garbage collector.
            self._tls = protocol.transport = None


__all__ = ["TLSSocketConnection"]

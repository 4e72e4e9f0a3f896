# -*- test-case-name: tests.test_failedhandshakes,tests.test_hostile -*-
"""
The end of a connection on tlsreply's own ports (L{tlsreply.transport.tlssocket})
once nothing more will be sent on it: its socket is read from, and what
arrives discarded, before it is closed.

A socket closed while its peer's bytes are still unread, or still on their
way, answers them with a TCP reset, and a reset destroys whatever the peer
had not read yet: the reply, or the alert that says why a handshake
failed. Java's JSSE, for one, sends the rest of its TLS 1.2 flight one
record at a time after a ClientHello the server has already refused;
without a pause it gets "Broken pipe" instead of the alert.

After a reply the connection itself reads until the client's close_notify
(the close timeout bounds the wait). After a failed handshake, when there
is no TLS left to read with, a L{LingeringSocket} takes the socket over.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Final

from twisted.python.failure import Failure

if TYPE_CHECKING:
    from tlsreply.transport.tlssocket import AcceptingPort, TLSSocketConnection

#: Reads per readiness event (and per drain before a close): a client
#: that keeps sending does not hold the reactor longer than this.
READS_PER_EVENT: Final = 8


def drainSocket(sock: socket.socket, buffer: bytearray) -> None:
    """
    Read and discard what has arrived on a socket about to be closed, up
    to a bound (a client that keeps sending gets the reset).
    """
    for _ in range(READS_PER_EVENT):
        try:
            if not sock.recv_into(buffer):
                return
        except OSError:
            return


class LingeringSocket:
    """
    The socket of a connection whose handshake failed, after the alert:
    the server's side of TCP is ended (the client reads the alert, then the
    end of stream), and whatever the client still sends is read and
    discarded until it closes, or the close timeout expires
    (L{ServerConnections.handshakeFailed
    <tlsreply.connection.registry.ServerConnections.handshakeFailed>}); then the
    socket is closed and the connection forgotten.

    The connection was already reported, with the handshake's own failure:
    this only delivers the alert.
    """

    __slots__ = ("_socket", "_fd", "_port", "_connection", "_closed")

    def __init__(
        self, port: AcceptingPort, sock: socket.socket, connection: TLSSocketConnection
    ) -> None:
        """
        Take over C{sock}, which the connection's readiness still watches.
        """
        self._socket = sock
        self._fd = sock.fileno()
        self._port = port
        self._connection = connection
        self._closed = False
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            # The client is gone already: nothing to deliver.
            port.readiness.forget(connection)
            self._closed = True
            sock.close()
            return
        port.connections.handshakeFailed(connection)
        port.readiness.handOver(connection, self)

    @property
    def closed(self) -> bool:
        """
        Whether the socket is closed (and the connection forgotten).
        """
        return self._closed

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return "tlsreply"

    def doRead(self) -> None:
        """
        Discard what arrived; close at the client's end of stream, or on an
        error.
        """
        buffer = self._port.peekBuffer
        for _ in range(READS_PER_EVENT):
            try:
                if not self._socket.recv_into(buffer):
                    break
            except BlockingIOError:
                return
            except OSError:
                break
        else:
            return
        self.close()

    def doWrite(self) -> None:
        """
        Nothing is written any more (the readiness watches for reading
        only).
        """

    def connectionLost(self, reason: Failure) -> None:
        self.close()

    def close(self) -> None:
        """
        Close the socket and forget the connection, once.
        """
        if self._closed:
            return
        self._closed = True
        self._port.readiness.forget(self)
        self._socket.close()
        self._port.connections.closed(self._connection)

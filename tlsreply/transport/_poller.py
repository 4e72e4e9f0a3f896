# -*- test-case-name: tests.test_poller,tests.test_wire -*-
"""
The readiness of tlsreply's own connections: one epoll instance, watched by
the reactor as one reader.

The reactor wraps every event it hands to a reader in a logging context
(C{callWithLogger}) and its own dispatch: some five microseconds an event,
at two or three events per connection, plus its bookkeeping and an
C{epoll_ctl} call to stop watching each connection. A L{ConnectionPoller}
is a reader the reactor watches like any other (its file descriptor is the
epoll instance's, readable while a connection is ready); when it is, the
poller collects every ready connection in one C{epoll_wait} and calls them
directly. Closing a socket takes it out of the epoll instance, so there is
nothing to undo per connection.

It is fair to the rest of the reactor: each turn handles at most
L{BATCH} events, and what is left keeps the poller readable for the next
turn. Where C{select.epoll} does not exist, L{ReactorReadiness} hands the
connections to the reactor itself.
"""

from __future__ import annotations

import select
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

#: Events handled per turn of the reactor.
BATCH = 256

_IN = getattr(select, "EPOLLIN", 0)
_OUT = getattr(select, "EPOLLOUT", 0)
#: Events after which a read tells what happened (data, end, error).
_READABLE = _IN | getattr(select, "EPOLLHUP", 0) | getattr(select, "EPOLLERR", 0)


class PolledConnection(Protocol):
    """
    What the poller calls: the reader and writer side of a connection.
    """

    def fileno(self) -> int: ...

    def doRead(self) -> object: ...

    def doWrite(self) -> object: ...

    def connectionLost(self, reason: Failure) -> None: ...


class Readiness(Protocol):
    """
    Watches connections for reading and writing.
    """

    def addReader(self, connection: PolledConnection) -> None:
        """
        Watch C{connection} for reading, from now until L{forget}.
        """

    def setWriting(self, connection: PolledConnection, writing: bool) -> None:
        """
        Also watch it for writing, or stop.
        """

    def forget(self, connection: PolledConnection) -> None:
        """
        Stop watching C{connection}, whose socket is closed right after.
        """

    def handOver(self, connection: PolledConnection, successor: PolledConnection) -> None:
        """
        Call C{successor} instead of C{connection}, on the same socket,
        from now on, and for reading only; also when C{connection} was not
        watched yet (it ended in the read right after its accept).
        """


@implementer(IReadDescriptor)
class ConnectionPoller:
    """
    An epoll instance of tlsreply's own, holding its connections, read by
    the reactor as one descriptor.
    """

    _log = Logger()

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._epoll = select.epoll()
        self._fileno = self._epoll.fileno()
        self._connections: dict[int, PolledConnection] = {}

    def __len__(self) -> int:
        return len(self._connections)

    # Readiness

    def addReader(self, connection: PolledConnection) -> None:
        fd = connection.fileno()
        self._epoll.register(fd, _IN)
        connections = self._connections
        if not connections:
            # Watched only while there are connections, so that an idle
            # server leaves nothing in the reactor (and a test's reactor
            # is clean once its connections are gone).
            self._reactor.addReader(self)
        connections[fd] = connection

    def setWriting(self, connection: PolledConnection, writing: bool) -> None:
        self._epoll.modify(connection.fileno(), _IN | _OUT if writing else _IN)

    def forget(self, connection: PolledConnection) -> None:
        # No epoll_ctl: closing the socket, which the caller does next,
        # takes it out of the epoll instance.
        connections = self._connections
        if connections.pop(connection.fileno(), None) is not None and not connections:
            self._reactor.removeReader(self)

    def handOver(self, connection: PolledConnection, successor: PolledConnection) -> None:
        fd = connection.fileno()
        if self._connections.get(fd) is connection:
            self._connections[fd] = successor
            self._epoll.modify(fd, _IN)
        else:
            self.addReader(successor)

    # IReadDescriptor: the reactor's side.

    def fileno(self) -> int:
        return self._fileno

    def logPrefix(self) -> str:
        return "tlsreply"

    def doRead(self) -> None:
        """
        Call every ready connection, up to L{BATCH} of them.
        """
        connections = self._connections
        for fd, events in self._epoll.poll(0, BATCH):
            connection = connections.get(fd)
            if connection is None:
                continue
            try:
                if events & _READABLE:
                    connection.doRead()
                if events & _OUT and connections.get(fd) is connection:
                    connection.doWrite()
            except Exception:
                # As the reactor does for a reader that raises: log it and
                # drop that connection, not the others.
                self._log.failure("unexpected error on a connection")
                connection.connectionLost(Failure())

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor is shutting down (or dropped the poller): every
        connection is lost with it.
        """
        connections = list(self._connections.values())
        self._connections.clear()
        for connection in connections:
            connection.connectionLost(Failure(ConnectionLost("the reactor stopped")))


class ReactorReadiness:
    """
    Readiness through the reactor itself, where there is no epoll.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def addReader(self, connection: PolledConnection) -> None:
        self._reactor.addReader(connection)

    def setWriting(self, connection: PolledConnection, writing: bool) -> None:
        if writing:
            self._reactor.addWriter(connection)
        else:
            self._reactor.removeWriter(connection)

    def forget(self, connection: PolledConnection) -> None:
        self._reactor.removeReader(connection)
        self._reactor.removeWriter(connection)

    def handOver(self, connection: PolledConnection, successor: PolledConnection) -> None:
        self.forget(connection)
        self._reactor.addReader(successor)


_pollers: WeakKeyDictionary[Any, Readiness] = WeakKeyDictionary()


def readinessFor(reactor: Any) -> Readiness:
    """
    The one L{Readiness} of a reactor's tlsreply connections (a reactor
    runs in one thread, and so does its poller).
    """
    readiness = _pollers.get(reactor)
    if readiness is None:
        if hasattr(select, "epoll"):
            readiness = ConnectionPoller(reactor)
        else:
            readiness = ReactorReadiness(reactor)
        _pollers[reactor] = readiness
    return readiness

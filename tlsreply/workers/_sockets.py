# -*- test-case-name: tests.test_workers,tests.test_unixpaths -*-
"""
The listening sockets of C{--workers N}: bound once in the parent, adopted
by each worker.

The same endpoint descriptions (C{tcp:}, C{unix:}, C{systemd:},
C{haproxy:}) are parsed twice, each time with a stand-in reactor. In the
parent, L{ListeningSockets} binds: one TCP socket per worker slot on the
same address (C{SO_REUSEPORT}: the kernel spreads connections over them and
wakes only the worker whose socket a connection landed on), and one Unix
or systemd socket shared by every slot. In a worker, L{AdoptingReactor}
hands each endpoint the next socket of its slot, served on the worker's
own reactor.

A Unix socket's path belongs to the parent, which bound it: a worker's port
adopted it and leaves it alone when it stops (a worker replaced on SIGHUP
must not take the path away from the new ones); the parent removes it when
it closes its sockets, at exit.

This is socket plumbing, apart from the supervision of worker processes
in L{tlsreply.workers.supervisor}: it does not know about forks or signals.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.abstract import isIPv6Address
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from tlsreply.errors import cannotListen
from tlsreply.transport.listening import ListeningReactor

_log = Logger(namespace="tlsreply.workers")


@implementer(IListeningPort)
@dataclass
class _BoundAddress:
    """
    Stands for the port an endpoint asked the parent for: the sockets are
    bound, and listened on by the workers.
    """

    address: Any

    def startListening(self) -> None:
        pass

    def stopListening(self) -> None:
        pass

    def getHost(self) -> Any:
        return self.address


def _address(sock: socket.socket) -> Any:
    """
    What a bound socket listens on, as the Twisted address an endpoint
    reports.
    """
    if sock.family == socket.AF_UNIX:
        return UNIXAddress(sock.getsockname() or None)
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        return IPv6Address("TCP", host, port)
    return IPv4Address("TCP", host, port)


@dataclass
class ListeningSockets:
    """
    Every listening socket of a server with workers, bound by the parent.

    @ivar slots: for each worker slot, its sockets, in the order the
        endpoints asked for them.
    @ivar addresses: what each endpoint listens on.
    @ivar paths: the Unix socket paths bound here, removed at L{close}.
    """

    workers: int
    slots: list[list[socket.socket]] = field(default_factory=list)
    addresses: list[Any] = field(default_factory=list)
    paths: list[str | bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.slots = [[] for _ in range(self.workers)]

    def listenTCP(
        self, port: int, factory: IProtocolFactory, backlog: int = 50, interface: str = ""
    ) -> IListeningPort:
        """
        Bind one socket per worker slot (C{SO_REUSEPORT}) to the address.
        """
        family = socket.AF_INET6 if isIPv6Address(interface) else socket.AF_INET
        bound: list[socket.socket] = []
        try:
            for _ in range(self.workers):
                sock = socket.socket(family, socket.SOCK_STREAM)
                bound.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((interface, port))
                port = sock.getsockname()[1]
                sock.listen(backlog)
                sock.setblocking(False)
        except OSError as e:
            for sock in bound:
                sock.close()
            raise CannotListenError(interface, port, e) from None
        for slot, sock in zip(self.slots, bound, strict=True):
            slot.append(sock)
        return self._bound(bound[0])

    def listenUNIX(
        self,
        address: str | bytes,
        factory: IProtocolFactory,
        backlog: int = 50,
        mode: int = 0o666,
        wantPID: int = 0,
    ) -> IListeningPort:
        """
        Bind one Unix socket, shared by every worker.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        inFilesystem = address[:1] not in ("\0", b"\0")  # not Linux's abstract
        try:
            sock.bind(address)
            if inFilesystem:
                self.paths.append(address)
                os.chmod(address, mode)
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            raise CannotListenError(None, address, e) from None
        return self._shared(sock)

    def adoptStreamPort(
        self, fileDescriptor: int, addressFamily: int, factory: IProtocolFactory
    ) -> IListeningPort:
        """
        A socket handed over (by systemd), shared by every worker.
        """
        sock = socket.socket(addressFamily, socket.SOCK_STREAM, fileno=os.dup(fileDescriptor))
        sock.setblocking(False)
        return self._shared(sock)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"{name}: with --workers, tlsreply listens on tcp:, unix:, systemd: "
            "and haproxy: addresses"
        )

    def _shared(self, sock: socket.socket) -> IListeningPort:
        for slot in self.slots:
            slot.append(sock)
        return self._bound(sock)

    def _bound(self, sock: socket.socket) -> IListeningPort:
        address = _address(sock)
        self.addresses.append(address)
        return _BoundAddress(address)

    def close(self) -> None:
        """
        Close every socket (the workers have their own copies), and remove
        the paths of the Unix sockets bound here: the parent made them, and
        is the last to close them.
        """
        for sock in {id(s): s for slot in self.slots for s in slot}.values():
            sock.close()
        for path in self.paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as e:
                _log.warn("cannot remove {path}: {error}", path=path, error=e.strerror)
        self.paths.clear()


def bindListeningSockets(
    workers: int, descriptions: Sequence[str], parse: Callable[[Any, str], Any]
) -> ListeningSockets:
    """
    Bind every listening socket for C{workers} worker slots, in the parent.

    @param parse: turns a listening address into an endpoint, given the
        reactor to make it with (L{tlsreply.service.parseListenAddress}).
    @raise ConfigurationError: if one cannot be bound (the others are
        closed).
    """
    sockets = ListeningSockets(workers)
    for description in descriptions:
        endpoint = parse(sockets, description)
        failures: list[Failure] = []
        endpoint.listen(_Placeholder()).addErrback(failures.append)
        if failures:
            sockets.close()
            raise cannotListen(description, failures[0].value)
    return sockets


class _Placeholder:
    """
    The factory the parent's endpoints listen with: nothing is accepted in
    the parent.
    """

    def doStart(self) -> None:
        pass

    def doStop(self) -> None:
        pass


class AdoptingReactor:
    """
    A worker's reactor as its endpoints see it: each listening call adopts
    the next socket of the worker's slot.
    """

    def __init__(self, reactor: Any, sockets: Sequence[socket.socket]) -> None:
        self._reactor = reactor
        self._sockets = list(sockets)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def _adopt(self, factory: IProtocolFactory) -> IListeningPort:
        """
        Serve the next socket of the slot with tlsreply's ports, as a
        single process would serve a socket from systemd: its own for a
        tlsreply server, Twisted's serving their queue for C{haproxy:}; a
        Unix one leaves the parent's path alone when it stops.
        """
        sock = self._sockets.pop(0)
        port = ListeningReactor(self._reactor).adoptStreamPort(sock.fileno(), sock.family, factory)
        # The port holds a copy of the descriptor.
        sock.close()
        return port

    def listenTCP(self, port: int, factory: IProtocolFactory, *args: Any, **kwargs: Any) -> IListeningPort:
        return self._adopt(factory)

    def listenUNIX(self, address: Any, factory: IProtocolFactory, *args: Any, **kwargs: Any) -> IListeningPort:
        return self._adopt(factory)

    def adoptStreamPort(self, fd: int, family: int, factory: IProtocolFactory) -> IListeningPort:
        return self._adopt(factory)

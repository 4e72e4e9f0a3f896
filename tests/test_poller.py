"""
L{tlsreply.transport._poller}: the connections' own epoll instance, read by the
reactor as one descriptor. Real sockets (socket pairs), a recording
stand-in for the reactor.
"""

from __future__ import annotations

import select
import socket

from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tlsreply.transport._poller import ConnectionPoller, ReactorReadiness, readinessFor


class RecordingReactor:
    """
    Records the readers and writers it is given, as a reactor keeps them.
    """

    def __init__(self) -> None:
        self.readers: list[object] = []
        self.writers: list[object] = []

    def addReader(self, reader: object) -> None:
        self.readers.append(reader)

    def removeReader(self, reader: object) -> None:
        self.readers.remove(reader)

    def addWriter(self, writer: object) -> None:
        self.writers.append(writer)

    def removeWriter(self, writer: object) -> None:
        if writer in self.writers:
            self.writers.remove(writer)


class Connection:
    """
    One end of a socket pair, recording what the poller calls.
    """

    def __init__(self, testCase: SynchronousTestCase, fail: bool = False) -> None:
        self.socket, self.peer = socket.socketpair()
        testCase.addCleanup(self.peer.close)
        testCase.addCleanup(self.socket.close)
        self.calls: list[str] = []
        self.fail = fail

    def fileno(self) -> int:
        return self.socket.fileno()

    def doRead(self) -> None:
        self.calls.append("read")
        if self.fail:
            raise RuntimeError("a bug in one connection")
        self.socket.recv(100)

    def doWrite(self) -> None:
        self.calls.append("write")

    def connectionLost(self, reason: Failure) -> None:
        self.calls.append("lost")


class Successor(Connection):
    """
    What takes a connection's socket over (as a L{LingeringSocket
    <tlsreply.transport._lingering.LingeringSocket>} does).
    """

    def __init__(self, connection: Connection) -> None:
        self.socket, self.peer = connection.socket, connection.peer
        self.calls = []
        self.fail = False


class ConnectionPollerTests(SynchronousTestCase):
    """
    The poller calls ready connections directly, is watched by the reactor
    only while it holds connections, and loses them all with the reactor.
    """

    def setUp(self) -> None:
        if not hasattr(select, "epoll"):
            raise self.skipTest("no epoll on this system")
        self.reactor = RecordingReactor()
        self.poller = ConnectionPoller(self.reactor)

    def test_readyConnectionsAreCalled(self) -> None:
        """
        Of the connections registered, those with bytes to read are called;
        the reactor watches the poller once, however many there are.
        """
        quiet, busy = Connection(self), Connection(self)
        self.poller.addReader(quiet)
        self.poller.addReader(busy)
        self.assertEqual(self.reactor.readers, [self.poller])
        busy.peer.send(b"x")
        self.poller.doRead()
        self.assertEqual((quiet.calls, busy.calls), ([], ["read"]))

    def test_writing(self) -> None:
        """
        A connection that waits to write is called when it can, until it
        stops waiting.
        """
        connection = Connection(self)
        self.poller.addReader(connection)
        self.poller.setWriting(connection, True)
        self.poller.doRead()
        self.assertEqual(connection.calls, ["write"])
        self.poller.setWriting(connection, False)
        self.poller.doRead()
        self.assertEqual(connection.calls, ["write"])

    def test_forgottenAndClosedConnectionsLeave(self) -> None:
        """
        A forgotten connection is not called again; when the last one is
        gone the reactor no longer watches the poller, and the next one
        brings it back.
        """
        connection = Connection(self)
        self.poller.addReader(connection)
        connection.peer.send(b"x")
        self.poller.forget(connection)
        connection.socket.close()
        self.poller.doRead()
        self.assertEqual(connection.calls, [])
        self.assertEqual(self.reactor.readers, [])
        self.assertEqual(len(self.poller), 0)
        again = Connection(self)
        self.poller.addReader(again)
        self.assertEqual(self.reactor.readers, [self.poller])

    def test_aFaultyConnectionIsDroppedAlone(self) -> None:
        """
        A connection whose handler raises is logged and lost; the others
        are still served in the same turn.
        """
        faulty, healthy = Connection(self, fail=True), Connection(self)
        for each in (faulty, healthy):
            self.poller.addReader(each)
            each.peer.send(b"x")
        self.poller.doRead()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual((faulty.calls, healthy.calls), (["read", "lost"], ["read"]))

    def test_reactorShutdownLosesEveryConnection(self) -> None:
        """
        When the reactor drops the poller (it is shutting down), every
        connection is told it is lost.
        """
        connections = [Connection(self) for _ in range(3)]
        for each in connections:
            self.poller.addReader(each)
        self.poller.connectionLost(Failure(Exception("stopping")))
        self.assertEqual([c.calls for c in connections], [["lost"]] * 3)
        self.assertEqual(len(self.poller), 0)

    def test_handOver(self) -> None:
        """
        A connection handed over is not called again; its successor, on the
        same socket, is called to read, and not to write even though the
        connection was waiting to.
        """
        connection = Connection(self)
        self.poller.addReader(connection)
        self.poller.setWriting(connection, True)
        successor = Successor(connection)
        self.poller.handOver(connection, successor)
        connection.peer.send(b"x")
        self.poller.doRead()
        self.assertEqual((connection.calls, successor.calls), ([], ["read"]))
        self.assertEqual(len(self.poller), 1)

    def test_handOverBeforeWatched(self) -> None:
        """
        A connection that ends in the read right after its accept, before
        it is watched, can be handed over too: its successor is watched.
        """
        connection = Connection(self)
        successor = Successor(connection)
        self.poller.handOver(connection, successor)
        self.assertEqual(self.reactor.readers, [self.poller])
        connection.peer.send(b"x")
        self.poller.doRead()
        self.assertEqual(successor.calls, ["read"])

    def test_onePollerPerReactor(self) -> None:
        """
        Every port on a reactor shares its poller.
        """
        self.assertIs(readinessFor(self.reactor), readinessFor(self.reactor))
        self.assertIsNot(readinessFor(self.reactor), readinessFor(RecordingReactor()))


class ReactorReadinessTests(SynchronousTestCase):
    """
    Without epoll the reactor itself watches each connection.
    """

    def test_handsConnectionsToTheReactor(self) -> None:
        """
        Reading, writing and forgetting are the reactor's own calls.
        """
        reactor = RecordingReactor()
        readiness = ReactorReadiness(reactor)
        connection = Connection(self)
        readiness.addReader(connection)
        readiness.setWriting(connection, True)
        self.assertEqual((reactor.readers, reactor.writers), ([connection], [connection]))
        readiness.setWriting(connection, False)
        readiness.forget(connection)
        self.assertEqual((reactor.readers, reactor.writers), ([], []))

    def test_handOver(self) -> None:
        """
        Handing a connection over is the reactor's own calls too: the
        connection leaves, its successor reads.
        """
        reactor = RecordingReactor()
        readiness = ReactorReadiness(reactor)
        connection = Connection(self)
        readiness.addReader(connection)
        readiness.setWriting(connection, True)
        successor = Successor(connection)
        readiness.handOver(connection, successor)
        self.assertEqual((reactor.readers, reactor.writers), ([successor], []))

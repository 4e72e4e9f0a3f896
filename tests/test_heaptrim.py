"""
The heap given back after a burst of handshakes
(L{tlsreply.connection._heaptrim}): once, when the burst has drained, at
most once a second, never for a small or steady load, and not at all
where the C library is not glibc.
"""

from __future__ import annotations

import ctypes.util
import socket
from collections.abc import Callable
from typing import TypeVar, cast

from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater
from twisted.logger import LogEvent
from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    LOOPBACK,
    WireTestCase,
    captureLogEvents,
    clientContext,
    inThread,
    makeCertificates,
    onMemoryBIO,
    startServer,
    temporaryDirectory,
    waitUntilAccepted,
)
from tests.test_plugin import SCRIPTS, Daemon
from tlsreply.connection import _heaptrim
from tlsreply.connection._heaptrim import GlibcHeap, HeapTrim, glibcHeap
from tlsreply.connection.registry import AcceptedConnection, ServerConnections


class FakeHeap(GlibcHeap):
    """
    A heap that counts its trims instead of making them.
    """

    def __init__(self) -> None:
        self.trimmedAt: list[float] = []
        self.clock: Clock | None = None

    def freeBytes(self) -> int | None:
        return 1000

    def trim(self) -> None:
        assert self.clock is not None
        self.trimmedAt.append(self.clock.seconds())


def trimmer(burst: int = 64) -> tuple[HeapTrim, FakeHeap, Clock]:
    clock = Clock()
    heap = FakeHeap()
    heap.clock = clock
    return HeapTrim(clock, heap, burst=burst, interval=1.0), heap, clock


def burst(trim: HeapTrim, count: int) -> None:
    """
    C{count} handshakes start at once, then all end.
    """
    connections = [object() for _ in range(count)]
    for connection in connections:
        trim.handshakeStarted(connection)
    for connection in connections:
        trim.handshakeEnded(connection)


class HeapTrimTests(SynchronousTestCase):
    """
    When L{HeapTrim} trims, on a fake clock and a heap that counts.
    """

    def test_afterBurstDrains(self) -> None:
        """
        Once a burst's handshakes have all ended, the heap is trimmed once,
        in a reactor turn of its own (not inside the last handshake's
        callback), and a debug event says so.
        """
        events = captureLogEvents(self)
        trim, heap, clock = trimmer()
        burst(trim, 64)
        self.assertEqual(heap.trimmedAt, [])
        clock.advance(0)
        self.assertEqual(heap.trimmedAt, [0.0])
        self.assertEqual(trim.trims, 1)
        [event] = [e for e in events if e.get("heapTrimmed")]
        self.assertEqual(event["handshakes"], 64)
        self.assertEqual(event["heldFree"], 1000)
        clock.advance(10)
        self.assertEqual(heap.trimmedAt, [0.0])

    def test_notWhileHandshakesInProgress(self) -> None:
        """
        While a single handshake of the burst is still in progress, no trim.
        """
        trim, heap, clock = trimmer()
        connections = [object() for _ in range(100)]
        for connection in connections:
            trim.handshakeStarted(connection)
        for connection in connections[:-1]:
            trim.handshakeEnded(connection)
        clock.advance(5)
        self.assertEqual(heap.trimmedAt, [])
        trim.handshakeEnded(connections[-1])
        clock.advance(0)
        self.assertEqual(heap.trimmedAt, [5.0])

    def test_smallLoads(self) -> None:
        """
        Fewer handshakes at once than a burst never trim, however many run
        one after the other.
        """
        trim, heap, clock = trimmer()
        burst(trim, 63)
        for _ in range(1000):
            burst(trim, 1)
            clock.advance(0.01)
        self.assertEqual(heap.trimmedAt, [])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_atMostOnceASecond(self) -> None:
        """
        A second burst that drains within a second of the last trim is
        trimmed a second after it, once, however many bursts end meanwhile.
        """
        trim, heap, clock = trimmer()
        burst(trim, 100)
        clock.advance(0)
        clock.advance(0.25)
        burst(trim, 100)
        clock.advance(0.25)
        burst(trim, 100)
        clock.advance(0.25)
        self.assertEqual(heap.trimmedAt, [0.0])
        clock.advance(0.25)
        self.assertEqual(heap.trimmedAt, [0.0, 1.0])
        clock.advance(5)
        self.assertEqual(heap.trimmedAt, [0.0, 1.0])

    def test_newBurstBeforeTheTrim(self) -> None:
        """
        If handshakes are in progress again when the trim's turn comes, it
        waits for them to end.
        """
        trim, heap, clock = trimmer()
        burst(trim, 100)
        clock.advance(0)
        burst(trim, 100)
        late = object()
        clock.advance(0.5)
        trim.handshakeStarted(late)
        clock.advance(0.5)
        self.assertEqual(heap.trimmedAt, [0.0])
        trim.handshakeEnded(late)
        clock.advance(0)
        self.assertEqual(heap.trimmedAt, [0.0, 1.0])

    def test_endedTwice(self) -> None:
        """
        A connection whose handshake ended and which then closes counts
        once: the count does not fall to none while others are in progress.
        """
        trim, heap, clock = trimmer(burst=2)
        first, second = object(), object()
        trim.handshakeStarted(first)
        trim.handshakeStarted(second)
        trim.handshakeEnded(first)
        trim.handshakeEnded(first)
        clock.advance(0)
        self.assertEqual(heap.trimmedAt, [])
        trim.handshakeEnded(second)
        clock.advance(0)
        self.assertEqual(heap.trimmedAt, [0.0])

    def test_stop(self) -> None:
        """
        L{HeapTrim.stop} cancels a trim not run yet.
        """
        trim, heap, clock = trimmer()
        burst(trim, 100)
        trim.stop()
        clock.advance(5)
        self.assertEqual(heap.trimmedAt, [])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_withoutGlibc(self) -> None:
        """
        Without glibc there is no heap to trim: a burst schedules nothing.
        """
        clock = Clock()
        trim = HeapTrim(clock, None)
        burst(trim, 1000)
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(trim.trims, 0)

    def test_noCLibrary(self) -> None:
        """
        Where no C library is found, or it cannot be loaded, there is no
        heap to trim.
        """
        self.patch(ctypes.util, "find_library", lambda name: None)
        self.assertIsNone(_heaptrim._glibc())
        self.patch(ctypes.util, "find_library", lambda name: "libnone-such.so.0")
        self.assertIsNone(_heaptrim._glibc())

    def test_glibc(self) -> None:
        """
        On glibc the heap is found, says how much of it is free, and trims.
        """
        heap = glibcHeap()
        if heap is None:
            raise self.skipTest("the C library is not glibc")
        free = heap.freeBytes()
        self.assertTrue(free is None or free >= 0)
        heap.trim()
        resident = _heaptrim.residentBytes()
        self.assertTrue(resident is None or resident > 0)


class RegistryTests(SynchronousTestCase):
    """
    L{ServerConnections} tells its L{HeapTrim} of every handshake's start
    and end, however it ends.
    """

    def test_handshakesEnding(self) -> None:
        """
        Handshakes that complete, fail, or whose connection closes during
        the handshake all count as ended; the trim follows the last one.
        """
        trim, heap, clock = trimmer(burst=3)
        connections = ServerConnections(clock, 10, 10, heapTrim=trim)
        completed, failed, closed = (fakeConnection() for _ in range(3))
        for connection in (completed, failed, closed):
            connections.opened(connection)
        connections.handshakeCompleted(completed)
        connections.handshakeFailed(failed)
        clock.advance(0)
        self.assertEqual(heap.trimmedAt, [])
        connections.closed(closed)
        clock.advance(0)
        self.assertEqual(heap.trimmedAt, [0.0])

    def test_withoutHandshakeTimeout(self) -> None:
        """
        The count does not depend on the handshake timeout being on.
        """
        trim, heap, clock = trimmer(burst=2)
        connections = ServerConnections(clock, 0, 0, heapTrim=trim)
        first, second = fakeConnection(), fakeConnection()
        connections.opened(first)
        connections.opened(second)
        connections.closed(first)
        connections.closed(second)
        clock.advance(0)
        self.assertEqual(heap.trimmedAt, [0.0])


def fakeConnection() -> AcceptedConnection:
    """
    Just enough of a connection for the registry to count.
    """
    return cast(AcceptedConnection, object())


def handshakeAll(port: int, caPath: str, clients: list[socket.socket]) -> int:
    """
    Complete the handshake on each already-connected client in turn, read
    the reply, and close; return how many replies were right.
    """
    context = clientContext(caPath)
    right = 0
    for raw in clients:
        raw.settimeout(10)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
            right += b"".join(chunks) == b"test\n"
    return right


class BurstWireTests(WireTestCase):
    """
    A real server, 300 clients connected at once over loopback, then their
    handshakes: once the last has ended, the server trims its heap.
    """

    async def test_burstTrimmed(self) -> None:
        """
        300 connections accepted at once (each a handshake in progress),
        then served: the server logs its trim once they have all ended.
        """
        if glibcHeap() is None:
            raise self.skipTest("the C library is not glibc")
        server = await startServer(self)
        connections = server.service.connections
        count = 300

        def connectAll() -> list[socket.socket]:
            return [
                socket.create_connection((LOOPBACK, server.port), timeout=10)
                for _ in range(count)
            ]

        clients: list[socket.socket] = await inThread(connectAll)
        for client in clients:
            self.addCleanup(client.close)
        await waitFor(lambda: connections.inProgress >= count)
        right = await inThread(handshakeAll, server.port, server.caPath, clients)
        self.assertEqual(right, count)
        trimmed = await waitFor(lambda: trimEvents(server.events))
        [event] = trimmed
        self.assertGreaterEqual(event["handshakes"], count)


BurstWireTestsOnMemoryBIO = onMemoryBIO(BurstWireTests)


class BurstDaemonTests(SynchronousTestCase):
    """
    The same as twistd runs tlsreply: its log says when it trimmed.
    """

    def test_twistdTrimsAfterBurst(self) -> None:
        """
        C{twistd -n tlsreply}, 300 clients connected at once and then
        served one by one: once the last handshake has ended, one log line
        says the heap was trimmed after 300 handshakes at once.
        """
        if glibcHeap() is None:
            raise self.skipTest("the C library is not glibc")
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory)
        daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
             "--port", f"tcp:0:interface={LOOPBACK}",
             "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath),
             "--handshake-timeout", "60", "--access-log", "off"],
            directory,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        port = int(daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\]").group(1))
        clients = [socket.create_connection((LOOPBACK, port), timeout=10) for _ in range(300)]
        for client in clients:
            self.addCleanup(client.close)
        # The accept queue is first in, first out: the last accepted, all are.
        waitUntilAccepted(clients[-1], timeout=30)
        self.assertEqual(handshakeAll(port, str(certificates.caPath), clients), 300)
        trimmed = daemon.waitFor(r"heap trimmed after (\d+) handshakes at once")
        self.assertEqual(trimmed.group(1), "300")
        self.assertEqual(daemon.stop(), 0)
        log = "".join(daemon.output)
        self.assertEqual(log.count("heap trimmed"), 1)
        self.assertNotIn("Traceback", log)


def trimEvents(events: list[LogEvent]) -> list[LogEvent]:
    return [e for e in events if e.get("heapTrimmed")]


T = TypeVar("T")


async def waitFor(condition: Callable[[], T], timeout: float = 20.0) -> T:
    """
    Poll C{condition} on the reactor until it is true; fail after
    C{timeout} seconds.
    """
    waited = 0.0
    while not (result := condition()):
        if waited > timeout:
            raise AssertionError(f"not true after {timeout}s")
        await deferLater(reactor, 0.02, lambda: None)
        waited += 0.02
    return result

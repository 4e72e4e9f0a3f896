"""
Hostile and broken clients against a real tlsreply server on 127.0.0.1.

Each test sends one kind of bad input (garbage, plain text, an SSLv2 hello, a
truncated or oversized record, resets, half-closes, a burst, idle
connections) and then checks what an operator relies on: the server keeps
serving (a normal client is answered within seconds, both while the bad
connection is open and after it), logs exactly one event per connection and
no traceback, and holds no more descriptors than before once it has dropped
every connection.
"""

from __future__ import annotations

import os
import resource
import selectors
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import provider

from tests.support import (
    LOOPBACK,
    RunningServer,
    WireTestCase,
    clientContext,
    inThread,
    onMemoryBIO,
    startServer,
)
from tlsreply.protocol import describeFailure
from tlsreply.testing.badclients import (
    OVERSIZED_RECORD_HEADER,
    PLAIN_HTTP,
    clientHello,
    randomBytes,
    readUntilClosed,
    resetClose,
    sslv2ClientHello,
)

REPLY = b"test\n"
# A normal client must be answered within this many seconds: typically a
# few milliseconds; the margin is for a loaded 2-core CI machine, and still
# well below the 10 s handshake timeout that a server blocked by the bad
# connection would make a probe wait.
SERVED_WITHIN = 3.0
# Upper bound for every wait: for the server to close a bad connection, to
# log, to drop its connections.
SETTLE_TIMEOUT = 10.0
DESCRIPTOR_DIRECTORY = "/proc/self/fd"
# What the log says when TCP ends (a FIN or a reset) without close_notify:
# Twisted's TLS layer reports both the same way.
CONNECTION_LOST = describeFailure(Failure(ConnectionLost()))


def openDescriptors() -> int:
    """
    How many descriptors this process has open.
    """
    return len(os.listdir(DESCRIPTOR_DIRECTORY))


def raiseDescriptorLimit(testCase: TestCase) -> None:
    """
    Raise this process's soft C{RLIMIT_NOFILE} to the hard limit for the
    test, and restore it afterwards.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    testCase.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))


def connect(port: int) -> socket.socket:
    """
    A plain TCP connection to the server, with a bounded timeout for every
    operation.
    """
    return socket.create_connection((LOOPBACK, port), timeout=SETTLE_TIMEOUT)


def peerName(sock: socket.socket) -> str:
    """
    A client socket's address as the server logs it: C{127.0.0.1:PORT}.
    """
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def fetchReply(port: int, context: ssl.SSLContext) -> tuple[str, bytes]:
    """
    L{tests.support.fetchWithSSL}'s client (Python C{ssl}, read until
    close_notify, ragged EOFs not suppressed) that also says which address
    it connected from, so that its log event can be told from a hostile
    client's even when the kernel hands the same port to a later
    connection.

    @return: the client's address as the server logs it, and the reply.
    """
    with connect(port) as raw:
        peer = peerName(raw)
        with context.wrap_socket(
            raw, server_hostname="localhost", suppress_ragged_eofs=False
        ) as tls:
            received = b""
            while chunk := tls.recv(65536):
                received += chunk
    return peer, received


class Probe:
    """
    A normal client that checks the server still answers, timed with
    C{time.monotonic} from connect to the server's close_notify.

    @ivar durations: seconds each probe took, in order.
    @ivar peers: each probe's address as the server logs it, in order.
    """

    def __init__(self, server: RunningServer) -> None:
        self.port = server.port
        self.context = clientContext(server.caPath)
        self.durations: list[float] = []
        self.peers: list[str] = []

    def __call__(self) -> None:
        """
        Fetch the reply once; raise if it is wrong.
        """
        started = time.monotonic()
        peer, received = fetchReply(self.port, self.context)
        self.durations.append(time.monotonic() - started)
        self.peers.append(peer)
        if received != REPLY:
            raise AssertionError(f"normal client got {received!r}")


@dataclass
class HostileRun:
    """
    What a hostile client did: its connections' addresses as the server
    logs them, so that their log events can be told from the probes'.
    """

    peers: list[str] = field(default_factory=list)


# A hostile client: gets the server's port and a probe to run while its
# connection is open; returns its connections' peers once every socket it
# opened is closed.
Hostile = Callable[[int, Probe], HostileRun]


def waitForConnectionEvents(
    server: RunningServer, count: int, timeout: float = SETTLE_TIMEOUT
) -> Deferred[None]:
    """
    Fire once the server has logged C{count} connection events; fail with
    C{TimeoutError} after C{timeout} seconds.
    """
    reached: Deferred[None] = Deferred()

    def check() -> None:
        if not reached.called and len(server.connectionEvents()) >= count:
            reached.callback(None)

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        if "outcome" in event:
            # Not from inside the observer: the protocol is mid-connectionLost.
            reactor.callLater(0, check)

    globalLogPublisher.addObserver(observe)

    def stopObserving(result: object) -> object:
        globalLogPublisher.removeObserver(observe)
        return result

    reached.addTimeout(timeout, reactor)
    reached.addBoth(stopObserving)
    check()
    return reached


class HostileClientTestCase(WireTestCase):
    """
    Runs one hostile client against a fresh server and checks that the
    server survives it.
    """

    def setUp(self) -> None:
        if not os.path.isdir(DESCRIPTOR_DIRECTORY):
            self.skipTest(f"counting descriptors needs {DESCRIPTOR_DIRECTORY}")

    async def survive(
        self,
        hostile: Hostile,
        outcome: str = "handshake-failed",
        **serverArguments: Any,
    ) -> list[LogEvent]:
        """
        Start a server, warm it up with one normal client, then run
        C{hostile} (which runs a probe while its connection is open) and
        one more probe after it.

        Check that every probe was answered within L{SERVED_WITHIN}
        seconds; that each hostile connection has exactly one log event,
        with C{outcome}, naming its peer (and, for a failed handshake, a
        reason); that no event carries a failure; and that once the server
        has logged every connection and dropped it, this process has as
        many descriptors open as before the hostile client.

        @return: the hostile connections' log events.
        """
        server = await startServer(self, **serverArguments)
        probe = Probe(server)
        # Warm-up: whatever the first connection opens lazily is open now.
        await inThread(probe)
        await waitForConnectionEvents(server, 1)
        await server.service.connections.whenIdle().addTimeout(SETTLE_TIMEOUT, reactor)
        warmUps = len(probe.durations)
        eventsBefore = len(server.connectionEvents())
        descriptorsBefore = openDescriptors()

        run: HostileRun = await inThread(hostile, server.port, probe)
        await inThread(probe)

        probePeers = probe.peers[warmUps:]
        await waitForConnectionEvents(
            server, eventsBefore + len(run.peers) + len(probePeers)
        )
        await server.service.connections.whenIdle().addTimeout(SETTLE_TIMEOUT, reactor)
        self.assertEqual(openDescriptors(), descriptorsBefore)

        timed = probe.durations[warmUps:]
        self.assertGreaterEqual(len(timed), 1)
        self.assertEqual(
            [d for d in timed if d >= SERVED_WITHIN], [], f"probes took {timed}"
        )
        self.assertEqual([e for e in server.events if "log_failure" in e], [])

        # One event per connection. The kernel may hand a port to a later
        # connection, so match peers as a multiset, probes first.
        events = server.connectionEvents()[eventsBefore:]
        self.assertEqual(
            Counter(e["peer"] for e in events), Counter(run.peers + probePeers)
        )
        hostileEvents = list(events)
        for peer in probePeers:
            matches = [
                e
                for e in hostileEvents
                if e["peer"] == peer and e["outcome"] == "replied"
            ]
            self.assertTrue(matches, f"no 'replied' event for the probe from {peer}")
            hostileEvents.remove(matches[0])
        for event in hostileEvents:
            self.assertEqual(event["outcome"], outcome, event)
            if outcome == "handshake-failed":
                self.assertIsInstance(event["reason"], str)
                self.assertTrue(event["reason"], event)
        return hostileEvents


class GarbageTests(HostileClientTestCase):
    """
    Bytes that are not a TLS handshake at all.
    """

    async def test_randomBytes(self) -> None:
        """
        Random bytes (a few fixed seeds) fail the handshake with OpenSSL's
        reason, and the server closes each connection by itself.
        """

        def garbage(port: int, probe: Probe) -> HostileRun:
            run = HostileRun()
            for seed in range(5):
                with connect(port) as sock:
                    run.peers.append(peerName(sock))
                    sock.sendall(randomBytes(seed, 4096))
                    probe()
                    readUntilClosed(sock, SETTLE_TIMEOUT)
            return run

        events = await self.survive(garbage)
        self.assertEqual(len(events), 5)
        for event in events:
            self.assertIn("wrong version number", event["reason"])

    async def test_plainTextHTTP(self) -> None:
        """
        A plain-text HTTP request is refused with "http request" and the
        connection closed.
        """

        def plainHTTP(port: int, probe: Probe) -> HostileRun:
            with connect(port) as sock:
                sock.sendall(PLAIN_HTTP)
                probe()
                readUntilClosed(sock, SETTLE_TIMEOUT)
                return HostileRun([peerName(sock)])

        [event] = await self.survive(plainHTTP)
        self.assertIn("http request", event["reason"])

    async def test_sslv2ClientHello(self) -> None:
        """
        An SSLv2-format ClientHello (2-byte header, SSLv2 cipher specs) is
        refused; so is the SSLv2-compatible form announcing TLS 1.2.
        """

        def sslv2(port: int, probe: Probe) -> HostileRun:
            run = HostileRun()
            for version in (b"\x00\x02", b"\x03\x03"):
                with connect(port) as sock:
                    run.peers.append(peerName(sock))
                    sock.sendall(sslv2ClientHello(version))
                    probe()
                    readUntilClosed(sock, SETTLE_TIMEOUT)
            return run

        events = await self.survive(sslv2)
        self.assertEqual(len(events), 2)
        for event in events:
            self.assertIn("wrong version number", event["reason"])


class RecordTests(HostileClientTestCase):
    """
    TLS records that are cut short or too long.
    """

    async def test_truncatedClientHelloThenSilence(self) -> None:
        """
        Half a ClientHello followed by silence holds the connection only
        until the handshake timeout; meanwhile other clients are served.
        """

        def truncated(port: int, probe: Probe) -> HostileRun:
            hello = clientHello()
            with connect(port) as sock:
                sock.sendall(hello[: len(hello) // 2])
                sent = time.monotonic()
                probe()
                self.assertEqual(readUntilClosed(sock, SETTLE_TIMEOUT), b"")
                held = time.monotonic() - sent
                # Cut by the 1 s timer, not by anything else.
                self.assertGreater(held, 0.5)
                self.assertLess(held, 1.0 + SERVED_WITHIN)
                return HostileRun([peerName(sock)])

        [event] = await self.survive(truncated, handshakeTimeout=1)
        self.assertEqual(event["reason"], "handshake not completed within 1s")

    async def test_recordHeaderAnnouncing65535BytesThenSilence(self) -> None:
        """
        A record header announcing 0xFFFF bytes (more than any TLS record
        may hold) followed by silence is refused at once with a
        record_overflow alert, not held until a timeout.
        """

        def oversized(port: int, probe: Probe) -> HostileRun:
            with connect(port) as sock:
                sock.sendall(OVERSIZED_RECORD_HEADER)
                probe()
                alert = readUntilClosed(sock, SETTLE_TIMEOUT)
                # One alert record (type 21): fatal (2), record_overflow (22).
                self.assertEqual((alert[:1], alert[3:]), (b"\x15", b"\x00\x02\x02\x16"))
                return HostileRun([peerName(sock)])

        [event] = await self.survive(oversized, handshakeTimeout=5)
        self.assertIn("length too long", event["reason"])

    async def test_recordHeaderAnnouncing65535BytesThenClose(self) -> None:
        """
        A record header announcing 0xFFFF bytes followed at once by the
        client closing is one failed handshake.
        """

        def oversizedThenClose(port: int, probe: Probe) -> HostileRun:
            with connect(port) as sock:
                sock.sendall(OVERSIZED_RECORD_HEADER)
                sock.shutdown(socket.SHUT_WR)
                probe()
                readUntilClosed(sock, SETTLE_TIMEOUT)
                return HostileRun([peerName(sock)])

        await self.survive(oversizedThenClose)

    async def test_clientHelloInOneByteRecords(self) -> None:
        """
        A real client whose ClientHello is split into records of one byte
        each (legal, if odd: a handshake message may span records) gets the
        reply: whatever reads the hello reassembles it, and nothing else
        waits meanwhile.
        """

        def fragmentedHello(port: int, probe: Probe) -> HostileRun:
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = probe.context.wrap_bio(incoming, outgoing, server_hostname="localhost")
            with connect(port) as sock:
                run = HostileRun([peerName(sock)])
                try:
                    tls.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                hello = outgoing.read()
                header, handshake = hello[:3], hello[5:]
                sock.sendall(
                    b"".join(header + b"\x00\x01" + bytes([b]) for b in handshake)
                )
                probe()

                def exchange() -> None:
                    sock.sendall(outgoing.read())
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("server closed mid-handshake")
                    incoming.write(chunk)

                while True:
                    try:
                        tls.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        exchange()
                received = b""
                while True:
                    try:
                        data = tls.read(65536)
                    except ssl.SSLWantReadError:
                        exchange()
                        continue
                    if not data:  # close_notify
                        break
                    received += data
                self.assertEqual(received, REPLY)
                return run

        [event] = await self.survive(fragmentedHello, outcome="replied")
        self.assertEqual(event["serverName"], "localhost")


class ResetTests(HostileClientTestCase):
    """
    Clients that vanish with a TCP reset.
    """

    async def test_resetAfterClientHello(self) -> None:
        """
        A client that sends a full ClientHello, sees the server start to
        answer, then resets, is one failed handshake: connection lost.
        """

        def resetAfterHello(port: int, probe: Probe) -> HostileRun:
            sock = connect(port)
            run = HostileRun([peerName(sock)])
            try:
                sock.sendall(clientHello())
                # The ServerHello: the server has the connection in hand.
                self.assertEqual(sock.recv(1), b"\x16")
                probe()
            finally:
                resetClose(sock)
            return run

        [event] = await self.survive(resetAfterHello)
        self.assertEqual(event["reason"], CONNECTION_LOST)

    async def test_resetAfterHandshake(self) -> None:
        """
        A client that completes the handshake and resets before reading is
        logged once, as a completed handshake (the server did reply) whose
        connection was lost, not as a failed one.
        """

        def resetAfterHandshake(port: int, probe: Probe) -> HostileRun:
            sock = connect(port)
            run = HostileRun([peerName(sock)])
            try:
                tls = probe.context.wrap_socket(sock, server_hostname="localhost")
            except BaseException:
                resetClose(sock)
                raise
            try:
                probe()
            finally:
                resetClose(tls)
            return run

        [event] = await self.survive(resetAfterHandshake, outcome="replied")
        self.assertEqual(event["closed"], CONNECTION_LOST)


class HalfCloseTests(HostileClientTestCase):
    """
    Clients that shut down their sending side and keep reading.
    """

    async def test_halfCloseAfterConnecting(self) -> None:
        """
        A client that half-closes right after connecting is one failed
        handshake and its connection is closed.
        """

        def halfClose(port: int, probe: Probe) -> HostileRun:
            with connect(port) as sock:
                sock.shutdown(socket.SHUT_WR)
                probe()
                self.assertEqual(readUntilClosed(sock, SETTLE_TIMEOUT), b"")
                return HostileRun([peerName(sock)])

        [event] = await self.survive(halfClose)
        # Nothing was sent, so TLS never started: the plain TCP close.
        self.assertEqual(event["reason"], "peer closed the connection")

    async def test_halfCloseAfterClientHello(self) -> None:
        """
        A client that sends a ClientHello and half-closes is one failed
        handshake: the server cannot finish it, so it closes.
        """

        def halfCloseAfterHello(port: int, probe: Probe) -> HostileRun:
            with connect(port) as sock:
                sock.sendall(clientHello())
                sock.shutdown(socket.SHUT_WR)
                probe()
                readUntilClosed(sock, SETTLE_TIMEOUT)
                return HostileRun([peerName(sock)])

        [event] = await self.survive(halfCloseAfterHello)
        self.assertEqual(event["reason"], CONNECTION_LOST)


class LoadTests(HostileClientTestCase):
    """
    Many connections at once.
    """

    async def test_200ClientsAtOnce(self) -> None:
        """
        200 normal clients released together by a barrier all get the
        reply.
        """
        raiseDescriptorLimit(self)
        clients = 200

        def burst(port: int, probe: Probe) -> HostileRun:
            barrier = threading.Barrier(clients, timeout=SETTLE_TIMEOUT)

            def one(_: int) -> tuple[str, bytes]:
                barrier.wait()
                return fetchReply(port, probe.context)

            with ThreadPoolExecutor(max_workers=clients) as pool:
                results = list(pool.map(one, range(clients)))
            self.assertEqual([data for _, data in results], [REPLY] * clients)
            return HostileRun([peer for peer, _ in results])

        events = await self.survive(burst, outcome="replied")
        self.assertEqual(len(events), clients)

    async def test_manyIdleConnections(self) -> None:
        """
        300 connections that send nothing do not stop a normal client from
        being served, and the handshake timeout cuts every one of them.

        The listen backlog is raised for this test only: one thread
        connecting in a loop outpaces the server's accept loop, and with
        Twisted's default backlog of 50 the kernel would drop SYNs and hold
        some connects for a second (the client's SYN retransmission), so
        the first idle connections would time out before the last were
        open. That latency under bursts is what L{test_200ClientsAtOnce}
        covers, with the default backlog.
        """
        raiseDescriptorLimit(self)
        idle = 300

        def idleConnections(port: int, probe: Probe) -> HostileRun:
            sockets: list[socket.socket] = []
            try:
                for _ in range(idle):
                    sockets.append(connect(port))
                probe()
                run = HostileRun([peerName(sock) for sock in sockets])
                # Wait for the server to close each one.
                deadline = time.monotonic() + SETTLE_TIMEOUT
                with selectors.DefaultSelector() as selector:
                    for sock in sockets:
                        selector.register(sock, selectors.EVENT_READ)
                    open_ = len(sockets)
                    while open_ and time.monotonic() < deadline:
                        for key, _ in selector.select(deadline - time.monotonic()):
                            closed: socket.socket = key.fileobj  # type: ignore[assignment]
                            try:
                                data = closed.recv(1)
                            except ConnectionResetError:
                                data = b""
                            self.assertEqual(data, b"")
                            selector.unregister(closed)
                            open_ -= 1
                    self.assertEqual(open_, 0, "idle connections not closed")
                return run
            finally:
                for sock in sockets:
                    sock.close()

        events = await self.survive(
            idleConnections,
            handshakeTimeout=1,
            listen=f"tcp:0:interface={LOOPBACK}:backlog=1024",
        )
        self.assertEqual(len(events), idle)
        self.assertEqual(
            {e["reason"] for e in events}, {"handshake not completed within 1s"}
        )


# The same clients against TLS over memory BIOs (haproxy: and embedders' endpoints).
GarbageTestsOnMemoryBIO = onMemoryBIO(GarbageTests)
RecordTestsOnMemoryBIO = onMemoryBIO(RecordTests)
ResetTestsOnMemoryBIO = onMemoryBIO(ResetTests)
HalfCloseTestsOnMemoryBIO = onMemoryBIO(HalfCloseTests)
LoadTestsOnMemoryBIO = onMemoryBIO(LoadTests)

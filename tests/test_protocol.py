"""
L{ReplyProtocol} and L{ReplyFactory} over real OpenSSL on an in-memory
transport (L{twisted.test.iosim}), with a fake clock for the timers.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport, IOPump, connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from tests.support import captureLogEvents, makeCertificates, temporaryDirectory
from tlsreply import ReplyFactory, buildServerContexts, loadCredentials, wrapWithTLS
from tlsreply.protocol import ReplyProtocol, describeFailure, failureFromOpenSSL

PEER = IPv4Address("TCP", "192.0.2.7", 50000)
SERVER = IPv4Address("TCP", "192.0.2.1", 4433)


@implementer(IHandshakeListener)
class RecordingClient(Protocol):
    """
    A TLS client that records what it receives and how the connection ended.
    """

    def __init__(self) -> None:
        self.received = b""
        self.handshook = False
        self.lostReason: Failure | None = None

    def handshakeCompleted(self) -> None:
        self.handshook = True

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:  # noqa: B008
        self.lostReason = reason


class InMemoryServerTests(SynchronousTestCase):
    """
    The protocol's behaviour, driven step by step.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.events = captureLogEvents(self)
        self.certificates = makeCertificates(temporaryDirectory(self))
        self.options = buildServerContexts(
            loadCredentials(
                self.certificates.certificatePath, self.certificates.keyPath
            )
        )

    def _connect(
        self, **factoryArguments: Any
    ) -> tuple[RecordingClient, ReplyProtocol, IOPump]:
        factory = ReplyFactory(clock=self.clock, **factoryArguments)
        serverFactory = self.serverFactory = wrapWithTLS(self.options, factory)
        client = RecordingClient()
        trustRoot = Certificate.loadPEM(self.certificates.ca.cert_pem.bytes())
        clientFactory = TLSMemoryBIOFactory(
            optionsForClientTLS("localhost", trustRoot=trustRoot),
            True,
            ClientFactory.forProtocol(lambda: client),
            clock=self.clock,
        )
        clientTLS, serverTLS, pump = connectedServerAndClient(
            lambda: serverFactory.buildProtocol(PEER),
            lambda: clientFactory.buildProtocol(PEER),
            serverTransportFactory=lambda p: FakeTransport(p, True, SERVER, PEER),
            clientTransportFactory=lambda p: FakeTransport(p, False, PEER, SERVER),
            greet=False,
            clock=self.clock,
        )
        # Below ReplyProtocol: TLS, and below that the ClientHello reader.
        server = serverTLS.wrappedProtocol.wrappedProtocol  # type: ignore[attr-defined]
        assert isinstance(server, ReplyProtocol)
        return client, server, pump

    def _connectionEvents(self) -> list[dict[str, Any]]:
        return [e for e in self.events if "outcome" in e]

    def test_replyThenCloseNotify(self) -> None:
        """
        The client receives the reply after the handshake, then the
        server's close_notify ends the connection cleanly for both sides,
        and the server logs one event with what was negotiated.
        """
        client, server, pump = self._connect()
        pump.flush()
        self.assertTrue(client.handshook)
        self.assertEqual(client.received, b"test\n")
        assert client.lostReason is not None
        client.lostReason.trap(ConnectionDone)
        [event] = self._connectionEvents()
        self.assertEqual(event["outcome"], "replied")
        self.assertEqual(event["peer"], "192.0.2.7:50000")
        self.assertEqual(event["serverName"], "localhost")
        self.assertFalse(event["resumed"])
        self.assertIn("peer closed the connection", event["closed"])
        self.assertEqual(self.serverFactory.connections.inProgress, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failingRecorderLosesNoSlot(self) -> None:
        """
        A connection recorder that raises is logged, and the connection is
        still counted out (no leaked slot that would stall a graceful stop).
        """
        factory = ReplyFactory(clock=self.clock)

        def broken(record: object) -> None:
            raise RuntimeError("recorder bug")

        factory.recorders.append(broken)
        listening = wrapWithTLS(self.options, factory)
        protocol = listening.buildProtocol(PEER)
        protocol.makeConnection(StringTransport(peerAddress=PEER))
        self.assertEqual(listening.connections.inProgress, 1)
        protocol.connectionLost(Failure(ConnectionAborted()))
        self.assertEqual(listening.connections.inProgress, 0)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_nothingIsSentBeforeTheHandshake(self) -> None:
        """
        The reply is queued in connectionMade but goes out only once the
        handshake has completed: the first server flight holds no
        application data a passive observer could read.
        """
        client, server, pump = self._connect(reply=b"SECRET-REPLY")
        pump.pump()
        pump.pump()
        self.assertIsNone(server.handshake)
        self.assertEqual(client.received, b"")
        pump.flush()
        self.assertEqual(client.received, b"SECRET-REPLY")

    def test_closeTimeoutAbortsSilentClient(self) -> None:
        """
        A client that never answers the server's close_notify is cut off
        C{closeTimeout} seconds after the handshake, and the log says why.
        The default is 3 seconds (the wire tests run with a shorter one).
        """
        client, server, pump = self._connect()
        for _ in range(10):
            if server.handshake is not None:
                break
            pump.pump()
        self.assertIsNotNone(server.handshake)
        # The client stops reading here: nothing more is pumped to it.
        self.clock.advance(2.9)
        self.assertFalse(pump.serverIO.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(pump.serverIO.disconnecting)
        pump.flush()
        [event] = self._connectionEvents()
        self.assertEqual(event["outcome"], "replied")
        self.assertIn("did not close within 3s", event["closed"])
        self.assertEqual(self.serverFactory.connections.inProgress, 0)

    def test_handshakeTimeoutAbortsSilentClient(self) -> None:
        """
        A client that connects and sends nothing is aborted after
        C{handshakeTimeout} seconds and logged as a failed handshake.
        """
        factory = ReplyFactory(clock=self.clock, handshakeTimeout=10)
        serverFactory = wrapWithTLS(self.options, factory)
        tls = serverFactory.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        tls.makeConnection(transport)
        self.clock.advance(9.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.1)
        self.clock.advance(0)
        self.assertTrue(transport.disconnecting)
        tls.connectionLost(Failure(ConnectionAborted()))
        [event] = self._connectionEvents()
        self.assertEqual(event["outcome"], "handshake-failed")
        self.assertEqual(event["reason"], "handshake not completed within 10s")
        self.assertEqual(serverFactory.connections.inProgress, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_zeroTimeoutsMeanNoTimers(self) -> None:
        """
        With both timeouts set to 0 no timer is ever scheduled.
        """
        client, server, pump = self._connect(handshakeTimeout=0, closeTimeout=0)
        for _ in range(10):
            # Only TLS's own zero-delay write aggregation may be pending.
            self.assertEqual(
                [c for c in self.clock.getDelayedCalls() if c.getTime() > 0], []
            )
            pump.pump()
        pump.flush()
        self.assertEqual(client.received, b"test\n")

    def test_clientDataIsReadAndIgnored(self) -> None:
        """
        What the client sends after the handshake is read and discarded; it
        does not change the reply or the clean close.
        """
        client, server, pump = self._connect()
        for _ in range(10):
            if client.handshook:
                break
            pump.pump()
        assert client.handshook
        # The client's TLS transport is the protocol's transport.
        clientTransport: Any = client.transport
        clientTransport.write(b"GET / HTTP/1.1\r\n\r\n")
        pump.flush()
        self.assertEqual(client.received, b"test\n")
        assert client.lostReason is not None
        client.lostReason.trap(ConnectionDone)


class ReplyFactoryTests(SynchronousTestCase):
    """
    L{ReplyFactory}'s arguments and connection bookkeeping.
    """

    def test_emptyReplyIsRefused(self) -> None:
        """
        An empty reply would leave TLS nothing to wait for (Twisted then
        aborts the connection mid-handshake), so it is refused up front.
        """
        self.assertRaises(ValueError, ReplyFactory, b"", clock=Clock())

    def test_negativeTimeoutIsRefused(self) -> None:
        """
        A negative timeout is an error, not "no limit".
        """
        self.assertRaises(ValueError, ReplyFactory, clock=Clock(), handshakeTimeout=-1)
        self.assertRaises(ValueError, ReplyFactory, clock=Clock(), closeTimeout=-0.5)

    def test_whenIdleAndAbortAll(self) -> None:
        """
        The listening layer counts connections from accept, before any
        byte: C{whenIdle} fires once the last one is gone, C{abortAll}
        aborts them all.
        """
        clock = Clock()
        certificates = makeCertificates(temporaryDirectory(self))
        contexts = buildServerContexts(
            loadCredentials(certificates.certificatePath, certificates.keyPath)
        )
        factory = wrapWithTLS(contexts, ReplyFactory(clock=clock))
        registry = factory.connections
        self.assertIsNone(self.successResultOf(registry.whenIdle()))
        connections = []
        for port in (1, 2):
            protocol = factory.buildProtocol(PEER)
            transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", port))
            protocol.makeConnection(transport)
            connections.append((protocol, transport))
        self.assertEqual(registry.inProgress, 2)
        idle = registry.whenIdle()
        self.assertNoResult(idle)
        self.assertEqual(registry.abortAll("stopping the test"), 2)
        self.assertTrue(all(t.disconnecting for _, t in connections))
        for protocol, _ in connections:
            protocol.connectionLost(Failure(ConnectionAborted()))
        self.assertIsNone(self.successResultOf(idle))
        self.assertEqual(clock.getDelayedCalls(), [])


class FailureWordingTests(SynchronousTestCase):
    """
    How a connection's end is worded in its log line.
    """

    def test_emptyReasonsAreLeftOut(self) -> None:
        """
        OpenSSL queues a reason-less "system library" entry before its own
        reason after a failed system call; the line gives only the reason.
        """
        error = SSL.Error([("system library", "", ""), ("SSL routines", "", "unexpected eof while reading")])
        self.assertEqual(describeFailure(Failure(error)), "unexpected eof while reading")

    def test_eofWithoutCloseNotifyIsOneWording(self) -> None:
        """
        On tlsreply's own ports, however OpenSSL reports the end of TCP
        without close_notify (a pyOpenSSL C{SysCallError}, or an error with
        OpenSSL's "unexpected eof" reason, after a reset), the line says the
        same thing; other errors keep OpenSSL's reason.
        """
        eof = SSL.Error([("system library", "", ""), ("SSL routines", "", "unexpected eof while reading")])
        self.assertEqual(
            describeFailure(failureFromOpenSSL(eof)),
            "peer closed TCP without close_notify, or reset it",
        )
        other = SSL.Error([("SSL routines", "", "no shared cipher")])
        self.assertEqual(describeFailure(failureFromOpenSSL(other)), "no shared cipher")

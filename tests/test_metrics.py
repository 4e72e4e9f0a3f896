"""
C{--metrics}: what is counted (on a fake clock, and against a real server
scraped over HTTP and parsed with C{prometheus_client}'s parser), the
health checks, and one scrape for every worker of a real C{--workers 2}
daemon (also one that twistd runs as nobody).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import signal
import socket
import ssl
import struct
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from twisted.application.service import Service
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.protocol import ClientFactory
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport, IOPump, connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import (
    LOOPBACK,
    RunningServer,
    TestCertificates,
    captureLogEvents,
    clientContext,
    fetchWithSSL,
    inThread,
    makeCertificates,
    startServer,
    temporaryDirectory,
)
from tests.test_lifecycle import waitUntil
from tests.test_plugin import SCRIPTS, Daemon
from tests.test_protocol import RecordingClient
from tlsreply import ReplyFactory, buildServerContexts, loadCredentials, wrapWithTLS
from tlsreply.connection.ending import openSSLKind
from tlsreply.connection.limits import AcceptLimit
from tlsreply.connection.registry import ServerConnections
from tlsreply.errors import ConfigurationError
from tlsreply.instrumentation import singleProcessMetrics
from tlsreply.metrics._reasons import FAILURE_REASONS
from tlsreply.metrics.counting import ConnectionMetrics, ServerSampler
from tlsreply.metrics.multiprocess import MultiprocessFiles, WorkerFilesCollector
from tlsreply.metrics.web import METRICS_CACHE_SECONDS, MetricsService
from tlsreply.protocol import ReplyProtocol, endingFromFailure
from tlsreply.tls.reload import ReloadableContexts
from tlsreply.transport.tlsmemory import TLSReplyServerFactory

PEER = IPv4Address("TCP", "192.0.2.7", 50000)
SERVER = IPv4Address("TCP", "192.0.2.1", 4433)

#: (sample name, sorted label items) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parseSamples(text: str) -> Samples:
    """
    Every sample of an exposition, parsed by C{prometheus_client}'s parser.
    """
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, sampleName: str, **labels: str) -> float | None:
    """
    The value of one sample, or L{None} if the scrape does not have it.
    """
    return samples.get((sampleName, tuple(sorted(labels.items()))))


def get(port: int, path: str) -> tuple[int, str]:
    """
    A blocking HTTP GET on 127.0.0.1; the status and the body.
    """
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(port: int) -> Samples:
    status, body = get(port, "/metrics")
    assert status == 200, (status, body)
    return parseSamples(body)


class FailureReasonTests(SynchronousTestCase):
    """
    A failed handshake's reason becomes one of a fixed set of labels.
    """

    def test_reasons(self) -> None:
        """
        The endings of what Twisted reports carry their kind, OpenSSL's
        reasons map to theirs (the labels they had when the metrics
        matched text); anything else is C{other}, so the label's values
        are bounded. (The endings tlsreply makes itself, on the wire:
        L{tests.test_endings}.)
        """
        own = {
            "peer closed the connection": endingFromFailure(Failure(ConnectionDone())),
            "peer closed TCP without close_notify, or reset it": endingFromFailure(
                Failure(ConnectionLost())
            ),
            "connection aborted": endingFromFailure(Failure(ConnectionAborted())),
        }
        self.assertEqual(
            {text: ending.kind for text, ending in own.items()},
            {
                "peer closed the connection": "client_closed",
                "peer closed TCP without close_notify, or reset it": "client_closed",
                "connection aborted": "aborted",
            },
        )
        cases = {
            "no shared cipher": "no_shared_cipher",
            "no suitable signature algorithm": "no_shared_cipher",
            "unsupported protocol": "unsupported_version",
            "tlsv1 alert protocol version": "unsupported_version",
            "http request": "not_tls",
            "wrong version number": "not_tls",
            "packet length too long": "not_tls",
            "sslv3 alert bad certificate": "alert",
            "tlsv1 alert unknown ca": "alert",
            "peer did not return a certificate": "client_certificate",
            "decode error": "other",
            "TLS error: something new 12345": "other",
        }
        self.assertEqual({reason: openSSLKind(reason) for reason in cases}, cases)
        self.assertEqual(
            {*cases.values(), "timeout", "client_closed", "aborted", "proxy_header"},
            set(FAILURE_REASONS),
        )


class AcceptLimitStatisticsTests(SynchronousTestCase):
    """
    L{AcceptLimit} counts its pauses and how long they lasted.
    """

    def test_pausesAndSeconds(self) -> None:
        """
        Each time the cap is reached is one pause; the seconds paused add
        up, the pause in progress included.
        """
        now = [100.0]
        limit = AcceptLimit(2, now=lambda: now[0])
        limit.connectionsChanged(2)
        now[0] += 1.5
        self.assertEqual((limit.pauses, limit.pausedSeconds), (1, 1.5))
        limit.connectionsChanged(1)
        now[0] += 10
        limit.connectionsChanged(2)
        now[0] += 0.25
        limit.connectionsChanged(1)
        self.assertEqual((limit.pauses, limit.pausedSeconds), (2, 1.75))


class FakeClockTests(SynchronousTestCase):
    """
    What one connection adds to the metrics, driven step by step on a fake
    clock over the memory-BIO path.
    """

    def setUp(self) -> None:
        captureLogEvents(self)
        self.clock = Clock()
        certificates = self.certificates = makeCertificates(temporaryDirectory(self))
        self.contexts = buildServerContexts(
            loadCredentials(certificates.certificatePath, certificates.keyPath)
        )
        self.factory = ReplyFactory(clock=self.clock, handshakeTimeout=10, closeTimeout=3)
        self.metrics = ConnectionMetrics(len(self.factory.reply))
        self.factory.metrics = self.metrics
        self.serverFactory: TLSReplyServerFactory = wrapWithTLS(self.contexts, self.factory)
        self.sampler = ServerSampler(self.metrics, self.serverFactory.connections, None)

    def sample(self, name: str, **labels: str) -> float | None:
        self.sampler.sample()
        return self.metrics.registry.get_sample_value(name, labels)

    def connect(self) -> tuple[RecordingClient, ReplyProtocol, IOPump]:
        client = RecordingClient()
        trustRoot = Certificate.loadPEM(self.certificates.ca.cert_pem.bytes())
        clientFactory = TLSMemoryBIOFactory(
            optionsForClientTLS("localhost", trustRoot=trustRoot),
            True,
            ClientFactory.forProtocol(lambda: client),
            clock=self.clock,
        )
        serverFactory = self.serverFactory
        _, serverTLS, pump = connectedServerAndClient(
            lambda: serverFactory.buildProtocol(PEER),
            lambda: clientFactory.buildProtocol(PEER),
            serverTransportFactory=lambda p: FakeTransport(p, True, SERVER, PEER),
            clientTransportFactory=lambda p: FakeTransport(p, False, PEER, SERVER),
            greet=False,
            clock=self.clock,
        )
        server = serverTLS.wrappedProtocol.wrappedProtocol  # type: ignore[attr-defined]
        assert isinstance(server, ReplyProtocol)
        return client, server, pump

    def test_replied(self) -> None:
        """
        A connection served and closed by its client is one handshake with
        its TLS version, cipher, group and C{resumed="false"}, one reply of
        the reply's length, and one observation of the handshake's duration
        (here 0: the fake clock did not move).
        """
        client, server, pump = self.connect()
        self.assertEqual(self.sample("tlsreply_connections_in_progress"), 1)
        pump.flush()
        self.assertEqual(client.received, b"test\n")
        handshake = server.handshake
        assert handshake is not None and handshake.cipher and handshake.group
        self.assertEqual(
            self.sample(
                "tlsreply_handshakes_total",
                tls_version="TLSv1.3",
                cipher=handshake.cipher,
                group=handshake.group,
                resumed="false",
            ),
            1,
        )
        self.assertEqual(self.sample("tlsreply_replies_total"), 1)
        self.assertEqual(self.sample("tlsreply_reply_bytes_total"), 5)
        self.assertEqual(self.sample("tlsreply_handshake_duration_seconds_count"), 1)
        self.assertEqual(self.sample("tlsreply_handshake_duration_seconds_bucket", le="0.0001"), 1)
        self.assertEqual(self.sample("tlsreply_connections_in_progress"), 0)
        for reason in FAILURE_REASONS:
            self.assertEqual(self.sample("tlsreply_handshake_failures_total", reason=reason), 0)

    def test_handshakeTimeout(self) -> None:
        """
        A client that sends nothing for the handshake timeout is a failed
        handshake with the reason C{timeout}, and a timeout of kind
        C{handshake}.
        """
        tls = self.serverFactory.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        tls.makeConnection(transport)
        self.clock.advance(10)
        self.assertTrue(transport.disconnecting)
        tls.connectionLost(Failure(ConnectionAborted()))
        self.assertEqual(self.sample("tlsreply_handshake_failures_total", reason="timeout"), 1)
        self.assertEqual(self.sample("tlsreply_timeouts_total", kind="handshake"), 1)
        self.assertEqual(self.sample("tlsreply_timeouts_total", kind="close"), 0)
        self.assertEqual(self.sample("tlsreply_handshakes_total"), None)

    def test_closeTimeout(self) -> None:
        """
        A client that stops reading after the handshake is cut off by the
        close timeout: its handshake counts, its reply does not (tlsreply
        aborted it), and it is a timeout of kind C{close}.
        """
        client, server, pump = self.connect()
        for _ in range(10):
            if server.handshake is not None:
                break
            pump.pump()
        self.assertIsNotNone(server.handshake)
        self.clock.advance(3)
        pump.flush()
        self.assertEqual(self.sample("tlsreply_timeouts_total", kind="close"), 1)
        self.assertEqual(self.sample("tlsreply_handshake_duration_seconds_count"), 1)
        self.assertEqual(self.sample("tlsreply_replies_total"), 0)
        self.assertEqual(self.sample("tlsreply_reply_bytes_total"), 0)

    def test_samplesAddWhatWasGained(self) -> None:
        """
        Sampling twice adds nothing the second time; the accept pauses and
        the seconds paused are copied from the L{AcceptLimit}.
        """
        now = [0.0]
        limit = AcceptLimit(1, now=lambda: now[0])
        connections = ServerConnections(self.clock, 0, 0, limit)
        sampler = ServerSampler(self.metrics, connections, limit)
        limit.connectionsChanged(1)
        now[0] = 2.0
        sampler.sample()
        sampler.sample()
        registry = self.metrics.registry
        self.assertEqual(registry.get_sample_value("tlsreply_accept_pauses_total"), 1)
        self.assertEqual(registry.get_sample_value("tlsreply_accept_paused_seconds_total"), 2.0)


class ScrapeTests(TestCase):
    """
    A real server with C{--metrics}, real clients, a real scrape.
    """

    async def startWithMetrics(self) -> tuple[RunningServer, MetricsService, ReloadableContexts]:
        """
        A server on reloadable contexts, with the certificate of
        C{self.certificates}, and its metrics service.
        """
        certificates = self.certificates = makeCertificates(temporaryDirectory(self))

        def load() -> Any:
            credentials = loadCredentials(certificates.certificatePath, certificates.keyPath)
            return buildServerContexts(credentials)

        contexts = ReloadableContexts(load(), load)
        server = await startServer(self, contextFactory=contexts)
        service = singleProcessMetrics(
            reactor, f"tcp:0:interface={LOOPBACK}", server.service, contexts
        )
        service.startService()
        self.addCleanup(service.stopService)
        return server, service, contexts

    async def test_knownSequence(self) -> None:
        """
        After a full TLS 1.3 handshake, a resumed one, a full TLS 1.2 one,
        plain HTTP and a client that connects and closes, the scrape shows
        three handshakes by version and resumption, three replies, two
        failures by reason, the certificate's expiry, the reloads and the
        process collector's metrics.
        """
        server, service, contexts = await self.startWithMetrics()
        assert service.port is not None
        metricsPort = getattr(service.port.getHost(), "port", 0)
        caPath = str(self.certificates.caPath)
        context = clientContext(caPath)
        first = await inThread(fetchWithSSL, server.port, context)
        resumed = await inThread(fetchWithSSL, server.port, context, session=first.session)
        self.assertTrue(resumed.sessionReused)
        tls12 = clientContext(caPath)
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        await inThread(fetchWithSSL, server.port, tls12)

        def notTLS() -> None:
            with socket.create_connection((LOOPBACK, server.port)) as raw:
                raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
                raw.recv(100)

        await inThread(notTLS)
        socket.create_connection((LOOPBACK, server.port)).close()
        await waitUntil(lambda: len(server.connectionEvents()) == 5)
        samples = await inThread(scrape, metricsPort)

        handshakes = {
            dict(labels)["tls_version"] + "/" + dict(labels)["resumed"]: count
            for (name, labels), count in samples.items()
            if name == "tlsreply_handshakes_total"
        }
        self.assertEqual(handshakes, {"TLSv1.3/false": 1, "TLSv1.3/true": 1, "TLSv1.2/false": 1})
        failures = {
            dict(labels)["reason"]: count
            for (name, labels), count in samples.items()
            if name == "tlsreply_handshake_failures_total" and count
        }
        self.assertEqual(failures, {"not_tls": 1, "client_closed": 1})
        self.assertEqual(value(samples, "tlsreply_replies_total"), 3)
        self.assertEqual(value(samples, "tlsreply_reply_bytes_total"), 15)
        self.assertEqual(value(samples, "tlsreply_handshake_duration_seconds_count"), 3)
        self.assertEqual(value(samples, "tlsreply_connections_in_progress"), 0)
        self.assertEqual(value(samples, "tlsreply_timeouts_total", kind="handshake"), 0)
        self.assertEqual(value(samples, "tlsreply_accept_pauses_total"), 0)
        notAfter = contexts.current.credentials[0].certificate.not_valid_after_utc.timestamp()
        self.assertEqual(
            value(
                samples,
                "tlsreply_certificate_expiry_timestamp_seconds",
                name="localhost",
                key_type=contexts.current.credentials[0].keyDescription,
            ),
            notAfter,
        )
        self.assertEqual(value(samples, "tlsreply_reloads_total", outcome="success"), 0)
        self.assertGreater(value(samples, "process_cpu_seconds_total") or 0, 0)

        # A scrape shows what changed once the last rendering is older
        # than METRICS_CACHE_SECONDS.
        self.assertTrue(contexts.reload())
        started = time.monotonic()
        while (
            value(samples, "tlsreply_reloads_total", outcome="success") == 0
            and time.monotonic() - started < METRICS_CACHE_SECONDS + 5
        ):
            await deferLater(reactor, 0.1, lambda: None)
            samples = await inThread(scrape, metricsPort)
        self.assertEqual(value(samples, "tlsreply_reloads_total", outcome="success"), 1)
        self.assertEqual(value(samples, "tlsreply_reloads_total", outcome="failure"), 0)

    async def test_readyLiveAndDraining(self) -> None:
        """
        C{/ready} answers 200 until L{MetricsService.startDraining}, then
        503 C{draining}; C{/live} answers 200 throughout; anything else is
        404. OpenMetrics is served to a scraper that asks for it.
        """
        _, service, _ = await self.startWithMetrics()
        assert service.port is not None
        port = getattr(service.port.getHost(), "port", 0)
        self.assertEqual(await inThread(get, port, "/ready"), (200, "ready\n"))
        self.assertEqual(await inThread(get, port, "/live"), (200, "live\n"))
        self.assertEqual((await inThread(get, port, "/nothing"))[0], 404)
        self.assertFalse(service.draining)
        service.startDraining()
        self.assertTrue(service.draining)
        self.assertEqual(await inThread(get, port, "/ready"), (503, "draining\n"))
        self.assertEqual(await inThread(get, port, "/live"), (200, "live\n"))

        def openMetrics() -> tuple[str, str]:
            request = urllib.request.Request(
                f"http://{LOOPBACK}:{port}/metrics",
                headers={"Accept": "application/openmetrics-text; version=1.0.0"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.headers["content-type"], response.read().decode()

        contentType, body = await inThread(openMetrics)
        self.assertIn("application/openmetrics-text", contentType)
        self.assertTrue(body.endswith("# EOF\n"))

    def test_privateRegistries(self) -> None:
        """
        Two servers in one process count apart: each has a registry of its
        own, and neither touches C{prometheus_client}'s global one.
        """
        first, second = ConnectionMetrics(5), ConnectionMetrics(5)
        self.assertIsNot(first.registry, second.registry)
        first.replies.inc()
        self.assertEqual(second.registry.get_sample_value("tlsreply_replies_total"), 0)
        self.assertIsInstance(first.registry, CollectorRegistry)


class WorkersDaemon:
    """
    A real C{twistd -n [twistdOptions] tlsreply --workers 2 --metrics ...}
    on ephemeral 127.0.0.1 ports, started and read up to its workers
    listening.

    @ivar folder: the workers' metrics folder, as the parent logged it.
    @ivar metricsPort: where it serves C{/metrics}.
    @ivar port: where it serves TLS.
    @ivar pids: each worker's pid, by number.
    """

    def __init__(
        self, testCase: SynchronousTestCase, certificates: TestCertificates, *twistdOptions: str
    ) -> None:
        self.daemon = daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", *twistdOptions, "tlsreply",
             "--port", f"tcp:0:interface={LOOPBACK}", "--workers", "2",
             "--metrics", f"tcp:0:interface={LOOPBACK}",
             "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath)],
            certificates.caPath.parent,
        )
        testCase.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        # In the order they are logged: the metrics port is bound before
        # twistd drops privileges, the folder made after.
        self.metricsPort = int(daemon.waitFor(r"metrics on 127\.0\.0\.1:(\d+)").group(1))
        self.folder = Path(daemon.waitFor(r"metrics of the workers in (\S+)").group(1))
        self.port = int(
            daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\] with 2 workers").group(1)
        )
        for _ in range(2):
            daemon.waitFor(r"worker \d listening on")
        self.pids = {
            int(m.group(1)): int(m.group(2))
            for m in (re.search(r"started worker (\d) \(pid (\d+)\)", line) for line in daemon.output)
            if m
        }

    def serveOnBothWorkers(self, context: ssl.SSLContext) -> int:
        """
        Make TLS connections, 16 at a time, until both workers have served
        some (the kernel spreads them: all 16 on one worker is a chance of
        1 in 32768); return how many were made. The workers' access logs
        are flushed once a second, so they are read once per 16.
        """
        served: set[int] = set()
        count = 0
        while served != {1, 2}:
            if count >= 48:
                raise AssertionError(f"only worker(s) {served} served {count} connections")
            for _ in range(16):
                assert fetchWithSSL(self.port, context).data == b"test\n"
            count += 16
            for _ in range(16):
                match = self.daemon.waitFor(r"access\.worker(\d)#info\] replied")
                served.add(int(match.group(1)))
        return count

    def handshakes(self) -> float:
        """
        The handshakes a scrape of the parent counts, over every worker.
        """
        try:
            samples = scrape(self.metricsPort)
        except AssertionError as e:
            self.daemon.process.poll() is None and self.daemon.stop()
            raise AssertionError(f"{e}; the server's log:\n{''.join(self.daemon.output)}") from None
        return sum(v for (name, _), v in samples.items() if name == "tlsreply_handshakes_total")

    def waitForHandshakes(self, count: int) -> float:
        """
        Scrape until the workers have published C{count} handshakes (they
        publish every second), or 10 s went by; return the last count.
        """
        deadline = time.monotonic() + 10
        while (seen := self.handshakes()) != count and time.monotonic() < deadline:
            time.sleep(0.05)
        return seen


class WorkersTests(SynchronousTestCase):
    """
    A real C{twistd -n tlsreply --workers 2 --metrics ...}: one scrape of
    the parent covers both workers.
    """

    def test_oneScrapeForEveryWorker(self) -> None:
        """
        Connections served by both workers add up in one scrape, with each
        worker's process metrics; what a worker killed with SIGKILL had
        published stays counted; the metrics folder is removed at the end.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        server = WorkersDaemon(self, certificates)
        daemon, metricsPort = server.daemon, server.metricsPort
        context = clientContext(str(certificates.caPath))
        count = server.serveOnBothWorkers(context)
        self.assertEqual(server.waitForHandshakes(count), count)
        samples = scrape(metricsPort)
        self.assertEqual(value(samples, "tlsreply_replies_total"), count)
        self.assertEqual(value(samples, "tlsreply_connections_in_progress"), 0)
        self.assertEqual(value(samples, "tlsreply_reloads_total", outcome="success"), 0)
        for worker in ("1", "2"):
            self.assertIsNotNone(
                value(samples, "tlsreply_worker_process_resident_memory_bytes", worker=worker)
            )
        self.assertIsNotNone(value(samples, "process_resident_memory_bytes"))
        self.assertEqual(get(metricsPort, "/ready"), (200, "ready\n"))

        os.kill(server.pids[1], signal.SIGKILL)
        daemon.waitFor(r"started worker 1 \(pid \d+\)")
        self.assertEqual(server.handshakes(), count)
        self.assertEqual(fetchWithSSL(server.port, context).data, b"test\n")
        self.assertEqual(server.waitForHandshakes(count + 1), count + 1)

        self.assertTrue(server.folder.is_dir())
        self.assertEqual(daemon.stop(), 0)
        self.assertFalse(server.folder.exists())
        self.assertNotIn("Traceback", "".join(daemon.output))

    def test_readyDuringPipelinedFlood(self) -> None:
        """
        While one client has sent 5,000 pipelined scrapes to the parent in
        one write (and reads none of the answers), C{/ready} on another
        connection is answered within a second: the parent takes them one
        at a time, in turns, health checks first.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        server = WorkersDaemon(self, certificates)
        flood = socket.create_connection((LOOPBACK, server.metricsPort), timeout=10)
        self.addCleanup(flood.close)
        scrapes = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 5000

        def send() -> None:
            with contextlib.suppress(OSError):
                flood.sendall(scrapes)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        self.assertTrue(flood.recv(100).startswith(b"HTTP/1.1 200 OK\r\n"))
        started = time.monotonic()
        self.assertEqual(get(server.metricsPort, "/ready"), (200, "ready\n"))
        self.assertLess(time.monotonic() - started, 1.0)
        flood.close()
        sender.join(10)
        self.assertEqual(server.daemon.stop(), 0)
        self.assertNotIn("Traceback", "".join(server.daemon.output))

    def test_workersAsAnUnprivilegedUser(self) -> None:
        """
        Started as root with C{--uid nobody --gid nogroup}, the parent makes
        the metrics folder after twistd dropped privileges: it belongs to
        nobody, both workers (nobody too) write their files there and are
        counted in one scrape, none dies, and the parent (nobody) removes
        the folder as it stops.
        """
        if os.geteuid() != 0:
            self.skipTest("twistd --uid changes user only when started as root")
        try:
            nobody = pwd.getpwnam("nobody").pw_uid
            grp.getgrnam("nogroup")
        except KeyError:
            self.skipTest("no user nobody or group nogroup on this system")
        directory = temporaryDirectory(self)
        # Readable by nobody: the parent reads the files again on SIGHUP.
        os.chmod(directory, 0o755)
        certificates = makeCertificates(directory)
        for path in directory.iterdir():
            os.chmod(path, 0o644)
        server = WorkersDaemon(self, certificates, "--uid", "nobody", "--gid", "nogroup")
        daemon = server.daemon
        self.assertEqual(server.folder.stat().st_uid, nobody)
        self.assertEqual(server.folder.stat().st_mode & 0o777, 0o700)
        count = server.serveOnBothWorkers(clientContext(str(certificates.caPath)))
        self.assertEqual(server.waitForHandshakes(count), count)
        for pid in server.pids.values():
            [histogram] = server.folder.glob(f"histogram_{pid}.db")
            self.assertEqual(histogram.stat().st_uid, nobody)

        self.assertEqual(daemon.stop(), 0)
        log = "".join(daemon.output)
        self.assertEqual(len(re.findall(r"started worker \d", log)), 2, log)
        self.assertNotRegex(log, r"worker \d failed|exited with status|killed by")
        self.assertNotIn("Traceback", log)
        self.assertFalse(server.folder.exists())


class WorkerFilesTests(SynchronousTestCase):
    """
    The workers' folder: made as the parent starts, read even while a
    worker creates a file, removed once the workers have stopped.
    """

    def test_fileBeingCreatedIsLeftOut(self) -> None:
        """
        A file a worker has just created, still empty, fails
        C{prometheus_client}'s own collector (an HTTP 500 for that scrape);
        tlsreply's leaves it out and reads the others.
        """
        folder = temporaryDirectory(self)
        written = MmapedDict(str(folder / "counter_101.db"))
        written.write_value(
            mmap_key("tlsreply_replies", "tlsreply_replies_total", [], [], "Replies."), 7.0, 0.0
        )
        written.close()
        (folder / "counter_102.db").touch()
        with self.assertRaises(struct.error):
            list(MultiProcessCollector(None, path=str(folder)).collect())
        [family] = WorkerFilesCollector(str(folder)).collect()
        self.assertEqual([s.value for s in family.samples], [7.0])

    def test_folderLivesWhileItsChildrenRun(self) -> None:
        """
        The folder is made as the service starts (after twistd dropped
        privileges, not when the server is built), before its children
        start, and removed only once they have all stopped.
        """
        folders: list[Path | None] = []
        stopping: Deferred[None] = Deferred()

        class Child(Service):
            def startService(self) -> None:
                super().startService()
                folders.append(files.path)

            def stopService(self) -> Deferred[None]:
                super().stopService()
                return stopping

        files = MultiprocessFiles(temporaryDirectory(self))
        Child().setServiceParent(files)
        self.assertIsNone(files.path)
        files.privilegedStartService()
        self.assertIsNone(files.path)
        files.startService()
        [folder] = folders
        assert folder is not None
        self.assertEqual(folder.stat().st_mode & 0o777, 0o700)
        stopped = files.stopService()
        self.assertTrue(folder.is_dir())
        stopping.callback(None)
        self.successResultOf(stopped)
        self.assertFalse(folder.exists())

    def test_folderCannotBeMade(self) -> None:
        """
        A folder that cannot be made is a L{ConfigurationError} that says
        where, and as which user.
        """
        missing = temporaryDirectory(self) / "missing"
        files = MultiprocessFiles(missing)
        with self.assertRaises(ConfigurationError) as caught:
            files.startService()
        self.assertIn(f"in {missing} as uid {os.geteuid()}", str(caught.exception))
        self.assertTrue(str(caught.exception).startswith("--metrics: "))

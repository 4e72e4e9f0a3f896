"""
tlsreply behind a real HAProxy (TCP mode, the PROXY protocol v2): the
client's own address in the log and the records, health checks, a drain
that fails no client, and resumption with C{balance source}.

HAProxy is Debian's package, which C{.ci/run} installs; elsewhere these
tests are skipped when it is absent.
"""

from __future__ import annotations

import re
import signal
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.haproxy import (
    Backend,
    DaemonBackend,
    clientLoops,
    fetchThrough,
    startBackend,
    startHAProxy,
)
from tests.support import (
    LOOPBACK,
    captureLogEvents,
    clientContext,
    inThread,
    makeCertificates,
    temporaryDirectory,
)
from tlsreply import (
    ConnectionRecord,
    ReloadableContexts,
    ReplyFactory,
    TLSReplyService,
    buildServerContexts,
    loadCredentials,
)
from tlsreply.instrumentation import singleProcessMetrics

#: How many of HAProxy's health checks (every 200 ms) a test waits for.
CHECKS = 10


class HAProxyDaemonTests(SynchronousTestCase):
    """
    Two C{twistd -n tlsreply} daemons behind one HAProxy.
    """

    def setUp(self) -> None:
        self.workdir = temporaryDirectory(self)
        self.certificates = makeCertificates(self.workdir)

    def backends(self, *arguments: str) -> list[DaemonBackend]:
        return [
            startBackend(self, name, self.workdir, self.certificates.certificatePath,
                         self.certificates.keyPath, *arguments)
            for name in ("tls1", "tls2")
        ]

    def test_clientAddressInTheLog(self) -> None:
        """
        Each connection is logged, by the instance that served it, with the
        client's own address and port (from the PROXY header), not
        HAProxy's; HAProxy's health checks pass and both instances serve.
        """
        a, b = self.backends()
        proxy = startHAProxy(self, self.workdir, [a, b], balance="roundrobin")
        ports = [fetchThrough(proxy.port, self.certificates.caPath).localPort
                 for _ in range(6)]
        a.daemon.stop()
        b.daemon.stop()
        served = {
            backend.name: {
                int(port) for port in re.findall(
                    r"replied to 127\.0\.0\.1:(\d+): .* sni=localhost ",
                    "".join(backend.daemon.output),
                )
            }
            for backend in (a, b)
        }
        self.assertEqual(served["tls1"] | served["tls2"], set(ports))
        self.assertEqual(served["tls1"] & served["tls2"], set())
        self.assertTrue(served["tls1"] and served["tls2"], served)

    def test_balanceSourceResumes(self) -> None:
        """
        With C{balance source} a client's connections reach the same
        instance, and its second connection resumes its session; with
        round robin it reaches the other instance, whose ticket keys are
        its own, and does a full handshake (why the deployment guide
        recommends C{balance source}).
        """
        a, b = self.backends()
        context = clientContext(str(self.certificates.caPath))
        sticky = startHAProxy(self, self.workdir / "source", [a, b])
        first = fetchThrough(sticky.port, self.certificates.caPath, context=context)
        again = fetchThrough(sticky.port, self.certificates.caPath, first.session, context)
        self.assertEqual((again.reply, again.resumed), (b"test\n", True))

        roundRobin = startHAProxy(self, self.workdir / "roundrobin", [a, b], "roundrobin")
        first = fetchThrough(roundRobin.port, self.certificates.caPath, context=context)
        again = fetchThrough(roundRobin.port, self.certificates.caPath, first.session, context)
        self.assertEqual((again.reply, again.resumed), (b"test\n", False))

    def test_drainFailsNoClient(self) -> None:
        """
        The instance that serves four clients connecting through HAProxy in
        a loop is stopped with SIGTERM, and none of 240 connections fails:
        it drains first (C{--drain-delay}: its C{/ready} fails, HAProxy
        takes it out of rotation, the clients move to the other one), then
        serves what is queued and closes.
        """
        a, b = self.backends()
        proxy = startHAProxy(self, self.workdir, [a, b])
        # About 40 connections a second for six seconds: the stop comes
        # after a quarter, the drain lasts three seconds, the rest go to the
        # other instance.
        result, threads = clientLoops(proxy.port, self.certificates.caPath, 4, 240, 0.1)
        deadline = time.monotonic() + 60
        while result.succeeded < 60:
            # Fail, not hang, if the clients fail or stop.
            if result.failures or time.monotonic() > deadline or not any(
                thread.is_alive() for thread in threads
            ):
                self.fail(f"{result.succeeded} connections succeeded; failures: {result.failures}")
            time.sleep(0.01)
        sessions = proxy.sessions()
        [busy] = [x for x in (a, b) if sessions[x.name] > 0]
        [idle] = [x for x in (a, b) if x is not busy]
        busy.daemon.process.send_signal(signal.SIGTERM)
        busy.daemon.waitFor("draining for 3s, then stopping gracefully")
        proxy.waitUntil({busy.name: False, idle.name: True})
        for thread in threads:
            thread.join(60)
        self.assertEqual(busy.daemon.stop(), 0)
        self.assertEqual(
            (result.succeeded, result.failures), (240, []),
            "HAProxy's sessions that did not end normally:\n"
            + "".join(line for line in proxy.log().splitlines(True) if " -- " not in line),
        )
        self.assertGreater(proxy.sessions()[idle.name], 0)


class HAProxyRecordTests(TestCase):
    """
    A tlsreply service in this process, behind HAProxy: its records carry
    the client's address.
    """

    async def test_recordsHaveTheClientAddress(self) -> None:
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        records: list[ConnectionRecord] = []
        factory = ReplyFactory(b"test\n", clock=reactor)
        factory.recorders.append(records.append)
        contexts = buildServerContexts(
            loadCredentials(str(certificates.certificatePath), str(certificates.keyPath))
        )
        service = TLSReplyService.fromDescriptions(
            reactor, [f"haproxy:tcp:0:interface={LOOPBACK}"], contexts, factory
        )
        metrics = singleProcessMetrics(
            reactor, f"tcp:0:interface={LOOPBACK}", service,
            ReloadableContexts(contexts, lambda: contexts),
        )
        for each in (service, metrics):
            each.startService()
            self.addCleanup(each.stopService)
        port = service.listeningPorts[0].getHost().port  # type: ignore[attr-defined]
        assert metrics.port is not None
        backend = Backend("tls1", port, metrics.port.getHost().port)  # type: ignore[attr-defined]
        proxy = await inThread(startHAProxy, self, workdir, [backend])
        fetched = await inThread(fetchThrough, proxy.port, certificates.caPath)
        self.assertEqual(fetched.reply, b"test\n")
        while not records:
            await deferLater(reactor, 0.01, lambda: None)
        [record] = records
        self.assertEqual(record.peer, f"127.0.0.1:{fetched.localPort}")
        self.assertEqual(record.requestedServerName, "localhost")


class HAProxyHealthCheckTests(TestCase):
    """
    HAProxy's own health checks on tlsreply's C{haproxy:} port, as its
    manual configures them: C{send-proxy-v2} with C{check}, which sends a
    PROXY v2 header with the LOCAL command.
    """

    async def test_localHealthChecks(self) -> None:
        """
        Health checks that send a LOCAL header, then close (C{check}) or do
        a TLS handshake (C{check-ssl}), pass and keep passing while clients
        are served through HAProxy; each check is logged as an ordinary
        connection from HAProxy's own address (the connection's, as the
        spec says for LOCAL), and nothing is refused, failed or logged as
        an error.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        events = captureLogEvents(self)
        factory = ReplyFactory(b"test\n", clock=reactor)
        contexts = buildServerContexts(
            loadCredentials(str(certificates.certificatePath), str(certificates.keyPath))
        )
        service = TLSReplyService.fromDescriptions(
            reactor, [f"haproxy:tcp:0:interface={LOOPBACK}"], contexts, factory
        )
        service.startService()
        self.addCleanup(service.stopService)
        port = service.listeningPorts[0].getHost().port  # type: ignore[attr-defined]
        backends = [Backend("closing", port), Backend("handshaking-ssl", port)]
        proxy = await inThread(startHAProxy, self, workdir, backends, checkProxyPort=True)
        clients = set()
        for _ in range(4):
            fetched = await inThread(fetchThrough, proxy.port, certificates.caPath)
            self.assertEqual(fetched.reply, b"test\n")
            clients.add(f"{LOOPBACK}:{fetched.localPort}")

        def connections() -> list[dict[str, Any]]:
            return [e for e in events if "outcome" in e]

        deadline = time.monotonic() + 20
        while len(connections()) < len(clients) + 2 * CHECKS:
            self.assertLess(time.monotonic(), deadline, connections())
            await deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(
            await inThread(proxy.serversUp), {"closing": True, "handshaking-ssl": True}
        )
        checks = [e for e in connections() if e["peer"] not in clients]
        served = [e for e in connections() if e["peer"] in clients]
        self.assertEqual(
            [(e["outcome"], e.get("serverName")) for e in served], [("replied", "localhost")] * 4
        )
        self.assertEqual(
            {e["peer"].rsplit(":", 1)[0] for e in checks}, {LOOPBACK}
        )
        replied = [e for e in checks if e["outcome"] == "replied"]
        closed = [e for e in checks if e["outcome"] != "replied"]
        self.assertGreaterEqual(len(replied), 3)
        self.assertGreaterEqual(len(closed), 3)
        for event in closed:
            self.assertIn("peer closed", event["reason"])
        self.assertEqual(
            [e for e in events if "log_failure" in e or e["log_level"].name in ("error", "critical")],
            [],
        )

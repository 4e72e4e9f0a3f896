"""
The server's life: the connection cap, graceful stop, certificate reload
and privilege dropping, on real sockets.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import (
    LOOPBACK,
    WireTestCase,
    clientContext,
    fetchWithSSL,
    inThread,
    makeCertificates,
    onMemoryBIO,
    startServer,
    temporaryDirectory,
    waitUntilAccepted,
)
from tests.test_plugin import (
    SCRIPTS,
    SIGTERM_BEFORE_THE_REACTOR,
    Daemon,
    signalBeforeTheReactor,
)
from tlsreply import buildServerContexts, loadCredentials
from tlsreply.connection.limits import AcceptLimit
from tlsreply.errors import ConfigurationError
from tlsreply.lifecycle import ServerLifecycle
from tlsreply.tls.reload import ReloadableContexts


async def waitUntil(condition: object, timeout: float = 5.0) -> None:
    """
    Let the reactor run until C{condition()} is true, or fail.
    """
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await deferLater(reactor, 0.01, lambda: None)


def peerCertificateFingerprint(port: int, caPath: str) -> str:
    """
    Connect, read the reply, and return the SHA-256 fingerprint of the
    certificate the server presented.
    """
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
        with clientContext(caPath).wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
            while tls.recv(100):
                pass
    assert der is not None
    return x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256()).hex(":").upper()


class ConnectionLimitTests(WireTestCase):
    """
    Past C{maxConnections} the server stops accepting instead of accepting
    and dropping.
    """

    async def test_pausesAtTheCapAndResumes(self) -> None:
        """
        With the cap reached by idle connections, a new client waits in the
        kernel's backlog, unanswered but not refused; when one idle
        connection ends the server accepts again and the waiting client is
        served.
        """
        server = await startServer(self, handshakeTimeout=30)
        server.service.limit.maximum = 3
        idle = [socket.create_connection((LOOPBACK, server.port)) for _ in range(3)]

        def closeIdle() -> None:
            for each in idle:
                each.close()

        self.addCleanup(closeIdle)
        await waitUntil(lambda: server.service.limit.paused)
        self.assertEqual(server.service.connections.inProgress, 3)

        def waitingClient() -> tuple[bytes, float]:
            started = time.monotonic()
            result = fetchWithSSL(server.port, clientContext(server.caPath), timeout=10)
            return result.data, time.monotonic() - started

        waiting = inThread(waitingClient)
        # The client's TCP handshake completes (the kernel queues it) but
        # tlsreply does not accept it while at the cap.
        await deferLater(reactor, 0.5, lambda: None)
        self.assertEqual(server.service.connections.inProgress, 3)
        self.assertFalse(waiting.called)
        idle.pop().close()
        data, waited = await waiting
        self.assertEqual(data, b"test\n")
        self.assertGreater(waited, 0.4)
        # The waiting client was the third connection again: accepting
        # paused while it was served, and resumed when it ended.
        await waitUntil(lambda: server.service.connections.inProgress == 2)
        self.assertFalse(server.service.limit.paused)
        paused = [e for e in server.events if "maximum" in e]
        resumed = [e for e in server.events if "accepting again" in e["log_format"]]
        self.assertEqual((len(paused), len(resumed)), (2, 2))


class GracefulStopTests(WireTestCase):
    """
    Stopping stops listening at once, lets connections finish, then aborts
    the rest.
    """

    async def test_stopWaitsThenAborts(self) -> None:
        """
        A connection that stays mid-handshake is aborted after the shutdown
        grace; the listening port is closed at once; the counts are logged.
        """
        server = await startServer(self, handshakeTimeout=30)
        server.service.shutdownGrace = 0.5
        idle = socket.create_connection((LOOPBACK, server.port))
        self.addCleanup(idle.close)
        await waitUntil(lambda: server.service.connections.inProgress == 1)
        started = time.monotonic()
        stopping = server.service.stopService()
        await deferLater(reactor, 0.05, lambda: None)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((LOOPBACK, server.port), timeout=2).close()
        await stopping
        self.assertGreater(time.monotonic() - started, 0.45)
        counts = [e.get("inProgress") or e.get("aborted") for e in server.events
                  if "grace" in e]
        self.assertEqual(counts, [1, 1])
        [event] = server.connectionEvents()
        self.assertEqual(event["reason"], "aborted at shutdown after the 0.5s grace")
        try:
            self.assertEqual(idle.recv(100), b"")
        except ConnectionResetError:
            pass  # an abort may reset: either way the connection is gone

    async def test_stopLetsConnectionsFinish(self) -> None:
        """
        A connection in progress when the stop begins completes normally
        within the grace period.
        """
        server = await startServer(self, closeTimeout=30)
        server.service.shutdownGrace = 10

        def slowClient() -> bytes:
            with socket.create_connection((LOOPBACK, server.port)) as raw:
                with clientContext(server.caPath).wrap_socket(
                    raw, server_hostname="localhost", suppress_ragged_eofs=False
                ) as tls:
                    data = tls.recv(100)
                    time.sleep(0.5)  # the stop begins meanwhile
                    return data + tls.recv(100)

        reading = inThread(slowClient)
        await waitUntil(lambda: server.service.connections.inProgress > 0)
        started = time.monotonic()
        await server.service.stopService()
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(await reading, b"test\n")
        [event] = server.connectionEvents()
        self.assertEqual(event["outcome"], "replied")

    async def test_queuedConnectionsAreServed(self) -> None:
        """
        Connections waiting in the kernel's accept queue when the stop
        begins are accepted and served, not reset by the closing listener
        (a load balancer that has forwarded their first bytes could not
        send them elsewhere).
        """
        server = await startServer(self)
        # Connected (the kernel completed them), never accepted: the
        # reactor does not run between these lines and the stop, which
        # closes the listener on its next turn.
        queued = [socket.create_connection((LOOPBACK, server.port)) for _ in range(3)]
        for raw in queued:
            self.addCleanup(raw.close)
        self.assertEqual(server.service.connections.inProgress, 0)
        stopping = server.service.stopService()

        def handshake(raw: socket.socket) -> bytes:
            with clientContext(server.caPath).wrap_socket(
                raw, server_hostname="localhost", suppress_ragged_eofs=False
            ) as tls:
                return tls.recv(100)

        replies = [await inThread(handshake, raw) for raw in queued]
        await stopping
        self.assertEqual(replies, [b"test\n"] * 3)
        self.assertEqual(
            [e["outcome"] for e in server.connectionEvents()], ["replied"] * 3
        )


class ReloadTests(WireTestCase):
    """
    L{ReloadableContexts}: new connections get the new certificate, a bad
    reload keeps the old one.
    """

    async def test_reloadSwapsCertificateForNewConnections(self) -> None:
        """
        After the certificate files are replaced and reloaded, new clients
        get the new certificate; a client that was mid-handshake during the
        reload finishes on the old one.
        """
        directory = temporaryDirectory(self)
        first = makeCertificates(directory / "first")
        second = makeCertificates(directory / "second")
        live = directory / "live"
        live.mkdir()
        shutil.copy(first.certificatePath, live / "cert.pem")
        shutil.copy(first.keyPath, live / "key.pem")

        def load() -> object:
            return buildServerContexts(loadCredentials(live / "cert.pem", live / "key.pem"))

        contexts = ReloadableContexts(load(), load)  # type: ignore[arg-type]
        server = await startServer(self, contextFactory=contexts)
        bothCAs = directory / "both.pem"
        bothCAs.write_bytes(first.caPath.read_bytes() + second.caPath.read_bytes())
        before = await inThread(peerCertificateFingerprint, server.port, str(bothCAs))

        # A client that has sent its ClientHello and received the server's
        # first flight, but not finished, when the reload happens.
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        pending = clientContext(str(bothCAs)).wrap_bio(
            incoming, outgoing, server_hostname="localhost"
        )
        raw = socket.create_connection((LOOPBACK, server.port))
        self.addCleanup(raw.close)
        raw.settimeout(10)
        with self.assertRaises(ssl.SSLWantReadError):
            pending.do_handshake()
        raw.sendall(outgoing.read())
        incoming.write(await inThread(raw.recv, 65536))

        shutil.copy(second.certificatePath, live / "cert.pem")
        shutil.copy(second.keyPath, live / "key.pem")
        self.assertTrue(contexts.reload())
        after = await inThread(peerCertificateFingerprint, server.port, str(bothCAs))

        def receive() -> None:
            data = raw.recv(65536)
            if data:
                incoming.write(data)
            else:
                incoming.write_eof()

        def finishPending() -> bytes:
            while True:
                try:
                    pending.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    raw.sendall(outgoing.read())
                    receive()
            raw.sendall(outgoing.read())
            data = b""
            while True:
                try:
                    chunk = pending.read(100)
                except ssl.SSLWantReadError:
                    receive()
                    continue
                except ssl.SSLZeroReturnError:
                    return data
                if not chunk:  # close_notify
                    return data
                data += chunk

        self.assertEqual(await inThread(finishPending), b"test\n")
        der = pending.getpeercert(binary_form=True)
        assert der is not None
        pendingFingerprint = (
            x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256()).hex(":").upper()
        )
        self.assertEqual(pendingFingerprint, before)
        self.assertNotEqual(before, after)
        self.assertEqual(contexts.generation, 1)

    async def test_badReloadKeepsServing(self) -> None:
        """
        A reload that cannot load the files logs one error and leaves the
        previous certificate in use.
        """
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory)
        path = directory / "live.pem"
        shutil.copy(certificates.certificatePath, path)

        def load() -> object:
            return buildServerContexts(loadCredentials(path, certificates.keyPath))

        contexts = ReloadableContexts(load(), load)  # type: ignore[arg-type]
        server = await startServer(self, contextFactory=contexts)
        path.write_bytes(b"not a certificate\n")
        self.assertFalse(contexts.reload())
        result = await inThread(
            fetchWithSSL, server.port, clientContext(str(certificates.caPath))
        )
        self.assertEqual(result.data, b"test\n")
        [error] = [e for e in server.events if e["log_level"] == LogLevel.error]
        self.assertIn("holds no PEM certificate", error["error"])
        self.assertEqual(contexts.generation, 0)


class ReloadUnitTests(SynchronousTestCase):
    """
    L{ReloadableContexts} without a server.
    """

    def test_failedLoadRaisesNothing(self) -> None:
        """
        C{reload} reports failure by its result, never by raising.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        contexts = buildServerContexts(
            loadCredentials(certificates.certificatePath, certificates.keyPath)
        )

        def fail() -> object:
            raise ConfigurationError("boom")

        reloadable = ReloadableContexts(contexts, fail)  # type: ignore[arg-type]
        self.assertFalse(reloadable.reload())
        self.assertIs(reloadable.current, contexts)

    def test_connectionLimitMustBePositive(self) -> None:
        """
        A cap of zero would never accept anything; it is refused.
        """
        self.assertRaises(ValueError, AcceptLimit, 0)


class SignalTests(SynchronousTestCase):
    """
    The signals an init system sends, to a real C{twistd -n tlsreply}.
    """

    def _start(self, workdir: Path, *arguments: str) -> tuple[Daemon, int]:
        daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
             "--port", "tcp:0:interface=127.0.0.1", *arguments],
            workdir,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        match = daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\]")
        return daemon, int(match.group(1))

    def test_sigtermExitsZero(self) -> None:
        """
        SIGTERM stops tlsreply gracefully and it exits 0.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        daemon, port = self._start(workdir, "--cert", str(certificates.certificatePath),
                                   "--key", str(certificates.keyPath))
        self.assertEqual(fetchWithSSL(port, clientContext(str(certificates.caPath))).data,
                         b"test\n")
        self.assertEqual(daemon.stop(), 0)
        self.assertIn("received SIGTERM: stopping gracefully", "".join(daemon.output))

    def test_sigtermBeforeTheReactorRuns(self) -> None:
        """
        A SIGTERM in the moment between twistd starting the application
        (the port is bound, "listening on" may be logged already) and the
        reactor running is a graceful stop too, not death by the signal:
        an init system that stops a service just after starting it gets
        exit status 0. The launcher runs the real twistd and sends the
        signal exactly there.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        daemon = Daemon(
            [sys.executable, "-c", SIGTERM_BEFORE_THE_REACTOR, "-n", "--pidfile=", "tlsreply",
             "--port", "tcp:0:interface=127.0.0.1",
             "--cert", str(certificates.certificatePath), "--key", str(certificates.keyPath)],
            workdir,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        daemon.waitFor("SIGTERM before the reactor runs")
        daemon.waitFor("received SIGTERM: stopping gracefully")
        self.assertEqual(daemon.process.wait(20), 0)

    def test_sighupBeforeTheReactorRuns(self) -> None:
        """
        A SIGHUP in that same moment (a certificate renewal that signals a
        service as it restarts) is a reload once the reactor runs, not the
        end of the process.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        daemon = Daemon(
            [sys.executable, "-c", signalBeforeTheReactor("SIGHUP"), "-n", "--pidfile=",
             "tlsreply", "--port", "tcp:0:interface=127.0.0.1",
             "--cert", str(certificates.certificatePath), "--key", str(certificates.keyPath)],
            workdir,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        daemon.waitFor("SIGHUP before the reactor runs")
        daemon.waitFor("reloaded: serving 1 certificate")
        self.assertIsNone(daemon.process.poll())
        self.assertEqual(daemon.stop(), 0)

    def test_secondSigtermAbortsAndStillExitsZero(self) -> None:
        """
        A second SIGTERM during the shutdown grace (Ctrl-C twice, an init
        system insisting) aborts the connections still in progress at once,
        and tlsreply still exits 0, with no traceback.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        daemon, port = self._start(workdir, "--cert", str(certificates.certificatePath),
                                   "--key", str(certificates.keyPath),
                                   "--shutdown-grace", "60", "--handshake-timeout", "60")
        idle = socket.create_connection((LOOPBACK, port))
        self.addCleanup(idle.close)
        waitUntilAccepted(idle)
        started = time.monotonic()
        daemon.process.send_signal(signal.SIGTERM)
        daemon.waitFor("waiting up to 60s for 1 connection")
        daemon.process.send_signal(signal.SIGTERM)
        self.assertEqual(daemon.stop(), 0)
        self.assertLess(time.monotonic() - started, 30)
        log = "".join(daemon.output)
        self.assertIn("received SIGTERM again: aborted 1 connection(s)", log)
        self.assertIn("aborted on a second SIGTERM", log)
        self.assertNotIn("Traceback", log)

    def test_sighupReloadsAndSurvivesBadFiles(self) -> None:
        """
        SIGHUP re-reads the certificate files: a replaced certificate is
        served to new clients; a broken file is one error line and the
        previous certificate stays in use; the process keeps running.
        """
        workdir = temporaryDirectory(self)
        first = makeCertificates(workdir / "first")
        second = makeCertificates(workdir / "second")
        live = workdir / "live.pem"
        live.write_bytes(first.certificatePath.read_bytes() + first.keyPath.read_bytes())
        bothCAs = workdir / "both.pem"
        bothCAs.write_bytes(first.caPath.read_bytes() + second.caPath.read_bytes())
        daemon, port = self._start(workdir, "--cert", str(live))
        before = peerCertificateFingerprint(port, str(bothCAs))

        live.write_bytes(second.certificatePath.read_bytes() + second.keyPath.read_bytes())
        daemon.process.send_signal(signal.SIGHUP)
        daemon.waitFor("reloaded: serving 1 certificate")
        after = peerCertificateFingerprint(port, str(bothCAs))
        self.assertNotEqual(before, after)

        live.write_bytes(b"garbage\n")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.waitFor("reload failed, still serving the previous certificates")
        self.assertEqual(peerCertificateFingerprint(port, str(bothCAs)), after)
        self.assertIsNone(daemon.process.poll())
        self.assertEqual(daemon.stop(), 0)

    def test_dropsPrivilegesAfterBinding443(self) -> None:
        """
        Started as root with C{--uid}/C{--gid}, twistd binds port 443 first
        and then runs tlsreply as the unprivileged user.
        """
        if os.geteuid() != 0:
            self.skipTest("binding port 443 and changing user need root")
        probe = socket.socket()
        try:
            probe.bind((LOOPBACK, 443))
        except OSError:
            self.skipTest("port 443 on 127.0.0.1 is in use")
        finally:
            probe.close()
        workdir = temporaryDirectory(self)
        os.chmod(workdir, 0o755)
        certificates = makeCertificates(workdir)
        daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "--uid", "65534",
             "--gid", "65534", "tlsreply", "--port", "tcp:443:interface=127.0.0.1",
             "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath)],
            workdir,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        daemon.waitFor("set uid/gid 65534/65534")
        result = fetchWithSSL(443, clientContext(str(certificates.caPath)))
        self.assertEqual(result.data, b"test\n")
        status = Path(f"/proc/{daemon.process.pid}/status").read_text()
        uid = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")]
        self.assertEqual(uid, [["65534"] * 4])
        self.assertEqual(daemon.stop(), 0)


# The same tests with TLS over memory BIOs (haproxy: and embedders' endpoints).
ConnectionLimitTestsOnMemoryBIO = onMemoryBIO(ConnectionLimitTests)
GracefulStopTestsOnMemoryBIO = onMemoryBIO(GracefulStopTests)
ReloadTestsOnMemoryBIO = onMemoryBIO(ReloadTests)


#: A Python program that starts a L{ServerLifecycle} before its reactor
#: runs (as twistd and twist do), stops it without a signal once the
#: reactor runs (as an application embedding it may), then interrupts
#: itself as Ctrl-C would: the reactor's own SIGINT handling must be back.
EMBEDDED_STOP_THEN_CTRL_C = """
import os, signal, sys
from twisted.internet import reactor
from tlsreply.lifecycle import ServerLifecycle
lifecycle = ServerLifecycle(reactor)
lifecycle.startService()
def stopThenInterrupt():
    lifecycle.stopService()
    print("stopped the lifecycle", flush=True)
    os.kill(os.getpid(), signal.SIGINT)
reactor.callWhenRunning(stopThenInterrupt)
reactor.callLater(10, print, "the reactor was still running 10 s after SIGINT")
reactor.callLater(10, reactor.stop)
reactor.run()
print("the reactor stopped", flush=True)
"""


class EmbeddedSignalTests(TestCase):
    """
    A lifecycle stopped without a signal gives back the handlers it found.
    """

    async def test_handlersGivenBack(self) -> None:
        """
        Started and stopped while the reactor runs, the lifecycle leaves
        SIGTERM, SIGINT and SIGHUP as it found them (it installs its own
        twice, and must not take the second time's for the original).
        """
        await deferLater(reactor, 0, lambda: None)
        self.assertTrue(reactor.running)
        before = {n: signal.getsignal(n) for n in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        lifecycle = ServerLifecycle(reactor)
        lifecycle.startService()
        self.addCleanup(lambda: lifecycle.running and lifecycle.stopService())
        self.assertNotEqual(signal.getsignal(signal.SIGTERM), before[signal.SIGTERM])
        lifecycle.stopService()
        self.assertEqual(
            {n: signal.getsignal(n) for n in before}, before
        )

    def test_ctrlCAfterAnEmbeddedStop(self) -> None:
        """
        Started before the reactor runs and stopped without a signal, the
        lifecycle gives back the reactor's SIGINT handling: a later Ctrl-C
        stops the reactor as usual, without a KeyboardInterrupt traceback.
        """
        result = subprocess.run(
            [sys.executable, "-c", EMBEDDED_STOP_THEN_CTRL_C],
            capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
        )
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        self.assertEqual(result.returncode, 0, output)
        self.assertIn("stopped the lifecycle", output)
        self.assertIn("the reactor stopped", output)
        self.assertNotIn("still running", output)
        self.assertNotIn("KeyboardInterrupt", output)


class DrainTests(SynchronousTestCase):
    """
    A stop request with a drain delay keeps serving for that long (the
    readiness check failing meanwhile) before the graceful stop, on a fake
    clock.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.running = True
        self.drained: list[bool] = []
        self.aborted: list[str] = []

        def abort(name: str) -> str:
            self.aborted.append(name)
            return "aborted 0 connection(s)"

        self.lifecycle = ServerLifecycle(
            self.reactor, abort=abort, drainDelay=5, drain=lambda: self.drained.append(True)
        )

    def test_drainsThenStops(self) -> None:
        self.lifecycle.requestStop("SIGTERM")
        self.assertEqual(self.drained, [True])
        self.reactor.advance(4.9)
        self.assertFalse(self.reactor.hasStopped)
        self.reactor.advance(0.2)
        self.assertTrue(self.reactor.hasStopped)
        self.assertEqual(self.aborted, [])

    def test_secondRequestStopsNowAndThirdAborts(self) -> None:
        self.lifecycle.requestStop("SIGTERM")
        self.lifecycle.requestStop("SIGTERM")
        self.assertTrue(self.reactor.hasStopped)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.lifecycle.requestStop("SIGINT")
        self.assertEqual(self.aborted, ["SIGINT"])

    def test_noDelayStopsAtOnce(self) -> None:
        self.lifecycle.drainDelay = 0
        self.lifecycle.requestStop("SIGTERM")
        self.assertTrue(self.reactor.hasStopped)
        self.assertEqual(self.drained, [])

    def test_stoppedOtherwiseCancelsTheDrain(self) -> None:
        self.lifecycle.startService()
        self.lifecycle.requestStop("SIGTERM")
        self.lifecycle.stopService()
        self.assertEqual(self.reactor.getDelayedCalls(), [])

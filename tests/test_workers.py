"""
C{--workers}: a real C{twistd -n tlsreply --workers 2}, its workers, and
what clients see of them: tickets that resume on any worker (also after a
reload), a killed worker replaced, a clean stop.
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    SSLResult,
    TestCertificates,
    clientContext,
    fetchWithSSL,
    makeCertificates,
    temporaryDirectory,
)
from tests.test_plugin import SCRIPTS, Daemon
from tlsreply.workers import workerCount

#: Connections made with one session: the chance that the kernel sends
#: them all to the worker that issued it is 2 ** -(RESUMPTIONS - 1).
RESUMPTIONS = 16

_ACCESS = re.compile(r"\[tlsreply\.access\.worker(\d)#info\] replied to \S+ (TLSv1\.[23]) .* resumed=(True|False)")


def fingerprint(result: SSLResult) -> str:
    assert result.peerCertificate is not None
    certificate = x509.load_der_x509_certificate(result.peerCertificate)
    return certificate.fingerprint(hashes.SHA256()).hex()


class WorkersTests(SynchronousTestCase):
    """
    Two workers behind one port, as an operator runs them.
    """

    def start(self, certificates: TestCertificates, *arguments: str) -> tuple[Daemon, int]:
        daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
             "--port", "tcp:0:interface=127.0.0.1", "--workers", "2",
             "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath), *arguments],
            certificates.caPath.parent,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        match = daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\] with 2 workers")
        daemon.waitFor(r"worker 2 listening on")
        return daemon, int(match.group(1))

    def workerPids(self, daemon: Daemon) -> dict[int, int]:
        """
        The latest pid of each worker, from the parent's log.
        """
        pids: dict[int, int] = {}
        for line in daemon.output:
            found = re.search(r"started worker (\d) \(pid (\d+)\)", line)
            if found:
                pids[int(found.group(1))] = int(found.group(2))
        return pids

    def served(self, daemon: Daemon, count: int) -> list[tuple[int, str, bool]]:
        """
        Read the log until C{count} more connections are logged; return
        (worker, version, resumed) for each.
        """
        seen: list[tuple[int, str, bool]] = []
        while len(seen) < count:
            match = daemon.waitFor(_ACCESS.pattern)
            seen.append((int(match.group(1)), match.group(2), match.group(3) == "True"))
        return seen

    def resumeOnBothWorkers(self, daemon: Daemon, port: int, context: ssl.SSLContext) -> None:
        """
        Get a session from one worker, then resume it on many connections:
        every one resumes, on both workers.
        """
        first = fetchWithSSL(port, context)
        [(issuer, version, resumed)] = self.served(daemon, 1)
        self.assertFalse(resumed)
        for _ in range(RESUMPTIONS):
            again = fetchWithSSL(port, context, session=first.session)
            self.assertTrue(again.sessionReused)
            self.assertEqual(again.data, b"test\n")
        log = self.served(daemon, RESUMPTIONS)
        self.assertTrue(all(resumed for _, _, resumed in log), log)
        self.assertEqual({worker for worker, _, _ in log}, {1, 2}, log)
        self.assertIn(3 - issuer, {worker for worker, _, _ in log})

    def test_ticketsResumeOnEveryWorker(self) -> None:
        """
        A session ticket issued by one worker resumes on the other, with
        TLS 1.3 and TLS 1.2: the workers were forked after the contexts
        (and their ticket keys) were made.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        daemon, port = self.start(certificates)
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            context = clientContext(str(certificates.caPath))
            context.maximum_version = context.minimum_version = version
            self.resumeOnBothWorkers(daemon, port, context)
        self.assertEqual(daemon.stop(), 0)

    def test_aDeadWorkerIsReplaced(self) -> None:
        """
        A worker killed with SIGKILL is replaced by a new one on the same
        socket; clients are served throughout.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        daemon, port = self.start(certificates)
        killed = self.workerPids(daemon)[1]
        os.kill(killed, signal.SIGKILL)
        daemon.waitFor(r"worker 1 \(pid \d+\) killed by SIGKILL")
        daemon.waitFor(r"started worker 1 \(pid \d+\)")
        self.assertNotEqual(self.workerPids(daemon)[1], killed)
        context = clientContext(str(certificates.caPath))
        for _ in range(8):
            self.assertEqual(fetchWithSSL(port, context).data, b"test\n")
        self.assertEqual(daemon.stop(), 0)

    def test_reloadReplacesWorkers(self) -> None:
        """
        SIGHUP makes the parent load the new certificate and replace both
        workers: new clients get the new certificate, and tickets from the
        new workers resume on either of them.
        """
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory)
        daemon, port = self.start(certificates)
        context = clientContext(str(certificates.caPath))
        before = fingerprint(fetchWithSSL(port, context))
        self.served(daemon, 1)
        old = self.workerPids(daemon)
        renewed = certificates.ca.issue_cert("localhost", "127.0.0.1")
        certificates.certificatePath.write_bytes(
            b"".join(p.bytes() for p in renewed.cert_chain_pems)
        )
        renewed.private_key_pem.write_to_path(str(certificates.keyPath))
        daemon.process.send_signal(signal.SIGHUP)
        daemon.waitFor(r"replacing 2 workers")
        for _ in range(2):
            daemon.waitFor(r"tlsreply worker \d stopped")
        self.assertEqual(set(self.workerPids(daemon).values()) & set(old.values()), set())
        self.assertNotEqual(fingerprint(fetchWithSSL(port, context)), before)
        self.served(daemon, 1)
        self.resumeOnBothWorkers(daemon, port, context)
        self.assertEqual(daemon.stop(), 0)

    def test_stopEndsEveryWorker(self) -> None:
        """
        SIGTERM stops both workers gracefully and the parent exits 0; no
        worker is left running.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        daemon, port = self.start(certificates)
        pids = self.workerPids(daemon)
        self.assertEqual(daemon.stop(), 0)
        time.sleep(0.1)
        for pid in pids.values():
            with self.assertRaises(ProcessLookupError):
                os.kill(pid, 0)
        self.assertIn("stopping 2 workers", "".join(daemon.output))


class WorkerCountTests(SynchronousTestCase):
    """
    What C{--workers} accepts.
    """

    def test_values(self) -> None:
        """
        A whole number from 1, or C{auto} for one per CPU this process may
        use; anything else is refused.
        """
        self.assertEqual(workerCount("3"), 3)
        self.assertEqual(workerCount("auto"), len(os.sched_getaffinity(0)))
        for bad in ("0", "-1", "two", "1.5", ""):
            self.assertRaises(ValueError, workerCount, bad)



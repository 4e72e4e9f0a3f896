"""
C{--workers}: a real C{twistd -n tlsreply --workers 2}, its workers, and
what clients see of them: tickets that resume on any worker (also after a
reload), a killed worker replaced, a clean stop, a Unix socket that
outlives a reload, workers that hold none of the parent's other sockets
and stop when it dies.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import ssl
import stat
import sys
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    LOOPBACK,
    SSLResult,
    TestCertificates,
    clientContext,
    fetchWithSSL,
    makeCertificates,
    temporaryDirectory,
    waitUntilAccepted,
)
from tests.test_plugin import SCRIPTS, Daemon
from tests.test_unixpaths import fetchOverUnix
from tlsreply.workers._cpulimit import cgroupCPULimit, quotaCPUs
from tlsreply.workers.supervisor import (
    KILL_AFTER_GRACE,
    MAXIMUM_PAUSE,
    PARENT_CHECK_INTERVAL,
    Worker,
    WorkerPool,
    _ParentWatch,
    workerCount,
)

#: Connections made with one session: the chance that the kernel sends
#: them all to the worker that issued it is 2 ** -(RESUMPTIONS - 1).
RESUMPTIONS = 16

_ACCESS = re.compile(r"\[tlsreply\.access\.worker(\d)#info\] replied to \S+ (TLSv1\.[23]) .* resumed=(True|False)")


def fingerprint(result: SSLResult) -> str:
    assert result.peerCertificate is not None
    certificate = x509.load_der_x509_certificate(result.peerCertificate)
    return certificate.fingerprint(hashes.SHA256()).hex()


def tcpSocketInodes(port: int) -> set[int]:
    """
    The inodes of this host's IPv4 TCP sockets on local port C{port}: the
    listening one and the connections it accepted.
    """
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            inodes.add(int(fields[9]))
    return inodes


def openSocketInodes(pid: int) -> set[int]:
    """
    The inodes of the sockets process C{pid} holds open.
    """
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def hasExited(pid: int) -> bool:
    """
    Whether process C{pid} has exited: gone, or a zombie (an orphan's new
    parent may not reap it).
    """
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return status.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def waitForExit(pids: list[int], timeout: float = 20.0) -> list[int]:
    """
    Wait, up to C{timeout}, for the processes to exit; return those that
    have not.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(hasExited(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if not hasExited(p)]


class WorkersTests(SynchronousTestCase):
    """
    Two workers behind one port, as an operator runs them.
    """

    def start(
        self,
        certificates: TestCertificates,
        *arguments: str,
        environment: dict[str, str] | None = None,
    ) -> tuple[Daemon, int]:
        daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
             "--port", "tcp:0:interface=127.0.0.1", "--workers", "2",
             "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath), *arguments],
            certificates.caPath.parent,
            environment,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        match = daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\] with 2 workers")
        # Both workers, in whichever order they say so: a test that kills
        # worker 1 before it listened would wait for a line that never
        # comes.
        self.waitForListening(daemon, 2)
        return daemon, int(match.group(1))

    def waitForListening(self, daemon: Daemon, total: int) -> None:
        """
        Read the log until C{total} workers in all have said they listen
        (each does once it has adopted its sockets and closed the
        parent's).
        """
        pattern = r"tlsreply worker \d listening on"
        while sum(bool(re.search(pattern, line)) for line in daemon.output) < total:
            daemon.waitFor(pattern)

    def killWorkersAtEnd(self, daemon: Daemon) -> None:
        """
        Kill, at the end of the test, any worker still running (so that a
        failure leaves no orphan behind).
        """

        def kill() -> None:
            for pid in self.workerPids(daemon).values():
                if not hasExited(pid):
                    os.kill(pid, signal.SIGKILL)

        self.addCleanup(kill)

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

    def test_sigtermAtAWorkersBirthIsNotLost(self) -> None:
        """
        A SIGTERM that reaches a worker at the instant it is forked (the
        parent stopping just after a reload or a replacement started it) is
        kept until the worker's own handlers are in place, which then stop
        it gracefully: it is never handled by the parent's handlers copied
        into the child (whose reactor never runs there), which would lose
        it and leave the worker serving until the parent killed it after
        the grace. The launcher runs the real twistd, and the first worker
        signals itself as C{fork} returns.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        launcher = (
            "import os, signal, sys\n"
            "from twisted.scripts import twistd\n"
            "fork = os.fork\n"
            "forked = []\n"
            "def forkThenSignal():\n"
            "    pid = fork()\n"
            "    if pid == 0 and not forked:\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "    forked.append(pid)\n"
            "    return pid\n"
            "os.fork = forkThenSignal\n"
            "sys.argv[0] = 'twistd'\n"
            "twistd.run()\n"
        )
        daemon = Daemon(
            [sys.executable, "-c", launcher, "-n", "--pidfile=", "tlsreply",
             "--port", "tcp:0:interface=127.0.0.1", "--workers", "2",
             "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath)],
            certificates.caPath.parent,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        self.killWorkersAtEnd(daemon)
        daemon.waitFor(r"worker 1 \(pid \d+\) exited with status 0 after", timeout=10)
        daemon.waitFor(r"started worker 1 \(pid \d+\)")
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
        # The parent exits once its workers have: none may be left.
        self.assertEqual([pid for pid in pids.values() if not hasExited(pid)], [])
        self.assertIn("stopping 2 workers", "".join(daemon.output))


    def test_ctrlCIsOneGracefulStop(self) -> None:
        """
        Ctrl-C at a terminal sends SIGINT to every process of the
        foreground group, the workers included: it is one graceful stop
        (the parent stops each worker with SIGTERM), not a graceful stop
        followed by the parent's SIGTERM as a second signal, which would
        abort the connections in progress at once.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        daemon, port = self.start(certificates, "--shutdown-grace", "2")
        self.killWorkersAtEnd(daemon)
        idle = [socket.create_connection((LOOPBACK, port)) for _ in range(8)]
        for client in idle:
            self.addCleanup(client.close)
            waitUntilAccepted(client)
        for pid in (*self.workerPids(daemon).values(), daemon.process.pid):
            os.kill(pid, signal.SIGINT)
        rest, _ = daemon.process.communicate(timeout=20)
        self.assertEqual(daemon.process.returncode, 0)
        log = "".join(daemon.output) + rest.decode("utf-8", "replace")
        self.assertIn("stopped listening; waiting up to 2s for", log)
        self.assertNotIn("aborted on a second", log)

    def test_stopKillsAWorkerThatDoesNotStop(self) -> None:
        """
        A worker that does not stop on SIGTERM (here: stopped with SIGSTOP,
        as a hung one would be) is killed once the shutdown grace and
        L{KILL_AFTER_GRACE} have passed, and the parent then exits 0: the
        stop never hangs. (The parent used to wait for ever: the worker's
        exit tried to cancel the kill timer, which had already run.)
        """
        certificates = makeCertificates(temporaryDirectory(self))
        daemon, port = self.start(certificates, "--shutdown-grace", "1")
        self.killWorkersAtEnd(daemon)
        stuck = self.workerPids(daemon)[1]
        os.kill(stuck, signal.SIGSTOP)
        started = time.monotonic()
        self.assertEqual(daemon.stop(), 0)
        self.assertGreaterEqual(time.monotonic() - started, 1 + KILL_AFTER_GRACE - 0.5)
        log = "".join(daemon.output)
        self.assertIn(
            f"worker 1 (pid {stuck}) still running {1 + KILL_AFTER_GRACE:g}s after SIGTERM: "
            "killing it", log,
        )
        self.assertIn(f"worker 1 (pid {stuck}) stopped with status -9", log)
        self.assertTrue(hasExited(stuck))

    def test_noClientRefusedWhileAWorkerIsReplaced(self) -> None:
        """
        Clients that were waiting in a worker's queue when it was killed
        (it was stopped, so they stayed unaccepted), and clients that
        connect while it is being replaced, are all served: the parent
        holds the dead worker's socket open until its replacement adopts
        it.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        daemon, port = self.start(certificates)
        self.killWorkersAtEnd(daemon)
        context = clientContext(str(certificates.caPath))
        victim = self.workerPids(daemon)[1]
        os.kill(victim, signal.SIGSTOP)
        # The kernel spreads these over both workers' sockets: those sent
        # to worker 1 wait in its queue (all but a chance of 2 ** -16).
        waiting = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(16)]
        for client in waiting:
            self.addCleanup(client.close)

        during: list[bytes | BaseException] = []
        replaced = threading.Event()

        def connectMeanwhile() -> None:
            while not replaced.is_set() or not during:
                try:
                    during.append(fetchWithSSL(port, context, timeout=30).data)
                except (OSError, ssl.SSLError) as e:
                    during.append(e)

        meanwhile = threading.Thread(target=connectMeanwhile)
        os.kill(victim, signal.SIGKILL)
        meanwhile.start()
        try:
            daemon.waitFor(r"worker 1 \(pid \d+\) killed by SIGKILL")
            daemon.waitFor(r"started worker 1 \(pid \d+\)")
            self.waitForListening(daemon, 3)
        finally:
            replaced.set()
            meanwhile.join(60)
        self.assertEqual([d for d in during if d != b"test\n"], [])
        replies = []
        for client in waiting:
            with context.wrap_socket(client, server_hostname="localhost") as tls:
                replies.append(tls.recv(100))
        self.assertEqual(replies, [b"test\n"] * len(waiting))
        self.assertEqual(daemon.stop(), 0)

    def test_workersHoldNoSocketOfTheParent(self) -> None:
        """
        The C{--metrics} port, and the connections it accepted, are open in
        the parent only: a worker closes them right after C{fork}, also one
        forked while a scrape's connection is open.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        daemon, port = self.start(certificates, "--metrics", "tcp:0:interface=127.0.0.1")
        self.killWorkersAtEnd(daemon)
        [metricsPort] = [
            int(m.group(1)) for line in daemon.output
            if (m := re.search(r"metrics on 127\.0\.0\.1:(\d+)", line))
        ]
        scrape = http.client.HTTPConnection("127.0.0.1", metricsPort, timeout=10)
        self.addCleanup(scrape.close)
        scrape.request("GET", "/live")
        response = scrape.getresponse()
        response.read()  # the connection stays open (HTTP/1.1)
        self.assertEqual(response.status, 200)
        # A worker forked now, with the scrape's connection still open.
        os.kill(self.workerPids(daemon)[1], signal.SIGKILL)
        daemon.waitFor(r"started worker 1 \(pid \d+\)")
        self.waitForListening(daemon, 3)

        parentSockets = tcpSocketInodes(metricsPort)
        self.assertEqual(len(parentSockets), 2)  # listening, and the scrape
        self.assertLessEqual(parentSockets, openSocketInodes(daemon.process.pid))
        for number, pid in self.workerPids(daemon).items():
            self.assertEqual(openSocketInodes(pid) & parentSockets, set(), f"worker {number}")
        self.assertEqual(fetchWithSSL(port, clientContext(str(certificates.caPath))).data, b"test\n")
        self.assertEqual(daemon.stop(), 0)

    def test_workersStopWhenTheParentDies(self) -> None:
        """
        After a SIGKILL of the parent, its metrics port refuses connections
        at once (no worker holds it), and the workers notice that their
        parent has gone and stop gracefully by themselves, which frees the
        TLS port too. The parent could not remove its metrics folder: the
        next server to start in the same temporary folder does.
        """
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory)
        # The metrics folder in the test's own folder, not in /tmp.
        temporary = directory / "tmp"
        temporary.mkdir()
        environment = {"TMPDIR": str(temporary)}
        daemon, port = self.start(
            certificates, "--metrics", "tcp:0:interface=127.0.0.1", environment=environment
        )
        self.killWorkersAtEnd(daemon)
        [metricsPort] = [
            int(m.group(1)) for line in daemon.output
            if (m := re.search(r"metrics on 127\.0\.0\.1:(\d+)", line))
        ]
        [folder] = [
            Path(m.group(1)) for line in daemon.output
            if (m := re.search(r"metrics of the workers in (\S+)", line))
        ]
        self.assertEqual(folder.parent, temporary)
        parent = daemon.process.pid
        workers = self.workerPids(daemon)
        daemon.process.kill()
        daemon.process.wait(timeout=10)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", metricsPort), timeout=10).close()

        self.assertEqual(waitForExit(list(workers.values())), [])
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=10).close()
        daemon.stop()  # reads the rest of the log
        log = "".join(daemon.output)
        for number in workers:
            self.assertIn(
                f"worker {number}: the parent (pid {parent}) has exited; stopping", log
            )
            self.assertIn(f"tlsreply worker {number} stopped", log)

        self.assertTrue(folder.is_dir())
        again, _ = self.start(
            certificates, "--metrics", "tcp:0:interface=127.0.0.1", environment=environment
        )
        self.killWorkersAtEnd(again)
        self.assertFalse(folder.exists())
        self.assertIn(
            f"removed the metrics folder {folder} of tlsreply pid {parent}, which has exited",
            "".join(again.output),
        )
        self.assertEqual(again.stop(), 0)
        self.assertEqual(list(temporary.iterdir()), [])

    def test_unixSocketOutlivesReload(self) -> None:
        """
        On a C{unix:} address, the workers that SIGHUP replaces leave the
        path (and its mode) alone when they stop: the new workers serve
        clients on it. The parent, which bound the path, removes it when it
        exits.
        """
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory)
        path = directory / "tlsreply.sock"
        daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
             "--port", f"unix:{path}:mode=600", "--workers", "2",
             "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath)],
            directory,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        self.killWorkersAtEnd(daemon)
        daemon.waitFor(r"listening on \['unix:.*'\] with 2 workers")
        self.waitForListening(daemon, 2)
        caPath = str(certificates.caPath)
        self.assertEqual(fetchOverUnix(path, caPath), b"test\n")

        daemon.process.send_signal(signal.SIGHUP)
        daemon.waitFor(r"replacing 2 workers")
        for _ in range(2):
            daemon.waitFor(r"tlsreply worker \d stopped")
        self.waitForListening(daemon, 4)
        self.assertTrue(stat.S_ISSOCK(path.stat().st_mode))
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        for _ in range(4):
            self.assertEqual(fetchOverUnix(path, caPath), b"test\n")

        self.assertEqual(daemon.stop(), 0)
        self.assertFalse(path.exists())


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
        noCgroup = str(temporaryDirectory(self))
        self.assertEqual(
            workerCount("auto", noCgroup, os.devnull), len(os.sched_getaffinity(0))
        )
        for bad in ("0", "-1", "two", "1.5", ""):
            self.assertRaises(ValueError, workerCount, bad)

    def test_quotaCPUs(self) -> None:
        """
        A cgroup v2 C{cpu.max} allows its quota over its period in CPUs,
        rounded up, at least 1; C{max}, or anything that is not a quota,
        is no limit.
        """
        self.assertEqual(quotaCPUs("100000 100000\n"), 1)
        self.assertEqual(quotaCPUs("150000 100000\n"), 2)
        self.assertEqual(quotaCPUs("400000 100000"), 4)
        self.assertEqual(quotaCPUs("1000 100000"), 1)
        for none in ("max 100000\n", "max", "", "garbage", "1.5 1", "-1 100000",
                     "0 100000", "100000 0", "1 2 3", "\x00\xff"):
            self.assertIsNone(quotaCPUs(none), none)

    def cgroup(self, membership: str, limits: dict[str, str]) -> tuple[str, str]:
        """
        A cgroup v2 mount in a test folder, with C{cpu.max} files by cgroup
        path, and a file naming this process's cgroup.
        """
        root = temporaryDirectory(self)
        for cgroup, text in limits.items():
            folder = root / cgroup.strip("/")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "cpu.max").write_text(text)
        (root / "membership").write_text(membership)
        return str(root), str(root / "membership")

    def test_cgroupCPULimit(self) -> None:
        """
        The CPU limit is the smallest quota of the process's cgroup and its
        ancestors (a container's own namespace, C{0::/}, reads the root's);
        none without a quota, without the files, or with garbage in them.
        """
        inContainer = self.cgroup("0::/\n", {"/": "150000 100000\n"})
        self.assertEqual(cgroupCPULimit(*inContainer), 2)
        unit = self.cgroup(
            "0::/system.slice/tlsreply.service\n",
            {"/system.slice": "300000 100000\n", "/system.slice/tlsreply.service": "max 100000\n"},
        )
        self.assertEqual(cgroupCPULimit(*unit), 3)
        self.assertIsNone(cgroupCPULimit(*self.cgroup("0::/\n", {"/": "max 100000\n"})))
        self.assertIsNone(cgroupCPULimit(*self.cgroup("0::/\n", {"/": "garbage\n"})))
        self.assertIsNone(cgroupCPULimit(*self.cgroup("0::/\n", {})))
        missing = str(temporaryDirectory(self) / "missing")
        self.assertIsNone(cgroupCPULimit(missing, missing))

    def test_autoRespectsQuota(self) -> None:
        """
        C{auto} is the smaller of the CPUs this process may run on and its
        cgroup's quota: a Kubernetes pod limited to one CPU runs one
        worker, whatever the node has; a quota above the CPUs changes
        nothing.
        """
        cpus = len(os.sched_getaffinity(0))
        self.assertEqual(workerCount("auto", *self.cgroup("0::/\n", {"/": "100000 100000\n"})), 1)
        self.assertEqual(workerCount("auto", *self.cgroup("0::/\n", {"/": "50000 100000\n"})), 1)
        self.assertEqual(
            workerCount("auto", *self.cgroup("0::/\n", {"/": f"{(cpus + 4) * 100000} 100000"})),
            cpus,
        )




class _ForklessPool(WorkerPool):
    """
    A L{WorkerPool} whose workers are only records: C{_fork} makes none, so
    that its supervision (when to replace a worker that died) runs in
    memory, on a clock the test controls.
    """

    def __init__(self, clock: Clock) -> None:
        super().__init__(
            1, ["tcp:0"], None, None, clock, 5.0, None,  # type: ignore[arg-type]
            now=clock.seconds,
        )
        self.forked: list[Worker] = []

    def _fork(self, slot: int) -> Worker:
        worker = Worker(slot, 100000 + len(self.forked), self._now())
        self.workers[worker.pid] = worker
        self.forked.append(worker)
        return worker


class ReplacementPauseTests(SynchronousTestCase):
    """
    The pause before a dead worker's replacement, on a fake clock.
    """

    def dieAfter(self, pool: _ForklessPool, clock: Clock, lived: float) -> float:
        """
        Let the pool's latest worker live C{lived} seconds and die; return
        the pause before its replacement, which has been started once this
        returns (and not a moment sooner).
        """
        worker = pool.forked[-1]
        clock.advance(lived)
        pool._exited(worker, reaped=True)
        [replacement] = clock.getDelayedCalls()
        pause = replacement.getTime() - clock.seconds()
        clock.advance(pause * 0.99)
        self.assertEqual(pool.forked[-1], worker, "replaced before the pause ended")
        clock.advance(pause * 0.01)
        self.assertNotEqual(pool.forked[-1], worker, "not replaced after the pause")
        self.assertEqual(clock.getDelayedCalls(), [])
        return pause

    def test_pauseDoublesUpTo30Seconds(self) -> None:
        """
        Workers that keep dying soon after they start are replaced after a
        pause that doubles each time, from 0.2 s, and stops growing at
        30 s; once a replacement has lived 5 s or more, its death is
        followed by the shortest pause again.
        """
        clock = Clock()
        pool = _ForklessPool(clock)
        pool._fork(0)
        pauses = [self.dieAfter(pool, clock, 1.0) for _ in range(11)]
        self.assertEqual(
            [round(p, 6) for p in pauses],
            [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0, 30.0],
        )
        self.assertEqual(round(self.dieAfter(pool, clock, 5.0), 6), 0.1)
        self.assertEqual(round(self.dieAfter(pool, clock, 1.0), 6), 0.2)

    def test_noReplacementWhileStopping(self) -> None:
        """
        A worker that dies while the pool stops is not replaced, and a
        pending replacement is cancelled by the stop.
        """
        clock = Clock()
        pool = _ForklessPool(clock)
        pool._fork(0)
        clock.advance(1.0)
        pool._exited(pool.forked[-1], reaped=True)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        pool.stopService()
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(MAXIMUM_PAUSE)
        self.assertEqual(len(pool.forked), 1)


class ParentWatchTests(SynchronousTestCase):
    """
    A worker notices that its parent has gone within a second, on a fake
    clock.
    """

    def test_stopsWithinASecondOfTheParentsDeath(self) -> None:
        """
        While C{getppid} is the parent the worker was forked from, the
        worker runs on; once it is not (the parent died and the worker was
        re-parented), the worker stops at the next check, at most
        L{PARENT_CHECK_INTERVAL} (1 s) later, and only once.
        """
        self.assertEqual(PARENT_CHECK_INTERVAL, 1.0)
        clock = Clock()
        stops: list[None] = []
        parent = [os.getppid()]
        self.patch(os, "getppid", lambda: parent[0])
        watch = _ParentWatch(clock, os.getppid(), 1, lambda: stops.append(None))
        watch.start()
        clock.pump([1.0] * 5)
        self.assertEqual(stops, [])
        clock.advance(0.5)
        parent[0] = 1  # the parent died: init (or a subreaper) adopted us
        clock.advance(0.49)
        self.assertEqual(stops, [])
        clock.advance(0.01)
        self.assertEqual(stops, [None])
        clock.pump([1.0] * 5)
        self.assertEqual(stops, [None])

"""
The workers' metrics folder over a long life: the files of workers that
have exited are merged into one per kind, so that replacing workers (every
SIGHUP) does not make the folder, and each scrape, grow; counters never go
down nor count twice while that happens; and the folder of a parent that
died is removed when the next server starts. With real forked processes
writing through C{prometheus_client}, and a real C{twistd}.
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    clientContext,
    fetchWithSSL,
    makeCertificates,
    temporaryDirectory,
)
from tests.test_metrics import WorkersDaemon, scrape
from tests.test_workers import hasExited
from tlsreply.metrics.counting import ConnectionMetrics
from tlsreply.metrics.multiprocess import (
    MultiprocessFiles,
    WorkerFilesCollector,
    useMultiprocessFiles,
)

#: The labels of the handshakes a fake worker counts.
LABELS = ("TLSv1.3", "TLS_AES_128_GCM_SHA256", "x25519", "false")


def forkWorker(folder: Path, handshakes: int) -> int:
    """
    Fork a process that writes metrics into C{folder} as a worker does
    (C{prometheus_client}'s multiprocess files, from L{ConnectionMetrics}):
    C{handshakes} handshakes, as many duration observations, a tenth of a
    second paused, one connection in progress. Return its pid once it has
    written them; it then waits to be killed.
    """
    readyReading, readyWriting = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        try:
            os.close(readyReading)
            useMultiprocessFiles(folder)
            metrics = ConnectionMetrics(5, multiprocess=True)
            metrics.handshakes.labels(*LABELS).inc(handshakes)
            for _ in range(handshakes):
                metrics.duration.observe(0.0123)
            metrics.acceptPausedSeconds.inc(0.1)
            metrics.inProgress.inc()
            os.write(readyWriting, b"1")
            while True:
                time.sleep(60)
        finally:
            os._exit(1)
    os.close(readyWriting)
    try:
        if os.read(readyReading, 1) != b"1":
            os.waitpid(pid, 0)
            raise AssertionError("the fake worker failed")
    finally:
        os.close(readyReading)
    return pid


def totals(registry: CollectorRegistry) -> dict[str, float]:
    """
    The values a scrape would show, by sample name and labels.
    """
    found: dict[str, float] = {}
    for family in registry.collect():
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}"] = sample.value
    return found


def handshakeTotal(values: dict[str, float]) -> float:
    return sum(v for k, v in values.items() if k.startswith("tlsreply_handshakes_total{"))


class ReplacedWorkersTests(SynchronousTestCase):
    """
    Workers that come and go, as SIGHUP and killed workers make them, read
    by the parent's collector.
    """

    def setUp(self) -> None:
        self.files = MultiprocessFiles(temporaryDirectory(self))
        self.files.startService()
        self.addCleanup(self.files.remove)
        assert self.files.path is not None
        self.folder = self.files.path
        self.registry = CollectorRegistry()
        self.files.addCollector(self.registry)
        self.live: list[int] = []
        #: The handshakes of every worker started, counted before its fork.
        self.started = 0

        def endAll() -> None:
            while self.live:
                self.endOldest()

        self.addCleanup(endAll)

    def start(self, handshakes: int) -> None:
        self.started += handshakes
        self.live.append(forkWorker(self.folder, handshakes))

    def endOldest(self) -> None:
        """
        End the oldest live worker and tell the files, as the pool does.
        """
        pid = self.live.pop(0)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        self.files.processDied(pid)

    def replaceWorkers(self, rounds: int, observe: Callable[[int], None]) -> int:
        """
        Keep two workers, and replace the older one C{rounds} times; call
        C{observe} with the handshakes counted so far after each. Return
        the handshakes counted.
        """
        counted = 0
        for handshakes in (3, 4):
            self.start(handshakes)
            counted += handshakes
        for index in range(rounds):
            handshakes = index % 5 + 1
            self.start(handshakes)
            counted += handshakes
            self.endOldest()
            observe(counted)
        return counted

    def test_filesStayFew(self) -> None:
        """
        After 60 replacements, the folder holds the files of the two live
        workers (a counter, a histogram and a gauge file each) and one
        archive per kind that adds up: no more. Every value a scrape shows
        is exactly what all the workers, exited ones included, counted.
        """
        limit = 2 * 3 + 2
        sizes: list[int] = []

        def observe(counted: int) -> None:
            sizes.append(len(list(self.folder.glob("*.db"))))
            values = totals(self.registry)
            self.assertEqual(handshakeTotal(values), counted)
            self.assertEqual(values["tlsreply_handshake_duration_seconds_count{}"], counted)
            self.assertEqual(values["tlsreply_connections_in_progress{}"], 2)

        counted = self.replaceWorkers(60, observe)
        self.assertLessEqual(max(sizes), limit, sizes)
        self.assertEqual(
            sorted(p.name for p in self.folder.iterdir() if "archive" in p.name),
            ["counter_archive.db", "histogram_archive.db"],
        )
        values = totals(self.registry)
        self.assertAlmostEqual(
            values["tlsreply_accept_paused_seconds_total{}"], 0.1 * 62, places=9
        )
        self.assertAlmostEqual(
            values["tlsreply_handshake_duration_seconds_sum{}"], 0.0123 * counted, places=9
        )
        self.assertEqual(values["tlsreply_handshake_duration_seconds_bucket{le=0.025}"], counted)

    def test_scrapesDuringMergesStayMonotonic(self) -> None:
        """
        Scrapes from another thread (as a server that renders off the
        reactor does) while workers are replaced: every counter only goes
        up, and never past what the workers started so far have counted
        (no file is read twice, merged and not yet removed).
        """
        seen: list[tuple[float, int]] = []
        done = threading.Event()

        def scrapeInALoop() -> None:
            while not done.is_set():
                value = handshakeTotal(totals(self.registry))
                seen.append((value, self.started))

        scraper = threading.Thread(target=scrapeInALoop)
        scraper.start()
        try:
            self.replaceWorkers(40, lambda counted: None)
        finally:
            done.set()
            scraper.join()
        self.assertGreater(len(seen), 10)
        values = [value for value, _ in seen]
        self.assertEqual(values, sorted(values))
        self.assertEqual([(v, c) for v, c in seen if v > c], [])

    def test_countersNeverGoBackByARounding(self) -> None:
        """
        A float counter added up in another order (a worker's value merged
        into the archive, then the archive added to the others) can come
        out an ulp lower, which Prometheus would take for a counter reset:
        the collector never reports less than it reported before.
        """
        folder = temporaryDirectory(self)
        key = mmap_key(
            "tlsreply_accept_paused_seconds", "tlsreply_accept_paused_seconds_total",
            [], [], "Seconds.",
        )

        def write(value: float) -> None:
            written = MmapedDict(str(folder / "counter_101.db"))
            written.write_value(key, value, 0.0)
            written.close()

        collector = WorkerFilesCollector(str(folder))
        write(0.30000000000000004)
        [first] = collector.collect()
        write(0.3)
        [second] = collector.collect()
        self.assertEqual([s.value for s in second.samples], [s.value for s in first.samples])


def fakeFolder(
    parent: Path,
    pid: int,
    workerPids: tuple[int, ...] = (),
    suffix: str = "abc123_x",
    namespace: int | None = None,
) -> Path:
    """
    A metrics folder as a parent with pid C{pid} makes it, with a counter
    file for each of C{workerPids}; in this process's pid namespace unless
    another is given.
    """
    if namespace is None:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    folder = parent / f"tlsreply-metrics-{pid}-{namespace}-{suffix}"
    folder.mkdir(mode=0o700)
    for worker in workerPids:
        (folder / f"counter_{worker}.db").write_bytes(b"\0" * 16)
    return folder


def deadPid() -> int:
    """
    The pid of a process that has exited (and been reaped).
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


class StaleFolderTests(SynchronousTestCase):
    """
    A parent killed with SIGKILL cannot remove its folder: the next server
    to start in the same temporary folder does.
    """

    def test_removedAtStart(self) -> None:
        """
        The folder of a parent that has exited, whose workers have exited
        too, is removed as the next server starts (also a parent that is a
        zombie no one reaps, as in a container); the folders of a live
        parent, of a dead parent with a live worker, of a pid in another
        pid namespace (another container's, whose pids mean nothing here),
        and a symbolic link with a folder's name (and what it points to)
        stay.
        """
        parent = temporaryDirectory(self)
        sleeper = os.fork()
        if sleeper == 0:  # pragma: no cover (the child)
            time.sleep(60)
            os._exit(0)

        def reap() -> None:
            os.kill(sleeper, signal.SIGKILL)
            os.waitpid(sleeper, 0)

        self.addCleanup(reap)
        zombie = os.fork()
        if zombie == 0:  # pragma: no cover (the child)
            os._exit(0)
        self.addCleanup(os.waitpid, zombie, 0)
        while not hasExited(zombie):
            time.sleep(0.01)
        dead = deadPid()
        stale = fakeFolder(parent, dead, (deadPid(), deadPid()))
        ofAZombie = fakeFolder(parent, zombie, (zombie,))
        alive = fakeFolder(parent, sleeper)
        stillWritten = fakeFolder(parent, dead, (deadPid(), sleeper), suffix="still")
        ofAnotherNamespace = fakeFolder(parent, dead, suffix="other", namespace=1)
        victim = parent / "victim"
        victim.mkdir()
        (victim / "counter_1.db").write_bytes(b"keep")
        link = parent / f"tlsreply-metrics-{dead}-{os.stat('/proc/self/ns/pid').st_ino}-link"
        link.symlink_to(victim)

        files = MultiprocessFiles(parent)
        files.startService()
        self.addCleanup(files.remove)
        self.assertFalse(stale.exists())
        self.assertFalse(ofAZombie.exists())
        self.assertTrue(alive.is_dir())
        self.assertTrue(stillWritten.is_dir())
        self.assertTrue(ofAnotherNamespace.is_dir())
        self.assertTrue(link.is_symlink())
        self.assertEqual((victim / "counter_1.db").read_bytes(), b"keep")
        assert files.path is not None
        namespace = os.stat("/proc/self/ns/pid").st_ino
        self.assertTrue(
            files.path.name.startswith(f"tlsreply-metrics-{os.getpid()}-{namespace}-")
        )


class ReloadingDaemonTests(SynchronousTestCase):
    """
    A real C{twistd -n tlsreply --workers 2 --metrics ...}, reloaded again
    and again.
    """

    def test_reloadsKeepTheFolderSmall(self) -> None:
        """
        Each SIGHUP replaces both workers; after six, the folder holds the
        live workers' files and the archives only, and the handshakes a
        scrape counts went only up, to exactly the connections made.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        server = WorkersDaemon(self, certificates)
        daemon = server.daemon
        context: ssl.SSLContext = clientContext(str(certificates.caPath))
        made = 0
        seen: list[float] = []
        sizes: list[int] = []
        for _ in range(6):
            for _ in range(3):
                self.assertEqual(fetchWithSSL(server.port, context).data, b"test\n")
            made += 3
            seen.append(server.waitForHandshakes(made))
            daemon.process.send_signal(signal.SIGHUP)
            daemon.waitFor(r"replacing 2 workers")
            for _ in range(2):
                daemon.waitFor(r"tlsreply worker \d stopped")
            seen.append(server.handshakes())
            # The parent merges a worker's files as it reaps it, right
            # after the worker's last line.
            deadline = time.monotonic() + 10
            while len(list(server.folder.glob("*.db"))) > 8 and time.monotonic() < deadline:
                time.sleep(0.05)
            sizes.append(len(list(server.folder.glob("*.db"))))
        seen.append(server.waitForHandshakes(made))
        self.assertEqual(seen, sorted(seen))
        self.assertEqual(seen[-1], made)
        self.assertLessEqual(max(sizes), 8, sizes)
        samples = scrape(server.metricsPort)
        self.assertEqual(
            sum(v for (name, _), v in samples.items() if name == "tlsreply_replies_total"), made
        )
        self.assertEqual(daemon.stop(), 0)
        log = "".join(daemon.output)
        self.assertNotIn("Traceback", log)
        self.assertIsNone(re.search(r"cannot merge", log), log)

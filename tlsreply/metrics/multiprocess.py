# -*- test-case-name: tests.test_metrics, tests.test_metricsfiles -*-
"""
One scrape for every worker of C{--workers N}: C{prometheus_client}'s
multiprocess mode.

The parent makes a private folder (mode 0700, L{folderPrefix}C{*} in
the temporary folder: its pid and pid namespace) for the workers' metric files
when its services start: under C{twistd --uid}, after twistd dropped its
privileges, so the folder belongs to the user the workers run as (made
before, by root, no worker could write to it). Each worker, right after
C{fork}, points C{PROMETHEUS_MULTIPROC_DIR} at it and makes its metrics
there: every value is written to a memory-mapped file of the worker's own
(C{counter_PID.db}, ...) as it is published (every second, see
L{tlsreply.instrumentation}), so a worker killed with SIGKILL loses at most
its last second. The parent serves C{/metrics} from a
C{MultiProcessCollector} over the folder, which adds the workers'
counters and histograms up, those of workers that have exited included (a
counter must never go backwards); the connections-in-progress gauge is
C{livesum}, the sum over live workers.

A worker that exits (replaced on SIGHUP, killed, stopped) leaves files
that would otherwise stay for the parent's whole life, each read by every
scrape: as the parent reaps it (L{MultiprocessFiles.processDied}), its
gauges are dropped and its counters and histograms are added into one
archive file per kind (C{counter_archive.db}, C{histogram_archive.db}), so
that the folder holds the live workers' files and two more, however many
workers came and went. The folder is removed once every worker has exited;
a parent killed before it could is found out by the next server that
starts in the same temporary folder, which removes the folder once its
parent and every worker that wrote there have exited.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import stat
import struct
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from prometheus_client import CollectorRegistry, values
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from tlsreply.errors import ConfigurationError

#: The variable C{prometheus_client} reads the folder from.
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

#: The start of the folder's name; the parent's pid and C{-} follow.
FOLDER_PREFIX: Final = "tlsreply-metrics-"

#: The kinds of file whose values add up over processes, and so over the
#: workers that have exited: merged into C{KIND_archive.db}.
ADDED_UP: Final = ("counter", "histogram", "summary")

_FOLDER_NAME = re.compile(re.escape(FOLDER_PREFIX) + r"(\d+)-(\d+)-[A-Za-z0-9_]+\Z")
_WORKER_FILE = re.compile(r"[a-z]+(?:_[a-z]+)?_(\d+)\.db\Z")

_log = Logger(namespace="tlsreply.metrics")


class MultiprocessFiles(MultiService):
    """
    The parent's side: the folder, its collector, dead workers, removal.

    Its children (the L{tlsreply.workers.supervisor.WorkerPool}) run while the folder
    exists: it is made in L{startService}, before they start, and removed
    once they have all stopped (and at exit, should the parent end without
    stopping its services).

    It is made in C{startService} rather than when the server is built, or
    in C{privilegedStartService}: twistd runs both of those as the user it
    was started as (root, for C{--uid}), and only then drops privileges and
    calls C{startService}. The folder then belongs to the user the parent,
    and the workers it forks, run as.

    @ivar path: the folder, private to this server; C{None} until the
        service starts.
    @ivar directory: where the folder is made: the system's temporary
        folder (C{TMPDIR}, else C{/tmp}) when C{None}.
    """

    def __init__(self, directory: Path | None = None) -> None:
        super().__init__()
        self.path: Path | None = None
        self.directory = directory
        # A scrape reads the folder while no worker's files are being
        # merged (and may run off the reactor's thread).
        self._lock = threading.Lock()
        # Also when the parent exits without stopping its services (it
        # could not listen); the workers end with os._exit, which runs no
        # exit handler.
        atexit.register(self.remove)

    def startService(self) -> None:
        """
        Make the folder, then start the workers.

        @raise ConfigurationError: if the folder cannot be made.
        """
        if self.path is None:
            self.path = self._make()
        super().startService()

    def _make(self) -> Path:
        where = self.directory if self.directory is not None else Path(tempfile.gettempdir())
        removeStaleFolders(where)
        try:
            path = Path(tempfile.mkdtemp(prefix=folderPrefix(), dir=where))
        except OSError as e:
            raise ConfigurationError(
                f"--metrics: cannot make the workers' metrics folder in {where} "
                f"as uid {os.geteuid()}: {e.strerror or e} (set TMPDIR to a folder "
                "that user may write to)"
            ) from None
        _log.info(
            "metrics of the workers in {path} (uid {uid})", path=str(path), uid=os.geteuid()
        )
        return path

    def stopService(self) -> Deferred[None]:
        """
        Stop the workers, then remove the folder.
        """
        stopped: Deferred[Any] = maybeDeferred(super().stopService)

        def remove(result: object) -> None:
            self.remove()

        return stopped.addBoth(remove)

    def addCollector(self, registry: CollectorRegistry) -> None:
        """
        Make C{registry} read every worker's metrics from the folder (none
        before the folder is made).
        """
        registry.register(WorkerFilesCollector(lambda: self.path, self._lock))

    def processDied(self, pid: int) -> None:
        """
        A worker exited (and was reaped: it writes no more): its gauges no
        longer count (C{live*} modes); its counters and histograms still
        do, added into the archive of their kind, and its files go.

        A scrape sees the files before or after, never in between: not
        the archive with the worker's values and the worker's file too.
        """
        if self.path is None:
            return
        with self._lock:
            mark_process_dead(pid, str(self.path))
            for kind in ADDED_UP:
                try:
                    archiveWorkerFile(self.path, kind, pid)
                except (OSError, RuntimeError, struct.error) as e:
                    _log.error(
                        "cannot merge the {kind} file of worker pid {pid} into the "
                        "archive: {error}; it stays as it is",
                        kind=kind, pid=pid, error=str(e),
                    )

    def remove(self) -> None:
        """
        Remove the folder and every file in it.
        """
        path, self.path = self.path, None
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


class WorkerFilesCollector(MultiProcessCollector):
    """
    C{prometheus_client}'s multiprocess collector, which does not fail a
    scrape that comes while a worker creates a file, reads the folder
    while no worker's files are being merged, and never reports a counter
    lower than it did before.

    A worker creates each file empty, then sizes and initialises it; a
    scrape that reads it in between finds no header and fails with
    C{struct.error} (an HTTP 500). An empty file holds no value yet, so it
    is left out of this scrape, and counts from the next one.

    A float counter (seconds, a histogram's sum) that is added up in
    another order once a worker's values are in the archive can come out
    an ulp lower, which Prometheus would take for a counter reset (and a
    rate for a spike): each counter, histogram and summary sample is the
    highest this collector has reported.
    """

    def __init__(
        self,
        path: str | Callable[[], Path | str | None],
        lock: threading.Lock | None = None,
    ) -> None:
        # Not MultiProcessCollector.__init__: it insists that the folder
        # exists already, and the parent makes it only as it starts.
        self._folder = path if callable(path) else lambda: path
        self._lock = lock if lock is not None else threading.Lock()
        self._highest: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def collect(self) -> Iterable[Metric]:
        folder = self._folder()
        if folder is None:
            return iter(())
        with self._lock:
            files = []
            for name in glob.glob(os.path.join(folder, "*.db")):
                try:
                    if os.path.getsize(name) > 0:
                        files.append(name)
                except FileNotFoundError:
                    pass  # a dead worker's gauges, removed meanwhile
            metrics = list(self.merge(files, accumulate=True))
            for metric in metrics:
                if metric.type in ADDED_UP:
                    metric.samples = list(self._neverLower(metric))
        return metrics

    def _neverLower(self, metric: Metric) -> Iterator[Any]:
        highest = self._highest
        for sample in metric.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            before = highest.get(key)
            if before is not None and sample.value < before:
                sample = sample._replace(value=before)
            highest[key] = sample.value
            yield sample


def archiveWorkerFile(folder: Path, kind: str, pid: int) -> None:
    """
    Add the values of worker C{pid}'s file of C{kind} (C{counter},
    C{histogram}, C{summary}: their values add up, as the collector adds
    them) into the archive of that kind, then remove the worker's file.

    The new archive is written under a name no scrape reads, then renamed
    over the old one; the worker's file is removed right after. The caller
    keeps scrapes out in between.
    """
    workerFile = folder / f"{kind}_{pid}.db"
    try:
        size = os.lstat(workerFile).st_size
    except FileNotFoundError:
        return
    if size > 0:
        archive = folder / f"{kind}_archive.db"
        totals: dict[str, float] = {}
        for path in (archive, workerFile):
            if path.exists() and path.stat().st_size > 0:
                for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
                    totals[key] = totals.get(key, 0.0) + value
        staged = folder / f".{kind}_archive.db.new"  # not *.db: never read
        staged.unlink(missing_ok=True)
        written = MmapedDict(str(staged))
        try:
            for key, value in totals.items():
                written.write_value(key, value, 0.0)
        finally:
            written.close()
        os.replace(staged, archive)
    os.remove(workerFile)


def folderPrefix() -> str:
    """
    The start of this process's metrics folder's name:
    L{FOLDER_PREFIX}C{PID-NAMESPACE-}, NAMESPACE the inode of this
    process's pid namespace (C{/proc/self/ns/pid}; 0 where there is none).

    A pid means something only in its namespace: containers that share a
    temporary folder (a Kubernetes pod's C{emptyDir}) but not their pids
    must not take each other's live folders for stale ones.
    """
    return f"{FOLDER_PREFIX}{os.getpid()}-{_pidNamespace()}-"


def _pidNamespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def removeStaleFolders(where: Path) -> None:
    """
    Remove, in C{where}, the metrics folders (L{folderPrefix}C{*}) of this
    user and pid namespace whose parent and workers have all exited: a
    parent killed with SIGKILL could not remove its own.

    Only real folders are removed, and nothing in them is followed: a
    symbolic link with a folder's name stays, as does what it points to.
    A folder whose parent's pid is alive stays (also when that pid is
    another process's now: it is left for a later start), as do those of
    other pid namespaces, whose pids cannot be checked from here.
    """
    namespace = _pidNamespace()
    try:
        entries = list(os.scandir(where))
    except OSError:
        return  # making the new folder says why
    for entry in entries:
        match = _FOLDER_NAME.match(entry.name)
        if match is None:
            continue
        parent = int(match.group(1))
        if int(match.group(2)) != namespace:
            continue
        try:
            status = entry.stat(follow_symlinks=False)
            if (
                not stat.S_ISDIR(status.st_mode)
                or status.st_uid != os.geteuid()
                or parent == os.getpid()
                or _alive(parent)
                or any(_alive(pid) for pid in _writers(entry.path))
            ):
                continue
        except OSError:
            continue
        # rmtree opens each folder without following a link (on Linux, it
        # works from file descriptors: rmtree.avoids_symlink_attacks).
        shutil.rmtree(entry.path, ignore_errors=True)
        _log.info(
            "removed the metrics folder {path} of tlsreply pid {pid}, which has exited",
            path=entry.path, pid=parent,
        )


def _writers(folder: str) -> set[int]:
    """
    The pids of the workers that have files in C{folder}.
    """
    return {int(m.group(1)) for name in os.listdir(folder) if (m := _WORKER_FILE.match(name))}


def _alive(pid: int) -> bool:
    """
    Whether process C{pid} runs: a zombie does not (an orphan's new parent,
    in a container, may never reap it).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's
    try:
        with open(f"/proc/{pid}/stat", "rb") as status:
            state = status.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")


def useMultiprocessFiles(path: Path) -> None:
    """
    In a worker, right after C{fork} and before it makes any metric: keep
    every metric value in C{path}.

    C{prometheus_client} chooses how metrics keep their values when it is
    first imported, from C{PROMETHEUS_MULTIPROC_DIR}; the parent imported
    it before the folder existed (and must keep its own choice: it makes
    no metric values, it reads the files), so the worker sets the variable
    and makes the same choice again, with the function
    C{prometheus_client} makes it with.
    """
    os.environ[MULTIPROC_DIR_VARIABLE] = str(path)
    values.ValueClass = values.MultiProcessValue()

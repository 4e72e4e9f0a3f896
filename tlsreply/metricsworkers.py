# -*- test-case-name: tests.test_metrics -*-
"""
One scrape for every worker of C{--workers N}: C{prometheus_client}'s
multiprocess mode.

The parent makes a private folder (mode 0700) for the workers' metric
files when its services start: under C{twistd --uid}, after twistd dropped
its privileges, so the folder belongs to the user the workers run as (made
before, by root, no worker could write to it). Each worker, right after
C{fork}, points C{PROMETHEUS_MULTIPROC_DIR} at it and makes its metrics
there: every value is written to a memory-mapped file of the worker's own
(C{counter_PID.db}, ...) as it is published (every second, see
L{tlsreply.metricsdaemon}), so a worker killed with SIGKILL loses at most
its last second. The parent serves C{/metrics} from a
L{MultiProcessCollector} over the folder, which adds the workers'
counters and histograms up, those of workers that have exited included (a
counter must never go backwards); the connections-in-progress gauge is
C{livesum}, the sum over live workers, since the parent marks each worker
that exits dead (L{MultiprocessFiles.processDied}). The folder is removed
once every worker has exited.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from tlsreply.errors import ConfigurationError

#: The variable C{prometheus_client} reads the folder from.
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

_log = Logger(namespace="tlsreply.metrics")


class MultiprocessFiles(MultiService):
    """
    The parent's side: the folder, its collector, dead workers, removal.

    Its children (the L{tlsreply.workers.WorkerPool}) run while the folder
    exists: it is made in L{startService}, before they start, and removed
    once they have all stopped (and at exit, should the parent end without
    stopping its services).

    It is made in C{startService} rather than when the server is built, or
    in C{privilegedStartService}: twistd runs both of those as the user it
    was started as (root, for C{--uid}), and only then drops privileges and
    calls C{startService}. The folder then belongs to the user the parent,
    and the workers it forks, run as.

    @ivar path: the folder, private to this server; L{None} until the
        service starts.
    @ivar directory: where the folder is made: the system's temporary
        folder (C{TMPDIR}, else C{/tmp}) when L{None}.
    """

    def __init__(self, directory: Path | None = None) -> None:
        super().__init__()
        self.path: Path | None = None
        self.directory = directory
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
        try:
            path = Path(tempfile.mkdtemp(prefix="tlsreply-metrics-", dir=self.directory))
        except OSError as e:
            where = self.directory if self.directory is not None else tempfile.gettempdir()
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
        registry.register(WorkerFilesCollector(lambda: self.path))

    def processDied(self, pid: int) -> None:
        """
        A worker exited: its gauges no longer count (C{live*} modes); its
        counters and histograms still do.
        """
        if self.path is not None:
            mark_process_dead(pid, str(self.path))

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
    scrape that comes while a worker creates a file.

    A worker creates each file empty, then sizes and initialises it; a
    scrape that reads it in between finds no header and fails with
    C{struct.error} (an HTTP 500). An empty file holds no value yet, so it
    is left out of this scrape, and counts from the next one.
    """

    def __init__(self, path: str | Callable[[], Path | str | None]) -> None:
        # Not MultiProcessCollector.__init__: it insists that the folder
        # exists already, and the parent makes it only as it starts.
        self._folder = path if callable(path) else lambda: path

    def collect(self) -> Iterable[Metric]:
        folder = self._folder()
        if folder is None:
            return iter(())
        files = []
        for name in glob.glob(os.path.join(folder, "*.db")):
            try:
                if os.path.getsize(name) > 0:
                    files.append(name)
            except FileNotFoundError:
                pass  # a dead worker's gauges, removed meanwhile
        return self.merge(files, accumulate=True)


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

# -*- test-case-name: tests.test_metrics -*-
"""
One scrape for every worker of C{--workers N}: C{prometheus_client}'s
multiprocess mode.

The parent makes a private folder (mode 0700) for the workers' metric
files. Each worker, right after C{fork}, points C{PROMETHEUS_MULTIPROC_DIR}
at it and makes its metrics there: every value is written to a
memory-mapped file of the worker's own (C{counter_PID.db}, ...) as it is
published (every second, see L{tlsreply.metricsdaemon}), so a worker killed
with SIGKILL loses at most its last second. The parent serves
C{/metrics} from a L{MultiProcessCollector} over the folder, which adds the
workers' counters and histograms up, those of workers that have exited
included (a counter must never go backwards); the connections-in-progress
gauge is C{livesum}, the sum over live workers, since the parent marks each
worker that exits dead (L{MultiprocessFiles.processDied}). The folder is
removed when the parent stops.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

#: The variable C{prometheus_client} reads the folder from.
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class MultiprocessFiles:
    """
    The parent's side: the folder, its collector, dead workers, removal.

    @ivar path: the folder, private to this server.
    """

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="tlsreply-metrics-"))
        # Also when the parent exits without stopping its services (it
        # could not listen); the workers end with os._exit, which runs no
        # exit handler.
        atexit.register(self.remove)

    def addCollector(self, registry: CollectorRegistry) -> None:
        """
        Make C{registry} read every worker's metrics from the folder.
        """
        registry.register(WorkerFilesCollector(str(self.path)))

    def processDied(self, pid: int) -> None:
        """
        A worker exited: its gauges no longer count (C{live*} modes); its
        counters and histograms still do.
        """
        mark_process_dead(pid, str(self.path))

    def remove(self) -> None:
        """
        Remove the folder and every file in it.
        """
        shutil.rmtree(self.path, ignore_errors=True)


class WorkerFilesCollector(MultiProcessCollector):
    """
    C{prometheus_client}'s multiprocess collector, which does not fail a
    scrape that comes while a worker creates a file.

    A worker creates each file empty, then sizes and initialises it; a
    scrape that reads it in between finds no header and fails with
    C{struct.error} (an HTTP 500). An empty file holds no value yet, so it
    is left out of this scrape, and counts from the next one.
    """

    def __init__(self, path: str) -> None:
        super().__init__(None, path=path)
        self._folder = path

    def collect(self) -> Iterable[Metric]:
        files = []
        for name in glob.glob(os.path.join(self._folder, "*.db")):
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

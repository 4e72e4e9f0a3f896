"""
What the workers' metrics folder costs a scrape after many reloads, with
the files of exited workers left as they were (what tlsreply did before
issue 15: 2 files per exited worker) and merged into the archives (what it
does now), and what merging one exited worker costs the parent.

    .venv/bin/python bench/metricsfiles.py [--replacements 160]

Real processes write the files through C{prometheus_client}, as workers
do; a scrape is C{generate_latest} of the parent's registry (best of 20).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from tlsreply.metrics.counting import ConnectionMetrics
from tlsreply.metrics.multiprocess import (
    MultiprocessFiles,
    WorkerFilesCollector,
    useMultiprocessFiles,
)


def forkWorker(folder: Path) -> int:
    """
    A process that counts a handshake into C{folder} as a worker does, then
    waits to be killed; returned once it has written.
    """
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(reading)
            useMultiprocessFiles(folder)
            metrics = ConnectionMetrics(5, multiprocess=True)
            metrics.handshakes.labels("TLSv1.3", "TLS_AES_128_GCM_SHA256", "x25519", "false").inc()
            metrics.duration.observe(0.001)
            metrics.inProgress.inc()
            os.write(writing, b"1")
            while True:
                time.sleep(60)
        finally:
            os._exit(1)
    os.close(writing)
    os.read(reading, 1)
    os.close(reading)
    return pid


def end(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def scrapeMilliseconds(registry: CollectorRegistry) -> float:
    best = float("inf")
    for _ in range(20):
        started = time.perf_counter()
        generate_latest(registry)
        best = min(best, time.perf_counter() - started)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--replacements", type=int, default=160,
                        help="workers that exit (2 per reload of --workers 2)")
    replacements = parser.parse_args().replacements
    base = Path(tempfile.mkdtemp())
    unmerged = Path(tempfile.mkdtemp())
    files = MultiprocessFiles(base)
    files.startService()
    assert files.path is not None
    registry = CollectorRegistry()
    files.addCollector(registry)
    live = [forkWorker(files.path), forkWorker(files.path)]
    try:
        # Before: each exited worker's counter and histogram files stay.
        for path in files.path.glob("*.db"):
            shutil.copy(path, unmerged / path.name)
        for path in files.path.glob(f"*_{live[0]}.db"):
            if not path.name.startswith("gauge_"):
                for index in range(replacements):
                    shutil.copy(path, unmerged / path.name.replace(str(live[0]), str(4000000 + index)))
        before = CollectorRegistry()
        before.register(WorkerFilesCollector(str(unmerged)))
        count = len(list(unmerged.glob("*.db")))
        sys.stdout.write(
            f"left as they were: {count} files, scrape {scrapeMilliseconds(before):.2f} ms\n"
        )

        # Now: real workers come and go, merged as the parent reaps them.
        merges = []
        for _ in range(replacements):
            live.append(forkWorker(files.path))
            old = live.pop(0)
            end(old)
            started = time.perf_counter()
            files.processDied(old)
            merges.append(time.perf_counter() - started)
        count = len(list(files.path.glob("*.db")))
        merges.sort()
        sys.stdout.write(
            f"merged: {count} files, scrape {scrapeMilliseconds(registry):.2f} ms; "
            f"merging one exited worker: median {merges[len(merges) // 2] * 1000:.2f} ms\n"
        )
    finally:
        for pid in live:
            end(pid)
        files.remove()
        shutil.rmtree(unmerged)
        shutil.rmtree(base)


if __name__ == "__main__":
    main()

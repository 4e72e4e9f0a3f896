"""
The benchmark's smoke run (C{bench/run.py --smoke}) against real servers:
Debian's nginx, fetched by the benchmark itself, and this checkout's
tlsreply, driven by the project's C load generator.

It proves the parts of C{make bench} that can break without anyone running
the full benchmark: the load generator compiles warning-free and checks
replies, nginx can be fetched and run with a private prefix, the server's
CPU is read from C{/proc}, resumption works, and the report has its ratios.
It does not judge speed: a smoke cell lasts about a second on a shared
machine. The micro-benchmarks (C{bench/micro.py}) run here too, each with a
tiny count, so that every C{timeit} figure of BENCHMARKS.md keeps a case
that runs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.support import missingTool

BENCH = Path(__file__).resolve().parent.parent / "bench"
COLUMNS = "ecdsa13,resumed13,burst"


def requireCompiler() -> None:
    """
    The load generator needs gcc and OpenSSL's headers. Outside CI a
    machine without them skips the test; in CI (C{CI} set) they are
    required, since C{.ci/run} installs them.
    """
    missing = []
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        missing.append("gcc")
    if not Path("/usr/include/openssl/ssl.h").exists():
        missing.append("libssl-dev")
    if missing:
        missingTool(" and ".join(missing), "apt-get install gcc libssl-dev")


class BenchSmokeTests(SynchronousTestCase):
    """
    C{bench/run.py --smoke} with nginx and tlsreply, full and resumed ECDSA
    TLS 1.3 handshakes, and the memory of a burst of connections.
    """

    def setUp(self) -> None:
        requireCompiler()

    def test_smokeRun(self) -> None:
        """
        A smoke run exits 0, which means no cell had an error: every reply
        matched byte for byte and ended with close_notify, on every
        connection. Its table gives nginx an absolute figure and tlsreply a
        ratio to it in both columns, and every resumed-column handshake was
        resumed, for both servers. In the burst column every connection
        was placed at once and read its reply, and the figures of memory
        are consistent: the peak is at least what the connections held.
        """
        directory = Path(tempfile.mkdtemp(prefix="tlsreply-bench-test-"))
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        results = directory / "results.json"
        completed = subprocess.run(
            [
                sys.executable, str(BENCH / "run.py"), "--smoke",
                "--servers", "nginx,tlsreply",
                "--columns", COLUMNS,
                "--json", str(results),
                "--no-chart",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        output = completed.stdout.decode("utf-8", "replace")
        report = output + completed.stderr.decode("utf-8", "replace")
        self.assertEqual(completed.returncode, 0, report)

        # The first table: nginx's absolute figures, the others' ratios.
        headline = output.split("## ")[1]
        rows = {
            cells[0]: cells[1:]
            for line in headline.splitlines()
            if line.startswith("| ")
            for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
        }
        nginx = next(cells for name, cells in rows.items() if name.startswith("nginx"))
        tlsreply = rows["tlsreply (defaults)"]
        for absolute, ratio in zip(nginx, tlsreply, strict=True):
            # nginx: handshakes per server-CPU-second and how busy the
            # server was, e.g. "4,037 (97%)" or "4,037 (71%) †", or KiB per
            # connection, e.g. "43.7"
            self.assertRegex(absolute, r"^([\d,]+ \(\d+%\)( [†‡§])?|\d+\.\d)$", report)
            # tlsreply: a ratio to nginx, e.g. "0.48 (95%)", or "1.10"; a
            # memory ratio may be below zero in a smoke run (a burst of 100
            # is enough for the heap trim to return more than it took)
            match = re.match(r"^(-?\d+\.\d\d)( \(\d+%\))?( [†‡§])?$", ratio)
            self.assertIsNotNone(match, report)
            assert match is not None
            if "(" in absolute:
                self.assertGreater(float(match.group(1)), 0.0)

        figures = json.loads(results.read_text())
        self.assertEqual(figures["errors"], 0)
        self.assertEqual(figures["options"]["columns"], COLUMNS.split(","))
        for server in ("nginx", "tlsreply"):
            full = figures["medians"][server]["ecdsa13"]
            resumed = figures["medians"][server]["resumed13"]
            self.assertEqual((full["errors"], resumed["errors"]), (0, 0))
            self.assertEqual(full["resumedRatio"], 0.0)
            self.assertEqual(resumed["resumedRatio"], 1.0)
            self.assertGreater(full["perCPUSecond"], 0)
            for cell in figures["raw"][server]["resumed13"]:
                self.assertEqual(cell["protocol"], "TLSv1.3")
                self.assertEqual(cell["loadgen"]["resumed"], cell["handshakes"])
        self.assertGreater(figures["ratios"]["tlsreply"]["ecdsa13"], 0)
        for server in ("nginx", "tlsreply"):
            [burst] = figures["raw"][server]["burst"]
            self.assertEqual(burst["errors"], 0)
            self.assertEqual(burst["connections"], 100)
            self.assertEqual(burst["loadgen"]["mode"], "burst")
            self.assertEqual(burst["loadgen"]["placed"], 100)
            # The burst took memory at its peak; what stays may be less
            # than before it for tlsreply, whose heap trim returns the
            # holes the handshakes left (100 at once are enough for it).
            self.assertGreater(burst["kibPeakPerConnection"], 0)
            self.assertGreaterEqual(burst["rssPeakKiB"], burst["rssAfterKiB"])
        self.assertGreater(figures["raw"]["nginx"]["burst"][0]["kibPerConnection"], 0)
        self.assertIn("burst", figures["ratios"]["tlsreply"])


class ScalingSmokeTests(SynchronousTestCase):
    """
    C{bench/run.py --scaling}: tlsreply C{--workers N} on N cores, the load
    generators on the others.
    """

    def setUp(self) -> None:
        requireCompiler()

    def test_scalingRun(self) -> None:
        """
        A short scaling run over N = 1 and 2 exits 0 (no errors in any
        cell), prints one table row per N, and its JSON has, for each N, a
        wall rate, the cores the server used and where it ran: one core and
        the rest for the load generator with N=1, every core shared where N
        leaves none.
        """
        directory = Path(tempfile.mkdtemp(prefix="tlsreply-bench-test-"))
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        results = directory / "scaling.json"
        completed = subprocess.run(
            [
                sys.executable, str(BENCH / "run.py"), "--smoke", "--scaling", "1,2",
                "--servers", "tlsreply", "--columns", "resumed13",
                "--json", str(results),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        output = completed.stdout.decode("utf-8", "replace")
        report = output + completed.stderr.decode("utf-8", "replace")
        self.assertEqual(completed.returncode, 0, report)
        rows = [line for line in output.splitlines() if line.startswith("| tlsreply |")]
        self.assertEqual(len(rows), 2, report)
        figures = json.loads(results.read_text())
        self.assertEqual(figures["errors"], 0)
        cores = figures["cores"]
        byWorkers = figures["medians"]["tlsreply"]["resumed13"]
        for workers in ("1", "2"):
            self.assertGreater(byWorkers[workers]["wallRate"], 0)
            self.assertGreater(byWorkers[workers]["serverCores"], 0)
        self.assertEqual(byWorkers["1"]["serverCPUs"], "0")
        self.assertEqual(byWorkers["1"]["clientCPUs"], [str(c) for c in range(1, cores)])
        if cores <= 2:
            self.assertTrue(byWorkers["2"]["shared"])
            self.assertEqual(byWorkers["2"]["serverCPUs"], f"0-{cores - 1}")


class MicroSmokeTests(SynchronousTestCase):
    """
    C{bench/micro.py}, the micro-benchmarks behind BENCHMARKS.md's
    C{timeit} figures, run with a tiny count: every case still runs
    against the current code, so none can rot unnoticed.
    """

    def test_everyCaseRuns(self) -> None:
        """
        Every case listed runs (50 calls, one run) and prints a positive
        figure in µs per call, and the run exits 0.
        """
        micro = [sys.executable, str(BENCH / "micro.py")]
        listed = subprocess.run(
            [*micro, "--list"], capture_output=True, timeout=60, check=False
        )
        self.assertEqual(listed.returncode, 0, listed.stderr.decode())
        names = [line.split()[0] for line in listed.stdout.decode().splitlines()]
        self.assertGreater(len(names), 10)
        completed = subprocess.run(
            [*micro, "--number", "50", "--repeat", "1"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        output = completed.stdout.decode("utf-8", "replace")
        report = output + completed.stderr.decode("utf-8", "replace")
        self.assertEqual(completed.returncode, 0, report)
        figures = {
            match.group(1): float(match.group(2))
            for match in re.finditer(r"^(\S+) +(\d+\.\d+) µs ", output, re.MULTILINE)
        }
        self.assertEqual(sorted(figures), sorted(names), report)
        for name, microseconds in figures.items():
            self.assertGreater(microseconds, 0.0, name)

    def test_unknownCase(self) -> None:
        """
        A case that does not exist is refused in one line naming it, with
        exit status 2, before anything runs.
        """
        completed = subprocess.run(
            [sys.executable, str(BENCH / "micro.py"), "no-such-case"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        self.assertEqual(completed.returncode, 2)
        error = completed.stderr.decode()
        self.assertIn("no case named 'no-such-case'", error)
        self.assertNotIn("Traceback", error)


class MetricsLoadSmokeTests(SynchronousTestCase):
    """
    C{bench/metrics_load.py}, the benchmark of what the metrics port's
    clients cost the TLS clients, in a short run against this checkout.
    """

    def test_smokeRun(self) -> None:
        """
        One short round of every phase exits 0 and reports, for each, the
        handshakes it timed and C{/ready} answered every time it was asked; the scrapers scraped, the flood got answers, and the ratio
        of the p99s is printed.
        """
        completed = subprocess.run(
            [
                sys.executable, str(BENCH / "metrics_load.py"),
                "--handshakes", "200", "--rounds", "1", "--flood",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        output = completed.stdout.decode("utf-8", "replace")
        report = output + completed.stderr.decode("utf-8", "replace")
        self.assertEqual(completed.returncode, 0, report)
        for phase in ("unloaded", "8 scrapers in a loop", "pipelined flood"):
            [line] = [line for line in output.splitlines() if line.startswith(phase)]
            self.assertRegex(line, r"\b200 handshakes: p50 +[\d.]+ ms, p99 +[\d.]+ ms", report)
            # A failed probe would count as "inf ms".
            self.assertRegex(line, r"/ready every 0\.1 s: slowest \d+ ms of \d+", report)
        self.assertRegex(output, r"; [1-9]\d* scrapes/s", report)
        self.assertRegex(output, r"; [1-9]\d* answers, RSS", report)
        self.assertRegex(output, r"p99 with scrapers / unloaded: \d+\.\d\d", report)

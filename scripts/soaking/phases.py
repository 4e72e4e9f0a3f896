"""
The soak's phases (warm-up, baseline, mixed, idle, burst) and the server's
figures after each: its descriptors and memory, once it has closed every
connection.
"""

from __future__ import annotations

import itertools
import random
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.harness.processes import Deadline, DeadlineExceeded, say
from scripts.soaking.clients import (
    BAD_KINDS,
    CUT_SLACK,
    GOOD_KINDS,
    GOOD_TIMEOUT,
    MIX,
    Clients,
    Result,
    awaitServerClose,
)
from scripts.soaking.server import SoakServer

# How long to wait for the server to close everything after a phase.
SETTLE_TIMEOUT = 20.0


@dataclass(frozen=True)
class Sizes:
    """
    How much each phase does.
    """

    warmUp: int
    baseline: int
    mixed: int
    idle: int
    burst: int
    workers: int
    handshakeTimeout: float
    deadline: float
    #: KiB the server's memory may grow over the mixed phase's second half.
    growthLimit: int = 2048


FULL = Sizes(
    warmUp=140, baseline=2000, mixed=10_000, idle=1000, burst=200, workers=16,
    handshakeTimeout=5.0, deadline=300.0,
)
QUICK = Sizes(
    warmUp=70, baseline=300, mixed=1000, idle=200, burst=200, workers=8,
    handshakeTimeout=2.0, deadline=60.0,
)

#: The snapshots that bound the mixed phase's second half.
MIXED_HALF = "mixed, halfway"
MIXED_END = "after mixed"


@dataclass
class Snapshot:
    """
    The server's figures at one point.
    """

    label: str
    at: float
    connections: int
    descriptors: int
    rss: int
    peak: int
    settled: bool


@dataclass
class PhaseReport:
    """
    What one phase's clients saw.
    """

    name: str
    wall: float = 0.0
    results: list[Result] = field(default_factory=list)
    skipped: int = 0
    # Connections left silent on purpose that the server then cut.
    cutByServer: int = 0
    silent: int = 0

    def byKind(self) -> dict[str, list[Result]]:
        kinds: dict[str, list[Result]] = {}
        for result in self.results:
            kinds.setdefault(result.kind, []).append(result)
        return kinds

    def good(self) -> list[Result]:
        return [r for r in self.results if r.kind in GOOD_KINDS]


class Soak:
    """
    One run: the server, the clients, the figures.
    """

    def __init__(self, sizes: Sizes, server: SoakServer, clients: Clients, deadline: Deadline,
                 seed: int, quick: bool) -> None:
        self.sizes = sizes
        self.server = server
        self.clients = clients
        self.deadline = deadline
        self.seed = seed
        self.quick = quick
        self.started = time.monotonic()
        self.snapshots: list[Snapshot] = []
        self.phases: dict[str, PhaseReport] = {}
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.reference: int | None = None
        self._seeds: Iterator[int] = itertools.count(seed * 1_000_000)

    # Figures

    def snapshot(self, label: str, settle: bool = True) -> Snapshot:
        """
        Record the server's descriptors and memory; first wait (bounded)
        until it has logged every connection made and, once a reference
        exists, is back to the reference descriptor count.
        """
        settled = True
        if settle:
            settled = self.settle()
        memory = self.server.memory()
        shot = Snapshot(
            label, time.monotonic() - self.started, self.clients.connections,
            self.server.descriptors(), memory.get("VmRSS", 0), memory.get("VmHWM", 0),
            settled,
        )
        self.snapshots.append(shot)
        say(
            f"  [{shot.at:6.1f}s] {label}: server descriptors {shot.descriptors}, "
            f"VmRSS {shot.rss:,} KiB"
            + ("" if settled else "  (not settled: see below)")
        )
        return shot

    def settle(self) -> bool:
        """
        Wait until the server has logged a line for every connection made
        and holds no more descriptors than at the reference point.
        """
        timeout = min(SETTLE_TIMEOUT, max(self.deadline.remaining(), 1.0))
        made = self.clients.connections
        logged = self.server.waitFor(lambda: self.server.connectionLines >= made, timeout)
        if self.reference is None:
            return logged
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.server.descriptors() <= self.reference:
                return logged
            time.sleep(0.05)  # polling another process's /proc: no event to wait on
        return False

    # Phases

    def runPlan(
        self, name: str, plan: list[str], workers: int, report: PhaseReport | None = None
    ) -> PhaseReport:
        """
        Run a list of client kinds on C{workers} threads.

        @param report: a report to add to (a phase run in parts), instead of
            a new one.
        """
        if report is None:
            report = PhaseReport(name)
            self.phases[name] = report
        seeds = [next(self._seeds) for _ in plan]

        def task(kind: str, seed: int) -> Result | None:
            if self.deadline.remaining() <= 0:
                return None
            return self.clients.run(kind, seed)

        started = time.monotonic()
        results: list[Result] = []
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
            for result in pool.map(task, plan, seeds):
                if result is None:
                    report.skipped += 1
                else:
                    results.append(result)
        report.results += results
        report.wall += time.monotonic() - started
        parked = [r.parked for r in results if r.parked is not None]
        if parked:
            cut, left = awaitServerClose(
                parked,
                time.monotonic() + self.sizes.handshakeTimeout + CUT_SLACK,
            )
            if left:
                self.failures.append(
                    f"{name}: the server left {left} of {len(parked)} truncated-hello "
                    "connections open past its handshake timeout"
                )
            report.silent += len(parked)
            report.cutByServer += cut
        if report.skipped:
            raise DeadlineExceeded(f"{name}: deadline reached, {report.skipped} connections skipped")
        return report

    def warmUp(self) -> None:
        kinds = list(MIX)
        plan = [kinds[i % len(kinds)] for i in range(self.sizes.warmUp)]
        self.runPlan("warm-up", plan, self.sizes.workers)
        self.checkGood(self.phases["warm-up"])
        shot = self.snapshot("after warm-up")
        self.reference = shot.descriptors

    def baseline(self) -> None:
        rng = random.Random(self.seed)
        plan = rng.choices(GOOD_KINDS, weights=[MIX[k] for k in GOOD_KINDS], k=self.sizes.baseline)
        self.runPlan("baseline", plan, self.sizes.workers)
        self.checkGood(self.phases["baseline"])
        self.snapshot("after baseline (good clients only)")

    def mixed(self) -> None:
        """
        The mix of good and bad clients, in two halves with the server's
        memory taken (settled) after each: a server that keeps something
        per connection grows in the second half as in the first, one that
        has warmed up does not.
        """
        rng = random.Random(self.seed + 1)
        plan = rng.choices(list(MIX), weights=list(MIX.values()), k=self.sizes.mixed)
        half = len(plan) // 2
        report = self.runPlan("mixed", plan[:half], self.sizes.workers)
        self.snapshot(MIXED_HALF)
        self.runPlan("mixed", plan[half:], self.sizes.workers, report)
        self.snapshot(MIXED_END)
        self.checkGood(report)
        for kind in BAD_KINDS:
            failed = [r for r in report.byKind().get(kind, []) if not r.ok]
            if failed:
                self.failures.append(
                    f"mixed: {len(failed)} {kind} clients: {failed[0].detail}"
                )
        halfway, end = (
            next(s for s in self.snapshots if s.label == label)
            for label in (MIXED_HALF, MIXED_END)
        )
        grown = end.rss - halfway.rss
        self.notes.append(
            f"server memory over the mixed phase's second half (connections "
            f"{half:,} to {len(plan):,} of it): VmRSS {halfway.rss:,} KiB -> "
            f"{end.rss:,} KiB, grew {grown:+,} KiB (limit {self.sizes.growthLimit:,} KiB)"
        )
        if grown > self.sizes.growthLimit:
            self.failures.append(
                f"server memory grew {grown:,} KiB over the mixed phase's second half "
                f"(limit {self.sizes.growthLimit:,} KiB)"
            )

    def idle(self) -> None:
        """
        Open the idle connections in steps small enough for the listen
        backlog (waiting each time until the server has accepted them), so
        that all are open at once; then let the handshake timeout cut them.
        """
        report = PhaseReport("idle")
        self.phases["idle"] = report
        assert self.reference is not None
        sockets: list[socket.socket] = []
        started = time.monotonic()
        step = 32
        try:
            while len(sockets) < self.sizes.idle:
                self.deadline.check()
                for _ in range(min(step, self.sizes.idle - len(sockets))):
                    sockets.append(self.clients.connect(GOOD_TIMEOUT))
                expected = self.reference + len(sockets)
                end = time.monotonic() + 5.0
                while self.server.descriptors() < expected and time.monotonic() < end:
                    time.sleep(0.005)  # polling another process's /proc
            opened = time.monotonic()
            held = self.snapshot(f"idle: {len(sockets)} connections held open", settle=False)
            if held.descriptors < self.reference + len(sockets):
                self.notes.append(
                    f"idle: only {held.descriptors - self.reference} of {len(sockets)} "
                    "idle connections were open in the server at once"
                )
            probe = self.clients.run("good", 0)
            report.results.append(probe)
            if not probe.ok:
                self.failures.append(f"idle: good client failed while idle connections held: {probe.detail}")
            say(
                f"  good client while {len(sockets)} idle connections held: "
                f"{'served' if probe.ok else 'FAILED'} in {probe.seconds * 1000:.1f} ms"
            )
            if probe.seconds >= 1.0:
                self.notes.append(
                    f"idle: a good client waited {probe.seconds:.1f}s while {len(sockets)} "
                    "idle connections were held: the server was not accepting (is "
                    "--max-connections at or below the idle count?) until its "
                    "handshake timeout cut some"
                )
            cut, left = awaitServerClose(
                sockets, opened + self.sizes.handshakeTimeout + CUT_SLACK
            )
            report.silent, report.cutByServer = len(sockets), cut
            sockets = []
            if left:
                self.failures.append(
                    f"idle: the server left {left} idle connections open past its handshake timeout"
                )
            say(
                f"  idle connections cut by the server: {cut}, left open: {left}, "
                f"{time.monotonic() - opened:.1f}s after the last was opened "
                f"(handshake timeout {self.sizes.handshakeTimeout:g}s)"
            )
        finally:
            for sock in sockets:
                sock.close()
            report.wall = time.monotonic() - started
        self.snapshot("after idle (all cut)")

    def burst(self) -> None:
        count = self.sizes.burst
        report = PhaseReport("burst")
        self.phases["burst"] = report
        barrier = threading.Barrier(count, timeout=GOOD_TIMEOUT)

        def one(_: int) -> Result:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return Result("good", False, 0.0, "barrier broken")
            return self.clients.run("good", 0)

        self.deadline.check()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="burst") as pool:
            report.results = list(pool.map(one, range(count)))
        report.wall = time.monotonic() - started
        self.checkGood(report)
        self.snapshot(f"after burst ({count} at once)")

    def checkGood(self, report: PhaseReport) -> None:
        failed = [r for r in report.good() if not r.ok]
        if failed:
            details = Counter(r.detail for r in failed).most_common(3)
            self.failures.append(f"{report.name}: {len(failed)} good clients failed: {details}")

    # Report

    def goodFigures(self, report: PhaseReport) -> tuple[float, float, float, int, int]:
        """
        Good clients per second, median and p99 latency (ms), resumed and
        resumption attempts.
        """
        good = [r for r in report.good() if r.ok]
        times = sorted(r.seconds for r in good) or [0.0]
        rate = len(good) / report.wall if report.wall else 0.0
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        attempts = [r for r in good if r.kind == "good-resumed"]
        resumed = sum(r.resumed for r in attempts)
        return rate, statistics.median(times) * 1000, p99 * 1000, resumed, len(attempts)

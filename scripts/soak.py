#!/usr/bin/env python3
"""
Soak test: run C{twistd -n tlsreply} in a subprocess on 127.0.0.1 and
hammer it with good and bad clients, watching the server's descriptors and
memory.

Phases, in order:

  1. warm-up: a few connections of every kind, so that whatever the server
     opens or allocates lazily is in place; its descriptor count after this
     is the reference;
  2. baseline: good clients only (fresh and resumed sessions), for speed;
  3. mixed: good clients interleaved with bad ones (random bytes, plain
     HTTP, a truncated ClientHello then silence, a reset after the
     ClientHello, a reset after the handshake);
  4. idle: many connections that send nothing, all held open at once, then
     cut by the server's handshake timeout;
  5. burst: many good clients released at once.

After each phase the script waits (bounded) for the server to close every
connection, then records the server's open descriptors (/proc/PID/fd) and
resident memory (VmRSS). At the end it stops the server with SIGTERM.

Exit status: 0 if every check passed; 1 if a check failed (final descriptor
count differs from the post-warm-up count, a good client failed, a bad
connection was left open by the server, the server logged an error or a
traceback, the server's log does not have one line per connection, or the
server did not exit cleanly); 2 if the run could not finish (the server did
not start, or the deadline ran out); 3 if the watchdog had to kill it.

Every connection goes to 127.0.0.1; connection counts and run time are
bounded (--deadline).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tlsreply.testing.badclients import (
    PLAIN_HTTP,
    clientHello,
    randomBytes,
    readUntilClosed,
    resetClose,
)

LOOPBACK = "127.0.0.1"
REPLY = b"test\n"
SERVER_NAME = "localhost"
# Per-operation socket timeout of a good client. Generous: a SYN dropped by
# a full listen backlog is retried after 1 s, then 3 s, then 7 s.
GOOD_TIMEOUT = 30.0
# How long after its handshake timeout a bad connection may stay open.
CUT_SLACK = 5.0
# How long to wait for the server to close everything after a phase.
SETTLE_TIMEOUT = 20.0

GOOD_KINDS = ("good", "good-resumed")
BAD_KINDS = (
    "random-bytes",
    "plain-http",
    "truncated-hello",
    "reset-after-hello",
    "reset-after-handshake",
)
# Weights of each kind in the mixed phase (percent).
MIX = {
    "good": 35,
    "good-resumed": 25,
    "random-bytes": 8,
    "plain-http": 8,
    "truncated-hello": 8,
    "reset-after-hello": 8,
    "reset-after-handshake": 8,
}
LISTENING = re.compile(r"listening on \['127\.0\.0\.1:(\d+)'\]")
CONNECTION_LINE = re.compile(r"\] (replied to|handshake failed with) ")
ERROR_LINE = re.compile(
    r"Traceback \(most recent call last\)|Unhandled Error|#critical\]|#error\]"
)


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


def say(text: str = "") -> None:
    """
    Print a line of the report at once.
    """
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class DeadlineExceeded(Exception):
    """
    The run's --deadline has passed.
    """


class Deadline:
    """
    The time the whole run must end by.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self) -> None:
        if self.remaining() <= 0:
            raise DeadlineExceeded(f"deadline of {self.seconds:g}s reached")


def raiseDescriptorLimit() -> int:
    """
    Raise the soft C{RLIMIT_NOFILE} to the hard limit (the server inherits
    it).

    @return: the soft limit now.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


class Server:
    """
    C{twistd -n tlsreply} in a subprocess, its output read by a thread.
    """

    def __init__(self, twistd: str, workDirectory: Path, arguments: list[str]) -> None:
        self.command = [
            twistd, "-n", "--pidfile=", "tlsreply",
            "--port", f"tcp:0:interface={LOOPBACK}", *arguments,
        ]
        self.lines: list[str] = []
        self.connectionLines = 0
        self.outcomes: Counter[str] = Counter()
        self.errorLines: list[str] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.port: int | None = None
        environment = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            self.command,
            cwd=workDirectory,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid
        self._reader = threading.Thread(target=self._read, name="server-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._changed:
                self.lines.append(line)
                if self.port is None and (match := LISTENING.search(line)):
                    self.port = int(match.group(1))
                if match := CONNECTION_LINE.search(line):
                    self.connectionLines += 1
                    self.outcomes[match.group(1)] += 1
                if ERROR_LINE.search(line):
                    self.errorLines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def waitFor(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """
        Wait, at most C{timeout} seconds, until C{predicate} (called with
        the output lock held) is true; a new output line or the server's
        exit wakes the wait.
        """
        end = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    return predicate()
                self._changed.wait(min(left, 0.5))
            return True

    def waitForPort(self, timeout: float) -> int | None:
        self.waitFor(lambda: self.port is not None, timeout)
        return self.port

    def descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def memory(self) -> dict[str, int]:
        """
        VmRSS and VmHWM (peak) in KiB.
        """
        figures = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0])
        return figures

    def reasons(self) -> Counter[str]:
        """
        Why connections ended, from the log lines, without addresses.
        """
        reasons: Counter[str] = Counter()
        with self._lock:
            for line in self.lines:
                if match := re.search(r"handshake failed with \S+: (.*)$", line):
                    reasons["handshake failed: " + match.group(1)] += 1
                elif match := re.search(r"replied to \S+: .*; (.*)$", line):
                    reasons["replied; " + match.group(1)] += 1
        return reasons

    def stop(self, timeout: float) -> int | None:
        """
        SIGTERM, then SIGKILL if it has not exited within C{timeout}.

        @return: the exit status, or L{None} if it had to be killed.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                return None
        self._reader.join(10)
        return self.process.returncode


@dataclass
class Result:
    """
    One client connection's outcome.
    """

    kind: str
    ok: bool
    seconds: float
    detail: str = ""
    resumed: bool = False
    parked: socket.socket | None = None


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


class Clients:
    """
    The client kinds, blocking, for worker threads; every connection goes
    to 127.0.0.1.
    """

    def __init__(self, port: int, caPath: Path, handshakeTimeout: float) -> None:
        self.port = port
        self.context = ssl.create_default_context(cafile=str(caPath))
        self.badTimeout = handshakeTimeout + CUT_SLACK
        self._connections = 0
        self._countLock = threading.Lock()
        self._sessions = threading.local()
        self.hello = clientHello(SERVER_NAME)

    @property
    def connections(self) -> int:
        with self._countLock:
            return self._connections

    def connect(self, timeout: float) -> socket.socket:
        """
        A TCP connection to the server, counted.
        """
        sock = socket.create_connection((LOOPBACK, self.port), timeout=timeout)
        with self._countLock:
            self._connections += 1
        return sock

    def run(self, kind: str, seed: int) -> Result:
        started = time.monotonic()
        try:
            result = getattr(self, "_" + kind.replace("-", "_"))(seed)
        except (OSError, ssl.SSLError, AssertionError) as e:
            result = Result(kind, False, 0.0, f"{type(e).__name__}: {e}")
        result.seconds = time.monotonic() - started
        return result

    def _fetch(self, kind: str, session: ssl.SSLSession | None) -> Result:
        with self.connect(GOOD_TIMEOUT) as raw:
            with self.context.wrap_socket(
                raw, server_hostname=SERVER_NAME, session=session,
                suppress_ragged_eofs=False,
            ) as tls:
                received = b""
                while chunk := tls.recv(65536):
                    received += chunk
                self._sessions.session = tls.session
                resumed = bool(tls.session_reused)
        if received != REPLY:
            return Result(kind, False, 0.0, f"reply {received!r}")
        if session is not None and not resumed:
            return Result(kind, False, 0.0, "session offered but not resumed")
        return Result(kind, True, 0.0, resumed=resumed)

    def _good(self, seed: int) -> Result:
        return self._fetch("good", None)

    def _good_resumed(self, seed: int) -> Result:
        session = getattr(self._sessions, "session", None)
        if session is None:
            # This worker's first connection: get a session to resume.
            first = self._fetch("good-resumed", None)
            if not first.ok:
                return first
            session = self._sessions.session
        return self._fetch("good-resumed", session)

    def _random_bytes(self, seed: int) -> Result:
        with self.connect(self.badTimeout) as sock:
            sock.sendall(randomBytes(seed))
            readUntilClosed(sock, self.badTimeout)
        return Result("random-bytes", True, 0.0)

    def _plain_http(self, seed: int) -> Result:
        with self.connect(self.badTimeout) as sock:
            sock.sendall(PLAIN_HTTP)
            readUntilClosed(sock, self.badTimeout)
        return Result("plain-http", True, 0.0)

    def _truncated_hello(self, seed: int) -> Result:
        # Half a ClientHello, then silence: the socket is parked, and the
        # phase checks at its end that the server has cut it.
        sock = self.connect(self.badTimeout)
        sock.sendall(self.hello[: len(self.hello) // 2])
        return Result("truncated-hello", True, 0.0, parked=sock)

    def _reset_after_hello(self, seed: int) -> Result:
        sock = self.connect(self.badTimeout)
        try:
            sock.sendall(self.hello)
            if sock.recv(1) != b"\x16":
                return Result("reset-after-hello", False, 0.0, "no ServerHello")
        finally:
            resetClose(sock)
        return Result("reset-after-hello", True, 0.0)

    def _reset_after_handshake(self, seed: int) -> Result:
        sock = self.connect(GOOD_TIMEOUT)
        try:
            tls = self.context.wrap_socket(sock, server_hostname=SERVER_NAME)
        except BaseException:
            resetClose(sock)
            raise
        resetClose(tls)
        return Result("reset-after-handshake", True, 0.0)


def awaitServerClose(sockets: list[socket.socket], deadline: float) -> tuple[int, int]:
    """
    Wait until the server has closed (or reset) each socket, at the latest
    until C{deadline} (a C{time.monotonic} value); close them all.

    @return: how many the server closed, and how many it left open.
    """
    import selectors

    closed = 0
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        waiting = len(sockets)
        while waiting and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                ready: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = ready.recv(65536)
                except (ConnectionResetError, TimeoutError):
                    data = b""
                if data:
                    continue
                selector.unregister(ready)
                waiting -= 1
                closed += 1
    for sock in sockets:
        sock.close()
    return closed, len(sockets) - closed


class Soak:
    """
    One run: the server, the clients, the figures.
    """

    def __init__(self, sizes: Sizes, server: Server, clients: Clients, deadline: Deadline,
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


def percent(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:+.1f}%" if whole else "n/a"


def report(soak: Soak, exitStatus: int | None) -> int:
    """
    Print the figures and the verdict.

    @return: the process exit status.
    """
    say()
    say("figures (server process)")
    say(f"  {'point':<44} {'time s':>7} {'connections':>11} {'descriptors':>11} {'VmRSS KiB':>11}")
    for shot in soak.snapshots:
        say(
            f"  {shot.label:<44} {shot.at:7.1f} {shot.connections:11,} "
            f"{shot.descriptors:11,} {shot.rss:11,}"
        )
    say()
    base = soak.phases.get("baseline")
    mixed = soak.phases.get("mixed")
    if base is not None and base.results:
        rate, median, p99, resumed, attempts = soak.goodFigures(base)
        say(
            f"good clients, baseline (good only, {soak.sizes.workers} workers): "
            f"{len(base.good())} in {base.wall:.2f}s = {rate:.1f}/s; latency median "
            f"{median:.1f} ms, p99 {p99:.1f} ms; resumed {resumed}/{attempts}"
        )
        if mixed is not None and mixed.results:
            mRate, mMedian, mP99, mResumed, mAttempts = soak.goodFigures(mixed)
            goodShare = 100 * sum(MIX[k] for k in GOOD_KINDS) / sum(MIX.values())
            say(
                f"good clients, mixed phase: {len(mixed.good())} in {mixed.wall:.2f}s = "
                f"{mRate:.1f}/s ({mRate / rate:.2f}x baseline rate; good clients are "
                f"{goodShare:.0f}% of the mix); "
                f"latency median {mMedian:.1f} ms ({mMedian / median:.2f}x baseline), "
                f"p99 {mP99:.1f} ms ({mP99 / p99:.2f}x); resumed {mResumed}/{mAttempts}"
            )
            kinds = mixed.byKind()
            say(
                f"mixed phase: {len(mixed.results)} results in {mixed.wall:.2f}s "
                f"({len(mixed.results) / mixed.wall:.1f} connections/s): "
                + ", ".join(
                    f"{kind} {sum(r.ok for r in rs)}/{len(rs)}" for kind, rs in sorted(kinds.items())
                )
                + f"; truncated hellos cut by the server's handshake timeout "
                f"{mixed.cutByServer}/{mixed.silent}"
            )
    burst = soak.phases.get("burst")
    if burst is not None and burst.results:
        times = sorted(r.seconds for r in burst.results)
        served = sum(r.ok for r in burst.results)
        say(
            f"burst: {served}/{len(burst.results)} served in {burst.wall:.2f}s; per client "
            f"median {statistics.median(times):.3f}s, slowest {times[-1]:.3f}s; "
            f"{sum(t >= 1.0 for t in times)} took 1 s or more (a SYN dropped by a full "
            "listen backlog is retried after 1 s)"
        )
    with soak.server._lock:
        lines, outcomes = soak.server.connectionLines, dict(soak.server.outcomes)
        errors = list(soak.server.errorLines)
    made = soak.clients.connections
    say(
        f"server log: {lines:,} connection lines for {made:,} connections made; "
        f"replied {outcomes.get('replied to', 0):,}, handshake failed "
        f"{outcomes.get('handshake failed with', 0):,}; error/traceback lines: {len(errors)}"
    )
    for reason, count in soak.server.reasons().most_common(12):
        say(f"  {count:7,}  {reason}")
    if lines != made:
        soak.failures.append(f"server logged {lines} connections, the script made {made}")
    if errors:
        soak.failures.append(f"server logged {len(errors)} error lines, first: {errors[0]}")

    reference = next((s for s in soak.snapshots if s.label == "after warm-up"), None)
    end = soak.snapshots[-1] if soak.snapshots else None
    if reference is not None and end is not None:
        moved = end.rss - reference.rss
        peak = end.peak
        say(
            f"server descriptors: after warm-up {reference.descriptors}, at the end "
            f"{end.descriptors}: {'equal' if end.descriptors == reference.descriptors else 'DIFFERENT'}"
        )
        say(
            f"server memory (VmRSS): after warm-up {reference.rss:,} KiB, at the end "
            f"{end.rss:,} KiB, moved {moved:+,} KiB ({percent(moved, reference.rss)})"
            + (f"; peak (VmHWM) {peak:,} KiB" if peak else "")
        )
        if end.descriptors != reference.descriptors:
            soak.failures.append(
                f"server descriptors at the end {end.descriptors} != after warm-up "
                f"{reference.descriptors}"
            )
    else:
        soak.failures.append("no post-warm-up figures")
    say(f"server exit status after SIGTERM: {exitStatus}")
    if exitStatus != 0:
        soak.failures.append(f"server exit status {exitStatus} after SIGTERM")
    for note in soak.notes:
        say(f"note: {note}")
    for failure in soak.failures:
        say(f"FAILED: {failure}")
    say(f"result: {'PASS' if not soak.failures else 'FAIL'} ({time.monotonic() - soak.started:.1f}s)")
    return 0 if not soak.failures else 1


def parseArguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Soak-test twistd tlsreply on 127.0.0.1 with good and bad clients.",
    )
    parser.add_argument("--quick", action="store_true", help="a CI-sized run (about 20 s)")
    parser.add_argument("--deadline", type=float, help="seconds the whole run may take "
                        f"(default {FULL.deadline:g}, quick {QUICK.deadline:g})")
    parser.add_argument("--mixed", type=int, help="connections in the mixed phase")
    parser.add_argument("--baseline", type=int, help="connections in the good-only baseline")
    parser.add_argument("--idle", type=int, help="idle connections held at once")
    parser.add_argument("--burst", type=int, help="good clients released at once")
    parser.add_argument("--workers", type=int, help="client threads in the baseline and mixed phases")
    parser.add_argument("--handshake-timeout", type=float, help="the server's --handshake-timeout")
    parser.add_argument("--growth-limit", type=int, default=2048, metavar="KIB",
                        help="KiB the server's memory may grow over the mixed phase's "
                        "second half (default 2048)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the client mix (default 1)")
    parser.add_argument("--twistd", help="the twistd to run (default: next to this Python)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for twistd tlsreply; may be repeated")
    arguments = parser.parse_args(argv)
    limits = {"mixed": 100_000, "baseline": 100_000, "idle": 10_000, "burst": 1_000, "workers": 256}
    for name, limit in limits.items():
        value = getattr(arguments, name)
        if value is not None and not 1 <= value <= limit:
            parser.error(f"--{name} must be between 1 and {limit}")
    if arguments.deadline is not None and not 0 < arguments.deadline <= 3600:
        parser.error("--deadline must be between 0 and 3600 seconds")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parseArguments(argv)
    defaults = QUICK if arguments.quick else FULL
    sizes = Sizes(
        warmUp=defaults.warmUp,
        baseline=arguments.baseline or defaults.baseline,
        mixed=arguments.mixed or defaults.mixed,
        idle=arguments.idle or defaults.idle,
        burst=arguments.burst or defaults.burst,
        workers=arguments.workers or defaults.workers,
        handshakeTimeout=(
            arguments.handshake_timeout
            if arguments.handshake_timeout is not None
            else defaults.handshakeTimeout
        ),
        deadline=arguments.deadline or defaults.deadline,
        growthLimit=arguments.growth_limit,
    )
    if not Path("/proc/self/fd").is_dir():
        say("soak: needs /proc (Linux)")
        return 2
    twistd = arguments.twistd or str(Path(sys.executable).with_name("twistd"))
    if not Path(twistd).exists():
        twistd = shutil.which("twistd") or twistd
    limit = raiseDescriptorLimit()
    deadline = Deadline(sizes.deadline)
    workDirectory = Path(tempfile.mkdtemp(prefix="tlsreply-soak-"))
    server = Server(
        twistd, workDirectory,
        ["--handshake-timeout", f"{sizes.handshakeTimeout:g}", *arguments.server_arg],
    )

    def watchdog() -> None:
        say(f"soak: watchdog: still running {sizes.deadline + 60:g}s after start; killing the server")
        server.process.kill()
        os._exit(3)

    dog = threading.Timer(sizes.deadline + 60, watchdog)
    dog.daemon = True
    dog.start()
    say(
        f"tlsreply soak ({'quick' if arguments.quick else 'full'}): {' '.join(server.command)}"
    )
    say(
        f"  server pid {server.pid}, working directory {workDirectory}; {os.cpu_count()} CPUs "
        f"shared by server and clients; RLIMIT_NOFILE {limit}; deadline {sizes.deadline:g}s"
    )
    say(
        f"  sizes: warm-up {sizes.warmUp}, baseline {sizes.baseline}, mixed {sizes.mixed}, "
        f"idle {sizes.idle}, burst {sizes.burst}; {sizes.workers} workers; seed {arguments.seed}"
    )
    soak: Soak | None = None
    exitStatus: int | None = None
    try:
        port = server.waitForPort(min(30.0, deadline.remaining()))
        if port is None:
            say("soak: the server did not start listening; its output:")
            for line in server.lines[-30:]:
                say("  " + line)
            return 2
        clients = Clients(port, workDirectory / "certs" / "dev-cert.pem", sizes.handshakeTimeout)
        soak = Soak(sizes, server, clients, deadline, arguments.seed, arguments.quick)
        say(f"  listening on {LOOPBACK}:{port}")
        soak.snapshot("start (listening)")
        soak.warmUp()
        soak.baseline()
        soak.mixed()
        soak.idle()
        soak.burst()
        soak.snapshot("end (server has closed everything)")
    except DeadlineExceeded as e:
        say(f"soak: {e}")
        if soak is not None:
            soak.failures.append(str(e))
            exitStatus = server.stop(15)
            report(soak, exitStatus)
        return 2
    finally:
        if exitStatus is None:
            exitStatus = server.stop(15)
        dog.cancel()
        shutil.rmtree(workDirectory, ignore_errors=True)
    return report(soak, exitStatus)


if __name__ == "__main__":
    sys.exit(main())

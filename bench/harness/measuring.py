"""
One cell of the table: a server in one column, measured once. A rate cell
counts handshakes over the server's CPU time in a window; a memory cell
reads the server's memory before and with many connections held open.
"""

from __future__ import annotations

import json
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness.processes import LineReader, note, spawn, stop, waitUntil
from bench.harness.procfs import coreTimes, treeDescriptors, treePeakRSS, treeRSS
from bench.harness.servers import RunningServer, Server, checkReply, runningServer
from bench.harness.settings import (
    CLIENT_CPU,
    DISTURBED,
    RETRIES,
    SATURATED,
    SERVER_CPU,
    CellError,
    Column,
    Options,
)
from bench.harness.tools import Credentials


@dataclass
class Window:
    """
    What one load generator run measured: its own figures, and over the
    measured window the server's CPU seconds, the wall seconds, and each
    core's busy and stolen share.
    """

    figures: dict[str, Any]
    serverCPU: float = 0.0
    wall: float = 0.0
    coreBusy: dict[int, float] = field(default_factory=dict)
    coreSteal: dict[int, float] = field(default_factory=dict)


def runLoadGenerator(
    loadgen: Path,
    running: RunningServer,
    column: Column,
    options: Options,
    duration: float,
    warmup: float,
    marks: bool = True,
) -> Window:
    """
    One load generator run in rate mode, pinned to the client core. With
    C{marks}, the server's CPU and the cores' times are read when the
    generator says the measured window starts and again when it ends.
    """
    command = [
        "taskset", "-c", str(CLIENT_CPU), str(loadgen),
        "--port", str(running.port),
        "--tls", column.tls,
        "--concurrency", str(options.concurrency),
        "--warmup", f"{warmup:g}",
        "--duration", f"{duration:g}",
    ]
    if column.resume:
        command.append("--resume")
    if marks:
        command.append("--marks")
    process = spawn(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    reader = LineReader(process.stdout)
    window = Window({})
    try:
        if marks:
            line = reader.readline(warmup + 30)
            if line != "start":
                raise CellError(f"the load generator did not start measuring ({line!r})")
            cpuStart, wallStart, coresStart = running.cpu(), time.monotonic(), coreTimes()
            line = reader.readline(duration + 30)
            if line != "end":
                raise CellError(f"the load generator did not end measuring ({line!r})")
            cpuEnd, wallEnd, coresEnd = running.cpu(), time.monotonic(), coreTimes()
            window.serverCPU, window.wall = cpuEnd - cpuStart, wallEnd - wallStart
            for core, end in coresEnd.items():
                start = coresStart.get(core)
                if start is not None and end.total > start.total:
                    total = end.total - start.total
                    window.coreBusy[core] = (end.busy - start.busy) / total
                    window.coreSteal[core] = (end.steal - start.steal) / total
        line = reader.readline(60)
        if line is None:
            raise CellError("the load generator printed no result")
        window.figures = json.loads(line)
        process.wait(timeout=30)
    finally:
        stop(process, grace=5)
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if process.stderr:
            process.stderr.close()
        process.stdout.close()
    if stderr.strip():
        window.figures["stderr"] = stderr.strip()[-2000:]
    return window


def measureRate(
    loadgen: Path,
    server: Server,
    column: Column,
    credentials: Credentials,
    workDirectory: Path,
    options: Options,
) -> dict[str, Any]:
    """
    One rate cell: start, check, warm up and measure, stop. A run that
    other processes disturbed (they took more than a tenth of the server's
    core, or the hypervisor did) is repeated, at most twice; the least
    disturbed run is kept.
    """
    best: dict[str, Any] | None = None
    for attempt in range(1 + RETRIES):
        cell = measureRateOnce(loadgen, server, column, credentials, workDirectory, options)
        cell["attempts"] = attempt + 1
        if best is None or cell["disturbance"] < best["disturbance"]:
            best = cell
        if cell["bottleneck"] != "disturbed" or cell["errors"] or attempt == RETRIES:
            break
        note(f"    {server.name} {column.key}: disturbed (other load "
             f"{cell['disturbance']:.0%} of the server's core), running it again")
    assert best is not None
    return best


def measureRateOnce(
    loadgen: Path,
    server: Server,
    column: Column,
    credentials: Credentials,
    workDirectory: Path,
    options: Options,
) -> dict[str, Any]:
    """
    One run of a rate cell, and what held it back: the server (its core
    full), the client (its core full), other processes on the server's
    core, or latency (neither core full).
    """
    with runningServer(server, credentials, workDirectory, column) as running:
        facts = checkReply(running.port, column, credentials)
        window = runLoadGenerator(
            loadgen, running, column, options, options.duration, options.warmup
        )
        if not running.alive():
            raise CellError(f"{server.name} exited during the run:\n{running.logTail()}")
        server.checkAfterRun(int(window.figures["handshakes"]))
    figures, serverCPU, wall = window.figures, window.serverCPU, window.wall
    handshakes = int(figures["handshakes"])
    errors = int(figures["errors_total"])
    utilisation = serverCPU / wall if wall > 0 else 0.0
    serverCore = window.coreBusy.get(SERVER_CPU, utilisation)
    clientCore = window.coreBusy.get(CLIENT_CPU, 0.0)
    disturbance = max(0.0, serverCore - utilisation) + window.coreSteal.get(SERVER_CPU, 0.0)
    if utilisation >= SATURATED:
        bottleneck = "server"
    elif disturbance > DISTURBED:
        bottleneck = "disturbed"
    elif clientCore >= SATURATED:
        bottleneck = "client"
    else:
        bottleneck = "latency"
    return {
        "check": facts,
        "handshakes": handshakes,
        "serverCPU": serverCPU,
        "wall": wall,
        "perCPUSecond": handshakes / serverCPU if serverCPU > 0 else 0.0,
        "cpuMicroseconds": serverCPU * 1e6 / handshakes if handshakes else 0.0,
        "wallRate": float(figures["rate_per_s"]),
        "p50": figures["latency_us"]["p50"] / 1000,
        "p99": figures["latency_us"]["p99"] / 1000,
        "errors": errors,
        "errorKinds": {k: v for k, v in figures["errors"].items() if v},
        "resumedRatio": float(figures["resumed_ratio"]),
        "serverUtilisation": utilisation,
        "clientUtilisation": float(figures["client_cpu_ratio"]),
        "serverCoreBusy": serverCore,
        "clientCoreBusy": clientCore,
        "disturbance": disturbance,
        "bottleneck": bottleneck,
        "protocol": figures["protocol"],
        "cipher": figures["cipher"],
        "loadgen": figures,
    }


def measureMemory(
    loadgen: Path,
    server: Server,
    column: Column,
    credentials: Credentials,
    workDirectory: Path,
    options: Options,
) -> dict[str, Any]:
    """
    One memory cell: start, check, warm up with a short run of full
    handshakes, wait until the server has closed them, read its RSS; open N
    idle, held or burst connections; once all are in place and the server
    has a descriptor for each, read its RSS again. KiB per connection is the
    difference over N. Then the client closes them all, and once the server
    has closed its side too its RSS is read a third time: what the
    connections left behind (memory its allocator kept). The peak (the
    processes' C{VmHWM}) is kept too: in the burst column it is what many
    handshakes at once cost at their height.
    """
    count = options.burst if column.hold == "burst" else options.connections
    with runningServer(server, credentials, workDirectory, column) as running:
        facts = checkReply(running.port, column, credentials)
        pid = running.process.pid
        # The descriptors of a quiet server, before the warm-up.
        quiet = treeDescriptors(pid)
        warm = runLoadGenerator(
            loadgen, running, column, options, duration=0.5, warmup=0, marks=False
        ).figures
        if warm["errors_total"]:
            raise CellError(f"warm-up errors: {warm['errors']}")
        if not waitUntil(lambda: treeDescriptors(pid) <= quiet, 10, step=0.05):
            raise CellError(
                f"{server.name} kept {treeDescriptors(pid) - quiet} connections "
                "open 10 s after the warm-up"
            )
        time.sleep(0.3)
        before, descriptorsBefore = treeRSS(pid), treeDescriptors(pid)
        process = spawn(
            [
                "taskset", "-c", str(CLIENT_CPU), str(loadgen),
                "--port", str(running.port),
                "--tls", column.tls,
                f"--{column.hold}", str(count),
                # A burst starts every connection at once, whatever this says.
                "--concurrency", "64",
                "--timeout", "20",
                "--max-hold", "60",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdin is not None and process.stdout is not None
        reader = LineReader(process.stdout)
        try:
            started = time.monotonic()
            line = reader.readline(60)
            if line != "ready":
                raise CellError(f"not all {count} connections could be placed: {line!r}")
            placed = count
            accepted = waitUntil(
                lambda: treeDescriptors(pid) >= descriptorsBefore + placed, 10
            )
            time.sleep(0.2)
            after, descriptorsAfter = treeRSS(pid), treeDescriptors(pid)
            peak = treePeakRSS(pid)
            sampled = time.monotonic() - started
            process.stdin.close()
            result = reader.readline(30)
            process.wait(timeout=30)
            # The client has closed them all; the server closes its side.
            released = waitUntil(lambda: treeDescriptors(pid) <= descriptorsBefore, 15,
                                 step=0.05)
            time.sleep(0.2)
            left = treeRSS(pid)
        finally:
            stop(process, grace=5)
            with suppress(OSError):
                process.stdin.close()
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            if process.stderr:
                process.stderr.close()
            process.stdout.close()
        if not running.alive():
            raise CellError(f"{server.name} exited during the run:\n{running.logTail()}")
    figures = json.loads(result) if result else {}
    errors = int(figures.get("errors_total", 1))
    open_ = descriptorsAfter - descriptorsBefore
    cell = {
        "check": facts,
        "kibPerConnection": (after - before) / placed,
        "kibPeakPerConnection": (peak - before) / placed,
        "kibLeftPerConnection": (left - before) / placed,
        "connections": placed,
        "rssBeforeKiB": before,
        "rssAfterKiB": after,
        "rssPeakKiB": peak,
        "rssLeftKiB": left,
        "allReleased": released,
        "setupSeconds": float(figures.get("setup_s", 0.0)),
        "serverDescriptorsOpened": open_,
        "allAccepted": accepted,
        "secondsToSample": sampled,
        "errors": errors,
        "errorKinds": {k: v for k, v in figures.get("errors", {}).items() if v},
        "loadgen": figures,
    }
    if stderr.strip():
        cell["stderr"] = stderr.strip()[-2000:]
    if open_ < placed * 0.95:
        cell["warning"] = (
            f"the server held only {open_} of {placed} connections when its memory was read"
        )
    return cell

#!/usr/bin/env python3
"""
tlsreply's benchmark: handshakes per server-CPU-second against nginx.

For each server (row) and each column, the harness starts the server pinned
to CPU 0, checks that it answers byte for byte, drives it with the project's
own C load generator (C{bench/loadgen.c}) pinned to CPU 1, and reads the
server's CPU time from C{/proc} over exactly the measured window. The
headline figure is handshakes per server-CPU-second: unlike a wall-clock
rate it does not depend on how fast the load generator is, so servers can be
compared even where one client core cannot saturate the server core (the
table says where that happened). Every figure of every other server is
printed as a ratio to nginx's, measured in the same run, so the machine's
speed and noise cancel out as far as they can.

Columns: full handshakes (RSA-2048 and ECDSA P-256 TLS 1.3, ECDSA TLS 1.2),
resumed handshakes (TLS 1.3 and 1.2), and the server's memory per idle
connection (TCP only) and per held connection (handshake done, client
stalls).

Rows: nginx's stream module (Debian's packages, unpacked into a cache
folder, one worker), tlsreply at its defaults, tlsreply with C{--workers 2}
(once it has the option), bare Twisted, uvloop with the standard library's
C{ssl}, and any C{--tlsreply-checkout NAME=DIR}.

Everything runs on 127.0.0.1, every wait has a bound, and every process the
harness starts is stopped, also on errors and Ctrl-C. Exit status: 0 when
every cell ran without an error, 1 when any cell had an error, 2 when the
benchmark could not run at all (a missing compiler, no nginx).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script (bench/run.py): the checkout's folder holds the harness.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness.chart import drawChart  # noqa: E402
from bench.harness.measuring import measureMemory, measureRate  # noqa: E402
from bench.harness.processes import (  # noqa: E402
    Interrupted,
    note,
    raiseDescriptorLimit,
    stopAll,
    unwindOnSignals,
)
from bench.harness.reporting import (  # noqa: E402
    median,
    printReport,
    ratios,
    resultsDocument,
    runNotes,
    summarise,
)
from bench.harness.scaling import runScaling  # noqa: E402
from bench.harness.servers import (  # noqa: E402
    BareTwistedServer,
    NginxServer,
    Server,
    TlsreplyServer,
    UvloopServer,
)
from bench.harness.settings import (  # noqa: E402
    BENCH,
    CLIENT_CPU,
    COLUMNS,
    COLUMNS_BY_KEY,
    REPO,
    BenchmarkError,
    CellError,
    Options,
)
from bench.harness.tools import (  # noqa: E402
    Nginx,
    buildLoadGenerator,
    makeCredentials,
    obtainNginx,
)


def parseArguments(argv: Sequence[str]) -> Options:
    """
    The command line (see C{--help}).
    """
    names = ["nginx", "tlsreply", "tlsreply-metrics", "tlsreply-workers", "bare-twisted", "uvloop"]
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description=(
            "Measure TLS handshakes per server-CPU-second (and memory per "
            "connection) of tlsreply and reference servers, as ratios to "
            "nginx measured in the same run. Server on CPU 0, load generator "
            "on CPU 1, everything on 127.0.0.1."
        ),
        epilog=(
            "Columns: " + ", ".join(f"{c.key} ({c.title})" for c in COLUMNS)
            + ". A mark on a median says the server used less than 90% of its "
            "core, and why: † the load generator's core was full, ‡ neither core "
            "was (latency), § other processes took the server's core. Exit status "
            "1 when any cell had an error, 2 when the benchmark could not run."
        ),
    )
    parser.add_argument(
        "--servers", default=",".join(names),
        help="comma-separated rows, of: " + ", ".join(names) + " (default: all)",
    )
    parser.add_argument(
        "--columns", default=",".join(COLUMNS_BY_KEY),
        help="comma-separated columns (default: all)",
    )
    parser.add_argument("--repeat", type=int, default=5,
                        help="repetitions of every cell; the median is reported (5)")
    parser.add_argument("--duration", type=float, default=1.5,
                        help="measured seconds per rate cell (1.5)")
    parser.add_argument("--warmup", type=float, default=0.5,
                        help="seconds of load before the measured window (0.5)")
    parser.add_argument("--concurrency", type=int, default=48,
                        help="connections in flight from the load generator (48)")
    parser.add_argument("--connections", type=int, default=500,
                        help="idle or held connections in the memory columns (500)")
    parser.add_argument("--burst", type=int, default=1000,
                        help="connections started at once in the burst column (1000)")
    parser.add_argument(
        "--tlsreply-checkout", action="append", default=[], metavar="NAME=DIR",
        help="also measure the tlsreply of another checkout (DIR/.venv/bin/twistd, "
        "cwd DIR) as row NAME; may be repeated",
    )
    parser.add_argument("--smoke", action="store_true",
                        help="about a second per cell, one repetition, 100 connections "
                        "for memory and the burst (for CI)")
    parser.add_argument(
        "--scaling", metavar="N,N,...",
        help="instead of the table: handshakes per wall-second of tlsreply --workers N "
        "(and nginx with N workers) for each N, the server on cores 0 to N-1 and a load "
        "generator on each core left (sharing every core where none is left); rate "
        "columns of --columns only, e.g. --scaling 1,2 --columns ecdsa13,resumed12",
    )
    parser.add_argument("--json", type=Path, help="write every raw and median figure here")
    parser.add_argument("--chart", type=Path, default=BENCH / "chart.png",
                        help="the PNG chart of ratios to nginx (default: bench/chart.png)")
    parser.add_argument("--no-chart", action="store_true", help="draw no chart")
    arguments = parser.parse_args(argv)

    servers = [name.strip() for name in arguments.servers.split(",") if name.strip()]
    for name in servers:
        if name not in names:
            parser.error(f"--servers: unknown server {name!r} (known: {', '.join(names)})")
    columns = []
    for key in arguments.columns.split(","):
        if key.strip() not in COLUMNS_BY_KEY:
            parser.error(f"--columns: unknown column {key!r} (known: {', '.join(COLUMNS_BY_KEY)})")
        columns.append(COLUMNS_BY_KEY[key.strip()])
    checkouts: list[tuple[str, Path]] = []
    for item in arguments.tlsreply_checkout:
        name, sep, directory = item.partition("=")
        if not sep or not name or not directory:
            parser.error(f"--tlsreply-checkout: expected NAME=DIR, got {item!r}")
        if name in names or name in (n for n, _ in checkouts):
            parser.error(f"--tlsreply-checkout: the name {name!r} is taken")
        checkouts.append((name, Path(directory).resolve()))
    scaling: list[int] = []
    if arguments.scaling:
        try:
            scaling = sorted({int(n) for n in arguments.scaling.split(",") if n.strip()})
        except ValueError:
            parser.error(f"--scaling: expected worker counts such as 1,2,4, got {arguments.scaling!r}")
        if not scaling or not all(1 <= n <= 256 for n in scaling):
            parser.error("--scaling: worker counts from 1 to 256")
        if not any(column.kind == "rate" for column in columns):
            parser.error("--scaling: needs at least one rate column in --columns")
    if arguments.smoke:
        arguments.repeat, arguments.duration, arguments.warmup = 1, 0.8, 0.3
        arguments.connections = min(arguments.connections, 100)
        arguments.burst = min(arguments.burst, 100)
    if arguments.repeat < 1 or arguments.duration <= 0 or arguments.warmup < 0:
        parser.error("--repeat must be at least 1, --duration positive, --warmup >= 0")
    if not 1 <= arguments.concurrency <= 10000 or not 1 <= arguments.connections <= 20000:
        parser.error("--concurrency: 1 to 10000; --connections: 1 to 20000")
    if not 1 <= arguments.burst <= 20000:
        parser.error("--burst: 1 to 20000")
    return Options(
        servers=servers,
        columns=columns,
        repeat=arguments.repeat,
        duration=arguments.duration,
        warmup=arguments.warmup,
        concurrency=arguments.concurrency,
        connections=arguments.connections,
        burst=arguments.burst,
        scaling=scaling,
        checkouts=checkouts,
        json=arguments.json,
        chart=None if arguments.no_chart else arguments.chart,
        smoke=arguments.smoke,
    )


def makeServers(options: Options, nginx: Nginx | None) -> list[Server]:
    """
    The rows, in table order.
    """
    servers: list[Server] = []
    for name in options.servers:
        if name == "nginx" and nginx is not None:
            servers.append(NginxServer(nginx))
        elif name == "tlsreply":
            servers.append(TlsreplyServer("tlsreply", "tlsreply (defaults)", REPO))
        elif name == "tlsreply-metrics":
            servers.append(
                TlsreplyServer("tlsreply-metrics", "tlsreply --metrics", REPO, metrics=True)
            )
        elif name == "tlsreply-workers":
            servers.append(
                TlsreplyServer("tlsreply-workers", "tlsreply --workers 2", REPO, workers=2)
            )
        elif name == "bare-twisted":
            servers.append(BareTwistedServer())
        elif name == "uvloop":
            servers.append(UvloopServer())
    for name, directory in options.checkouts:
        servers.append(TlsreplyServer(name, f"{name} (tlsreply at {directory})", directory))
    return servers


def runBenchmark(options: Options, servers: list[Server], loadgen: Path) -> dict[str, Any]:
    """
    Every repetition of every column for every server. Within a repetition
    the servers take turns per column (their order rotates each time), so
    that slow drifts of a shared machine fall on all of them alike.
    """
    measured = [server for server in servers if not server.skipped]
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        server.name: {column.key: [] for column in options.columns} for server in measured
    }
    total = len(measured) * len(options.columns) * options.repeat
    done = 0
    with tempfile.TemporaryDirectory(prefix="tlsreply-bench-") as temporary:
        base = Path(temporary)
        credentials = makeCredentials(base)
        for repetition in range(options.repeat):
            for column in options.columns:
                shift = repetition % len(measured)
                for server in measured[shift:] + measured[:shift]:
                    done += 1
                    workDirectory = base / f"{server.name}-{column.key}-{repetition + 1}"
                    workDirectory.mkdir()
                    started = time.monotonic()
                    measure = measureRate if column.kind == "rate" else measureMemory
                    try:
                        cell = measure(
                            loadgen, server, column, credentials[column.keyType],
                            workDirectory, options,
                        )
                    except (CellError, OSError, subprocess.SubprocessError, ssl.SSLError,
                            ValueError, KeyError) as error:
                        cell = {"failure": f"{type(error).__name__}: {error}", "errors": 1}
                    cell["seconds"] = round(time.monotonic() - started, 2)
                    raw[server.name][column.key].append(cell)
                    note(f"[{done}/{total}] {server.name} {column.key} "
                         f"#{repetition + 1}: {summarise(cell, column)}")
    return raw


def scalingMain(options: Options, nginx: Nginx | None, loadgen: Path, began: float) -> int:
    """
    The scaling mode: its table, and its figures in the JSON.
    """
    note(f"bench: scaling over N = {', '.join(map(str, options.scaling))}")
    with tempfile.TemporaryDirectory(prefix="tlsreply-bench-") as temporary:
        base = Path(temporary)
        result = runScaling(options, nginx, loadgen, makeCredentials(base), base)
    errors = sum(
        m["errors"] + (0 if m["repetitions"] else 1)
        for columns in result["medians"].values()
        for byWorkers in columns.values()
        for m in byWorkers.values()
    )
    if options.json is not None:
        document = {
            "mode": "scaling",
            "options": {"scaling": options.scaling, "columns": [c.key for c in options.columns],
                        "repeat": options.repeat, "duration": options.duration,
                        "warmup": options.warmup, "concurrency": options.concurrency},
            **result,
            "errors": errors,
            "seconds": round(time.monotonic() - began, 1),
        }
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(document, indent=1) + "\n")
    return 1 if errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the benchmark and print the report; the exit status says whether
    every cell ran clean.
    """
    options = parseArguments(sys.argv[1:] if argv is None else argv)
    began = time.monotonic()
    unwindOnSignals()
    # The harness itself stays off the server's core.
    if (os.cpu_count() or 1) < 2:
        raise BenchmarkError("the benchmark needs two cores (server and load generator)")
    with suppress(OSError):
        os.sched_setaffinity(0, {CLIENT_CPU})
    raiseDescriptorLimit()

    try:
        loadgen = buildLoadGenerator()
        nginx = obtainNginx() if "nginx" in options.servers else None
        if options.scaling:
            return scalingMain(options, nginx, loadgen, began)
        servers = makeServers(options, nginx)
        note(f"bench: {len(servers)} servers x {len(options.columns)} columns x "
             f"{options.repeat} repetitions")
        raw = runBenchmark(options, servers, loadgen)
    finally:
        stopAll()

    medians = {
        name: {column.key: median(raw[name][column.key], column) for column in options.columns}
        for name in raw
    }
    relative = ratios(medians, options)
    elapsed = time.monotonic() - began
    notes = runNotes(options, servers, raw, medians, loadgen)
    if options.chart is not None:
        chartNote = drawChart(options.chart, servers, medians, relative, options)
        notes.append(chartNote or f"chart: {options.chart}")
    notes.append(f"Run time: {elapsed / 60:.1f} min.")
    printReport(servers, medians, relative, options, notes)

    errors = sum(m["errors"] for columns in medians.values() for m in columns.values())
    if options.json is not None:
        document = resultsDocument(
            options, servers, raw, medians, relative, notes, loadgen, errors, elapsed
        )
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(document, indent=1) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkError as error:
        note(f"bench: {error}")
        sys.exit(2)
    except (KeyboardInterrupt, Interrupted):
        stopAll()
        note("bench: interrupted; every process it started is stopped")
        sys.exit(130)

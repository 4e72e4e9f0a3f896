"""
The scaling mode (C{bench/run.py --scaling 1,2,4}): handshakes per
wall-second of C{tlsreply --workers N} (and of nginx with N worker
processes) against N, each server on N cores and the load generators on the
cores left.

The table's cells pin every server to one core, which shows what a
handshake costs; this mode shows what more cores buy. For each N and each
rate column, the server may run on cores 0 to N-1 (its processes move
freely between them) and one load generator runs on each remaining core,
each with its share of the connections in flight. Where N leaves no core
(N at least the machine's count), the server and one load generator share
every core, unpinned, and the figure says how the two split the machine,
not what the server could do alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.harness.processes import LineReader, note, say, spawn, stop
from bench.harness.servers import (
    NginxServer,
    Server,
    TlsreplyServer,
    checkReply,
    runningServer,
)
from bench.harness.settings import REPO, CellError, Column, KeyType, Options
from bench.harness.tools import Credentials, Nginx


def placement(workers: int, cores: int) -> tuple[str, list[str]]:
    """
    Where the server and the load generators run: the server's C{taskset}
    list and one list per load generator. (Every process is given one: the
    harness itself is pinned to a core, and its children would inherit it.)

    @param workers: the server's worker processes, N.
    @param cores: the machine's core count.
    """
    everything = f"0-{cores - 1}"
    if workers >= cores:
        return everything, [everything]
    server = "0" if workers == 1 else f"0-{workers - 1}"
    return server, [str(core) for core in range(workers, cores)]


def scalingServers(options: Options, nginx: Nginx | None, workers: int) -> list[Server]:
    """
    The servers of one N: nginx with N worker processes (when it is one of
    C{--servers}) and tlsreply C{--workers N}.
    """
    servers: list[Server] = []
    if nginx is not None:
        servers.append(NginxServer(nginx, workers=workers))
    if "tlsreply" in options.servers:
        servers.append(
            TlsreplyServer("tlsreply", "tlsreply", REPO, workers=workers)
        )
    return servers


def measureScalingCell(
    loadgen: Path,
    server: Server,
    column: Column,
    credentials: Credentials,
    workDirectory: Path,
    options: Options,
    workers: int,
    cores: int,
) -> dict[str, Any]:
    """
    One cell of the scaling table: the server on its cores, the load
    generators on theirs, all started together; the server's CPU is read
    once every generator has begun its measured window and again when the
    first has ended it. Handshakes per wall-second is the sum of the
    generators' own rates.
    """
    serverCPUs, clientCPUs = placement(workers, cores)
    concurrency = max(1, options.concurrency // len(clientCPUs))
    with runningServer(server, credentials, workDirectory, column, cpus=serverCPUs) as running:
        facts = checkReply(running.port, column, credentials)
        processes = []
        try:
            for cpu in clientCPUs:
                command = [
                    str(loadgen), "--port", str(running.port), "--tls", column.tls,
                    "--concurrency", str(concurrency), "--warmup", f"{options.warmup:g}",
                    "--duration", f"{options.duration:g}", "--marks",
                ]
                if column.resume:
                    command.append("--resume")
                command = ["taskset", "-c", cpu, *command]
                process = spawn(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                assert process.stdout is not None
                processes.append((process, LineReader(process.stdout)))
            for _, reader in processes:
                if (line := reader.readline(options.warmup + 30)) != "start":
                    raise CellError(f"a load generator did not start measuring ({line!r})")
            cpuStart, wallStart = running.cpu(), time.monotonic()
            lines = [reader.readline(options.duration + 30) for _, reader in processes[:1]]
            cpuEnd, wallEnd = running.cpu(), time.monotonic()
            lines += [reader.readline(options.duration + 30) for _, reader in processes[1:]]
            if any(line != "end" for line in lines):
                raise CellError(f"a load generator did not end measuring ({lines!r})")
            figures = []
            for process, reader in processes:
                result = reader.readline(60)
                if result is None:
                    raise CellError("a load generator printed no result")
                figures.append(json.loads(result))
                process.wait(timeout=30)
        finally:
            for process, _ in processes:
                stop(process, grace=5)
                for stream in (process.stdout, process.stderr):
                    if stream is not None:
                        stream.close()
        if not running.alive():
            raise CellError(f"{server.name} exited during the run:\n{running.logTail()}")
    serverCPU, wall = cpuEnd - cpuStart, wallEnd - wallStart
    wallRate = sum(float(f["rate_per_s"]) for f in figures)
    serverCores = serverCPU / wall if wall > 0 else 0.0
    return {
        "check": facts,
        "workers": workers,
        "serverCPUs": serverCPUs,
        "clientCPUs": clientCPUs,
        "shared": workers >= cores,
        "wallRate": wallRate,
        "serverCores": serverCores,
        "clientCores": sum(float(f["client_cpu_ratio"]) for f in figures),
        "perCPUSecond": wallRate / serverCores if serverCores > 0 else 0.0,
        "errors": sum(int(f["errors_total"]) for f in figures),
        "resumedRatio": min(float(f["resumed_ratio"]) for f in figures),
        "loadgen": figures,
    }


def runScaling(
    options: Options,
    nginx: Nginx | None,
    loadgen: Path,
    credentials: dict[KeyType, Credentials],
    base: Path,
) -> dict[str, Any]:
    """
    Every N of C{--scaling}, every rate column, each server, C{--repeat}
    times (servers alternate; the median is kept), then the table.
    """
    cores = os.cpu_count() or 1
    columns = [column for column in options.columns if column.kind == "rate"]
    results: dict[str, dict[str, dict[int, list[dict[str, Any]]]]] = {}
    titles: dict[str, str] = {}
    for repetition in range(options.repeat):
        for workers in options.scaling:
            servers = scalingServers(options, nginx, workers)
            shift = repetition % max(1, len(servers))
            for column in columns:
                for server in servers[shift:] + servers[:shift]:
                    if server.skipped:
                        continue
                    titles[server.name] = server.title.removesuffix(" (absolute)")
                    directory = base / f"scaling-{server.name}-{workers}-{column.key}-{repetition}"
                    directory.mkdir()
                    try:
                        cell = measureScalingCell(
                            loadgen, server, column, credentials[column.keyType], directory,
                            options, workers, cores,
                        )
                    except (CellError, OSError, subprocess.SubprocessError, ValueError,
                            KeyError) as error:
                        cell = {"failure": f"{type(error).__name__}: {error}", "errors": 1}
                    note(f"scaling {server.name} N={workers} {column.key} #{repetition + 1}: "
                         + (cell.get("failure") or
                            f"{cell['wallRate']:,.0f}/s wall, server {cell['serverCores']:.2f} "
                            f"cores, client {cell['clientCores']:.2f}, errors {cell['errors']}"))
                    results.setdefault(server.name, {}).setdefault(column.key, {}).setdefault(
                        workers, []).append(cell)
    medians = scalingMedians(results)
    printScaling(medians, titles, columns, options, cores)
    return {"cores": cores, "medians": medians, "raw": results}


def scalingMedians(
    results: dict[str, dict[str, dict[int, list[dict[str, Any]]]]],
) -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
    """
    The median of each figure per server, column and N.
    """
    import statistics

    medians: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    for name, columns in results.items():
        for key, byWorkers in columns.items():
            for workers, cells in byWorkers.items():
                good = [cell for cell in cells if "failure" not in cell]
                figures: dict[str, Any] = {
                    figure: statistics.median(cell[figure] for cell in good) if good else None
                    for figure in ("wallRate", "serverCores", "clientCores", "perCPUSecond")
                }
                figures["errors"] = sum(int(cell.get("errors", 0)) for cell in cells)
                figures["repetitions"] = len(good)
                if good:
                    figures["serverCPUs"] = good[0]["serverCPUs"]
                    figures["clientCPUs"] = good[0]["clientCPUs"]
                    figures["shared"] = good[0]["shared"]
                medians.setdefault(name, {}).setdefault(key, {})[workers] = figures
    return medians


def printScaling(
    medians: dict[str, dict[str, dict[int, dict[str, Any]]]],
    titles: dict[str, str],
    columns: list[Column],
    options: Options,
    cores: int,
) -> None:
    """
    The scaling table: per server, column and N, handshakes per wall-second
    and over the smallest N's, how many cores the server and the clients
    used, and handshakes per server-CPU-second.
    """
    say("## Handshakes per wall-second against the number of worker processes")
    say()
    say("| server | column | N | server cores | load generator cores | handshakes/s wall "
        "| over the first N | server CPU used (cores) | client CPU used (cores) "
        "| handshakes per server-CPU-s | errors |")
    say("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, byColumn in medians.items():
        for column in columns:
            byWorkers = byColumn.get(column.key, {})
            first = byWorkers.get(min(options.scaling), {}).get("wallRate")
            for workers in options.scaling:
                m = byWorkers.get(workers)
                if m is None:
                    continue
                if not m["repetitions"]:
                    say(f"| {titles[name]} | {column.title} | {workers} | failed ||||||| "
                        f"{m['errors']} |")
                    continue
                speedup = f"{m['wallRate'] / first:.2f}" if first else "n/a"
                shared = m["shared"]
                say(f"| {titles[name]} | {column.title} | {workers} "
                    f"| {m['serverCPUs'] + (', shared' if shared else '')} "
                    f"| {','.join(m['clientCPUs']) + (', shared' if shared else '')} "
                    f"| {m['wallRate']:,.0f} | {speedup} | {m['serverCores']:.2f} "
                    f"| {m['clientCores']:.2f} | {m['perCPUSecond']:,.0f} | {m['errors']} |")
    say()
    say(f"- {cores} cores; median of {options.repeat} repetition(s), {options.duration:g} s "
        f"measured after {options.warmup:g} s of warm-up; {options.concurrency} connections "
        "in flight, split between the load generators (one per core left).")
    say("- tlsreply runs `--workers N`; nginx `worker_processes N`. Where N leaves no core "
        "for the load generator, server and generator share every core (\"shared\"): "
        "the wall rate then says how the two split the machine.")

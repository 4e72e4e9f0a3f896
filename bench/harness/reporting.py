"""
The report: medians over the repetitions, ratios to nginx, the two tables,
the notes under them, and the JSON document of every figure.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from collections import Counter
from contextlib import suppress
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.harness.processes import say
from bench.harness.servers import NginxServer, Server, TlsreplyServer
from bench.harness.settings import BOTTLENECK_MARKS, MEMORY_TIMEOUTS, Column, Options

#: Every cell of every server and column, as measured (L{bench.harness.measuring}).
Raw = dict[str, dict[str, list[dict[str, Any]]]]
#: The median figures, by server and column.
Medians = dict[str, dict[str, dict[str, Any]]]

RATE_FIGURES = [
    "perCPUSecond", "cpuMicroseconds", "wallRate", "p50", "p99",
    "resumedRatio", "serverUtilisation", "clientUtilisation",
    "serverCoreBusy", "clientCoreBusy", "disturbance",
]
MEMORY_FIGURES = [
    "kibPerConnection", "kibPeakPerConnection", "kibLeftPerConnection", "rssBeforeKiB",
    "rssAfterKiB", "rssPeakKiB", "rssLeftKiB", "secondsToSample", "setupSeconds",
]


def median(cells: list[dict[str, Any]], column: Column) -> dict[str, Any]:
    """
    The median of each figure over the repetitions that ran, with the
    errors summed and the most frequent bottleneck.
    """
    good = [cell for cell in cells if "failure" not in cell]
    figures = RATE_FIGURES if column.kind == "rate" else MEMORY_FIGURES
    result: dict[str, Any] = {
        name: statistics.median(cell[name] for cell in good) if good else None
        for name in figures
    }
    result["errors"] = sum(int(cell.get("errors", 0)) for cell in cells) + sum(
        1 for cell in cells if "failure" in cell
    )
    result["repetitions"] = len(good)
    if column.kind == "rate" and good:
        counts = Counter(cell["bottleneck"] for cell in good)
        result["bottleneck"] = counts.most_common(1)[0][0]
        result["bottlenecks"] = dict(counts)
    return result


def summarise(cell: dict[str, Any], column: Column) -> str:
    """
    One progress line for a cell.
    """
    if "failure" in cell:
        return "FAILED " + cell["failure"].splitlines()[0]
    attempts = f" ({cell['attempts']} runs)" if cell.get("attempts", 1) > 1 else ""
    if column.kind == "memory":
        text = (f"{cell['kibPerConnection']:.1f} KiB/conn over {cell['connections']} "
                f"({cell['secondsToSample']:.1f} s to sample), peak "
                f"{cell['kibPeakPerConnection']:.1f}, left after closing "
                f"{cell['kibLeftPerConnection']:.1f}")
        return text + (f"; {cell['warning']}" if "warning" in cell else "")
    text = (f"{cell['perCPUSecond']:,.0f}/CPU-s, {cell['wallRate']:,.0f}/s wall, "
            f"server {cell['serverUtilisation']:.0%}, client {cell['clientUtilisation']:.0%}, "
            f"other load {cell['disturbance']:.0%}, bound by {cell['bottleneck']}{attempts}, "
            f"resumed {cell['resumedRatio']:.0%}, errors {cell['errors']}")
    return text + (f" {cell['errorKinds']}" if cell["errors"] else "")


def ratios(
    medians: dict[str, dict[str, dict[str, Any]]], options: Options
) -> dict[str, dict[str, float | None]]:
    """
    Each server's headline figure over nginx's, per column.
    """
    result: dict[str, dict[str, float | None]] = {}
    reference = medians.get("nginx")
    for name, columns in medians.items():
        result[name] = {}
        for column in options.columns:
            key = "perCPUSecond" if column.kind == "rate" else "kibPerConnection"
            mine = columns[column.key].get(key)
            theirs = reference[column.key].get(key) if reference else None
            result[name][column.key] = mine / theirs if mine is not None and theirs else None
    return result


def metricsNote(medians: dict[str, dict[str, dict[str, Any]]], options: Options) -> str:
    """
    What C{--metrics} costs: the metrics row's handshakes per
    server-CPU-second over tlsreply's at its defaults, per rate column.
    """
    mine, defaults = medians.get("tlsreply-metrics"), medians.get("tlsreply")
    if mine is None or defaults is None:
        return ""
    parts = []
    for column in options.columns:
        with_, without = mine[column.key].get("perCPUSecond"), defaults[column.key].get("perCPUSecond")
        if column.kind == "rate" and with_ and without:
            parts.append(f"{column.title} {with_ / without:.3f}")
    if not parts:
        return ""
    return (
        "tlsreply --metrics over tlsreply (defaults), handshakes per server-CPU-second "
        "(1.000: metrics cost nothing; 0.950: 5% fewer): " + ", ".join(parts) + "."
    )


def headline(
    servers: list[Server],
    medians: dict[str, dict[str, dict[str, Any]]],
    relative: dict[str, dict[str, float | None]],
    options: Options,
) -> list[str]:
    """
    The main table: nginx's absolute figures, everyone else as a ratio; in
    the rate columns each figure carries how busy the server was (its CPU
    seconds over the window's wall seconds, the number behind the marks).
    """
    lines = [
        "| server | " + " | ".join(column.title for column in options.columns) + " |",
        "|---|" + "---|" * len(options.columns),
    ]
    for server in servers:
        if server.skipped:
            lines.append(f"| {server.title} | " + " | ".join(
                "skipped" for _ in options.columns) + " |")
            continue
        cells = []
        for column in options.columns:
            figures = medians[server.name][column.key]
            if figures["repetitions"] == 0:
                cells.append("failed")
                continue
            if server.name == "nginx" or "nginx" not in medians:
                value = figures["perCPUSecond" if column.kind == "rate" else "kibPerConnection"]
                text = f"{value:,.0f}" if column.kind == "rate" else f"{value:.1f}"
            else:
                ratio = relative[server.name][column.key]
                text = f"{ratio:.2f}" if ratio is not None else "n/a"
            if column.kind == "rate":
                text += f" ({figures['serverUtilisation']:.0%})"
                text += BOTTLENECK_MARKS[figures["bottleneck"]]
            if figures["errors"]:
                text += f" ({figures['errors']} errors)"
            cells.append(text)
        lines.append(f"| {server.title} | " + " | ".join(cells) + " |")
    return lines


def absolutes(
    servers: list[Server], medians: dict[str, dict[str, dict[str, Any]]], options: Options
) -> list[str]:
    """
    The second table: every absolute figure, one row per server and column.
    """
    rate = [column for column in options.columns if column.kind == "rate"]
    memory = [column for column in options.columns if column.kind == "memory"]
    lines: list[str] = []
    if rate:
        lines += [
            "| server | column | handshakes per server-CPU-s | µs server CPU per handshake "
            "| wall handshakes/s | p50 ms | p99 ms | server CPU | client CPU "
            "| other load on server core | resumed | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for server in servers:
            if server.skipped:
                continue
            for column in rate:
                m = medians[server.name][column.key]
                if m["repetitions"] == 0:
                    lines.append(f"| {server.title} | {column.title} | failed "
                                 f"||||||||| {m['errors']} |")
                    continue
                bound = BOTTLENECK_MARKS[m["bottleneck"]]
                lines.append(
                    f"| {server.title} | {column.title} | {m['perCPUSecond']:,.0f}{bound} "
                    f"| {m['cpuMicroseconds']:,.0f} | {m['wallRate']:,.0f} "
                    f"| {m['p50']:.1f} | {m['p99']:.1f} | {m['serverUtilisation']:.0%} "
                    f"| {m['clientUtilisation']:.0%} | {m['disturbance']:.0%} "
                    f"| {m['resumedRatio']:.2f} | {m['errors']} |"
                )
    if memory:
        if lines:
            lines.append("")
        lines += [
            "| server | column | KiB per connection | peak KiB per connection "
            "| KiB per connection left after closing | connections "
            "| server RSS before → with them → peak → after closing (KiB) | errors |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for server in servers:
            if server.skipped:
                continue
            for column in memory:
                m = medians[server.name][column.key]
                if m["repetitions"] == 0:
                    lines.append(f"| {server.title} | {column.title} | failed "
                                 f"||||| {m['errors']} |")
                    continue
                count = options.burst if column.hold == "burst" else options.connections
                lines.append(
                    f"| {server.title} | {column.title} | {m['kibPerConnection']:.1f} "
                    f"| {m['kibPeakPerConnection']:.1f} | {m['kibLeftPerConnection']:.1f} "
                    f"| {count} | {m['rssBeforeKiB']:,.0f} → {m['rssAfterKiB']:,.0f} "
                    f"→ {m['rssPeakKiB']:,.0f} → {m['rssLeftKiB']:,.0f} | {m['errors']} |"
                )
    return lines


def loadgenOpenSSL(loadgen: Path) -> str:
    """
    The OpenSSL the load generator runs with (C{loadgen --version}).
    """
    result = subprocess.run([str(loadgen), "--version"], capture_output=True, timeout=30)
    return result.stdout.decode(errors="replace").strip()


def machineFacts(loadgen: Path) -> dict[str, Any]:
    """
    What the figures depend on: processor, kernel, core count, OpenSSL of
    the load generator.
    """
    model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadgenOpenSSL": loadgenOpenSSL(loadgen),
        "loadgen": str(loadgen),
    }


def runNotes(
    options: Options, servers: list[Server], raw: Raw, medians: Medians, loadgen: Path
) -> list[str]:
    """
    The notes under the tables: how the run was made, with what, and every
    cell that was not what it should be.
    """
    notes = [
        "Rate columns: handshakes per server-CPU-second (higher is better); memory "
        "columns: KiB per connection (lower is better). nginx's row is absolute; every "
        "other row is a ratio to nginx from this run.",
        f"Median of {options.repeat} repetition(s); {options.duration:g} s measured after "
        f"{options.warmup:g} s of warm-up per cell; load generator with "
        f"{options.concurrency} connections in flight; memory over {options.connections} "
        f"idle or held connections, and {options.burst} started at once for the burst "
        "column (each reads the reply and the server's close_notify, then stalls).",
        "In brackets after each rate figure: how busy the server was, its CPU seconds "
        "over the wall seconds of the measured window (100%: one core, all the time). "
        "Where the server used less than 90% of its core over the window, a mark says "
        "why: † the load generator's core was full (the client was the bottleneck); "
        "‡ neither core was full (latency-bound: connections waiting on the network "
        "stack, e.g. Nagle and delayed ACKs); § other processes took more than 10% "
        "of the server's core (a disturbed run, repeated up to twice).",
        "Server pinned to CPU 0, load generator (bench/loadgen.c, "
        f"{loadgenOpenSSL(loadgen)}) to CPU 1.",
    ]
    with suppress(OSError, ValueError):
        if int(Path("/proc/sys/net/ipv4/tcp_tw_reuse").read_text()) == 0:
            notes.append(
                "net.ipv4.tcp_tw_reuse is 0: the load generator's closed connections "
                "keep their ports for a minute, and fast cells may run out of ports "
                "(connect errors); sysctl -w net.ipv4.tcp_tw_reuse=2 (Linux's default) "
                "lets loopback connections reuse them."
            )
    if any(isinstance(s, TlsreplyServer) for s in servers) and any(
        c.kind == "memory" for c in options.columns
    ):
        notes.append(
            "tlsreply rows in the memory columns run with " + " ".join(MEMORY_TIMEOUTS)
            + " so that its timeouts (10 s, 3 s) cannot close a connection before its "
            "memory is read; every other cell runs at its defaults."
        )
    for server in servers:
        openssl = f"OpenSSL: {server.openssl}" if server.openssl else ""
        extra = ""
        if isinstance(server, TlsreplyServer) and server.revision:
            extra = f"; revision {server.revision}"
        skipped = f"; skipped: {server.skipped}" if server.skipped else ""
        if isinstance(server, NginxServer):
            extra += f"; {server.nginx.origin}"
        notes.append(f"{server.title}: {openssl}{extra}{skipped}")
    metricsCost = metricsNote(medians, options)
    if metricsCost:
        notes.append(metricsCost)
    for label, mark in BOTTLENECK_MARKS.items():
        bound = [
            f"{name} in {column.title} ({medians[name][column.key]['serverUtilisation']:.0%} "
            "of its core)"
            for name in medians
            for column in options.columns
            if column.kind == "rate" and medians[name][column.key].get("bottleneck") == label
        ]
        if mark and bound:
            notes.append(f"Server not saturated ({mark.strip()} {label}): " + "; ".join(bound) + ".")
    for name, columns in raw.items():
        for key, cells in columns.items():
            for cell in cells:
                if "failure" in cell:
                    notes.append(f"{name} {key}: {cell['failure'].splitlines()[0]}")
                elif cell.get("warning"):
                    notes.append(f"{name} {key}: {cell['warning']}")
    return notes


def printReport(
    servers: list[Server],
    medians: Medians,
    relative: dict[str, dict[str, float | None]],
    options: Options,
    notes: list[str],
) -> None:
    """
    The report on standard output: the headline table, the absolute
    figures, the notes.
    """
    say("## Handshakes per server-CPU-second, as a ratio to nginx")
    say()
    for line in headline(servers, medians, relative, options):
        say(line)
    say()
    say("## Absolute figures (medians)")
    say()
    for line in absolutes(servers, medians, options):
        say(line)
    say()
    for line in notes:
        say(f"- {line}")


def resultsDocument(
    options: Options,
    servers: list[Server],
    raw: Raw,
    medians: Medians,
    relative: dict[str, dict[str, float | None]],
    notes: list[str],
    loadgen: Path,
    errors: int,
    elapsed: float,
) -> dict[str, Any]:
    """
    What C{--json} writes: every raw cell and every median, the options,
    the machine and the notes.
    """
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(),
        "machine": machineFacts(loadgen),
        "options": {
            **{k: v for k, v in asdict(options).items()
               if k not in ("columns", "json", "chart", "checkouts")},
            "columns": [c.key for c in options.columns],
            "checkouts": {n: str(d) for n, d in options.checkouts},
        },
        "servers": [
            {"name": s.name, "title": s.title, "openssl": s.openssl,
             "skipped": s.skipped}
            for s in servers
        ],
        "columns": [asdict(c) for c in options.columns],
        "medians": medians,
        "ratios": relative,
        "raw": raw,
        "errors": errors,
        "notes": notes,
        "seconds": round(elapsed, 1),
    }

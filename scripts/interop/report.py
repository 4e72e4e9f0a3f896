# -*- test-case-name: tests.test_interop -*-
"""
Run the interop matrix and report it: C{make interop}.

    python -m scripts.interop [--rows NAME,...] [--markdown PATH] [--json PATH]
                              [--allow-missing]

Every client runs every row; each cell is what the client did, judged
against what its stack is promised (L{scripts.interop.matrix.judge}). The
table (rows by clients, with the versions that ran) is written as
Markdown and JSON; any mismatch is listed and makes the exit status 1. A
client that is not installed is an error too (C{.ci/run} installs them
all), unless C{--allow-missing}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scripts.interop.clients import (
    Client,
    Observed,
    curlCffiClients,
    gnutlsClients,
    javaClient,
    nodeClient,
    opensslClients,
    pythonClient,
)
from scripts.interop.matrix import Cell, Row, Servers, judge, rows
from tlsreply.scenarios.pythonssl import PythonSSLFacts

ROOT = Path(__file__).parent.parent.parent

#: Debian's own Python (the C{python3} package), whose C{ssl} differs from
#: CPython's defaults (its minimum version is OpenSSL's).
SYSTEM_PYTHON = "/usr/bin/python3"

#: The client stacks that must each have a client in a full run.
EXPECTED_CLIENTS = ("openssl s_client", "curl", "python-ssl", "node", "java", "gnutls-cli",
                    "curl_cffi chrome131", "curl_cffi firefox144", "curl_cffi safari260")


def findClients(work: Path) -> tuple[list[Client], dict[str, PythonSSLFacts]]:
    """
    Every client installed here, and the facts of each Python client.
    """
    clients: list[Client] = [*opensslClients()]
    facts: dict[str, PythonSSLFacts] = {}
    pythons = [(sys.executable, "python-ssl")]
    if Path(SYSTEM_PYTHON).exists() and Path(SYSTEM_PYTHON).resolve() != Path(sys.executable).resolve():
        pythons.append((SYSTEM_PYTHON, "python-ssl (Debian)"))
    for index, (executable, name) in enumerate(pythons):
        directory = work / f"python{index}"
        directory.mkdir()
        found = pythonClient(executable, name, directory)
        if found is not None:
            client, values = found
            clients.append(client)
            facts[name] = PythonSSLFacts.fromValues(values)  # type: ignore[arg-type]
    for single in (nodeClient(work), javaClient(ROOT / "scripts" / "interop" / ".cache", work)):
        if single is not None:
            clients.append(single)
    clients += gnutlsClients()
    cffi = work / "cffi"
    cffi.mkdir()
    clients += curlCffiClients(sys.executable, cffi)
    return clients, facts


def runMatrix(selected: Sequence[Row], clients: Sequence[Client],
              facts: dict[str, PythonSSLFacts]) -> dict[str, dict[str, Cell]]:
    """
    Serve every row, run every client against all of them (a few clients
    at a time), and judge each cell.
    """
    servers = Servers(selected, clients)
    try:
        def runClient(client: Client) -> dict[str, Observed]:
            cases = [case for row in selected if (case := row.case(client)) is not None]
            return client.runAll(cases)

        with ThreadPoolExecutor(max_workers=3) as pool:
            observed = dict(zip([c.name for c in clients], pool.map(runClient, clients), strict=True))
        table: dict[str, dict[str, Cell]] = {}
        for row in selected:
            cells: dict[str, Cell] = {}
            for client in clients:
                expected = row.expected(client, facts)
                if row.unavailable is not None:
                    continue
                seen = observed[client.name].get(row.id, Observed(False, "no result"))
                resumed = servers.resumed(row, client)
                cells[client.name] = Cell(expected, seen, judge(row, expected, seen, resumed))
            table[row.id] = cells
        return table
    finally:
        servers.stop()


def _cellText(cell: Cell) -> str:
    text = cell.summary.replace("|", "\\|")
    if len(text) > 90:
        text = text[:87] + "..."
    mark = "" if cell.mismatch is None else " **MISMATCH**"
    return ("✓ accept" if cell.observed.accepted else f"✗ {text}") + mark


def markdown(selected: Sequence[Row], clients: Sequence[Client],
             table: dict[str, dict[str, Cell]], seconds: float) -> str:
    lines = [
        "# Interop matrix",
        "",
        "Written by `make interop` (`python -m scripts.interop`): every scenario, the",
        "default server, resumption (TLS 1.3 and 1.2) and the plain reply mode, served",
        "by the project's own fixtures on 127.0.0.1, against real TLS clients, each",
        "trusting only the scenario's test CA and checking the host name `localhost`.",
        "Each cell is what the client did: ✓ it completed the handshake and read the",
        "reply, or ✗ with its own error. Every cell matches the outcome the scenario",
        "states for the client's stack (`tlsreply scenarios --json`, `outcomes`),",
        "or is marked MISMATCH (and `make interop` fails).",
        "",
        "Every client sets a 10 s timeout, 2 s on the rows whose server stalls",
        "(`stall-handshake`, `stall-after-handshake`); a client without a timeout of",
        "its own is stopped by the harness at twice that, and its cell says so. The",
        "`truncated-reply` and `reset-after-reply` servers send an HTTP/1.0 reply",
        "with no length (only TLS can say where it ends); `slow-reply` sends its",
        "bytes 10 ms apart. Where one client does not do what its stack does",
        "(curl takes a truncated reply as complete), the cell is held to the",
        "client's own outcome (`scripts/interop/matrix.py`, `CLIENT_OUTCOMES`).",
        "",
        f"Run {datetime.date.today().isoformat()} in {seconds:.0f} s with:",
        "",
    ]
    lines += [f"- **{c.name}** (stack `{c.stack}`): {c.version}" for c in clients]
    lines += ["", "| row | " + " | ".join(c.name for c in clients) + " |",
              "| --- |" + " --- |" * len(clients)]
    for row in selected:
        if row.unavailable is not None:
            lines.append(f"| `{row.id}` | unavailable here: {row.unavailable} |")
            continue
        cells = table[row.id]
        lines.append(f"| `{row.id}` | " + " | ".join(_cellText(cells[c.name]) for c in clients)
                     + " |")
    notes = [row for row in selected if row.note]
    if notes:
        lines += ["", "Rows beyond the scenarios:", ""]
        lines += [f"- `{row.id}`: {row.note}." for row in notes]
    return "\n".join(lines) + "\n"


def asJSON(selected: Sequence[Row], clients: Sequence[Client],
           table: dict[str, dict[str, Cell]]) -> dict[str, Any]:
    return {
        "clients": [{"name": c.name, "stack": c.stack, "version": c.version} for c in clients],
        "rows": [
            {
                "row": row.id,
                "scenario": row.scenario.name if row.scenario else None,
                "unavailable": row.unavailable,
                "cells": {
                    name: {
                        "accepted": cell.observed.accepted,
                        "error": cell.observed.error,
                        "expected": cell.expected.describe(),
                        "mismatch": cell.mismatch,
                    }
                    for name, cell in table.get(row.id, {}).items()
                },
            }
            for row in selected
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.interop", description=__doc__)
    parser.add_argument("--rows", help="only these rows (scenario names, comma-separated)")
    parser.add_argument("--markdown", type=Path, help="write the table here (docs/interop.md)")
    parser.add_argument("--json", type=Path, help="write the results here (docs/interop.json)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="run without the clients that are not installed")
    options = parser.parse_args(argv)
    started = time.monotonic()
    work = Path(__import__("tempfile").mkdtemp(prefix="tlsreply-interop-clients-"))
    try:
        clients, facts = findClients(work)
        names = {c.name for c in clients}
        missing = [n for n in EXPECTED_CLIENTS if n not in names]
        if missing and not options.allow_missing:
            sys.stderr.write(f"interop: clients missing: {', '.join(missing)} (.ci/run "
                             "installs them; or --allow-missing)\n")
            return 2
        selected = rows(options.rows.split(",") if options.rows else None)
        if not selected:
            sys.stderr.write(f"interop: no such rows: {options.rows}\n")
            return 2
        table = runMatrix(selected, clients, facts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - started
    if options.markdown:
        options.markdown.write_text(markdown(selected, clients, table, seconds))
    if options.json:
        options.json.write_text(json.dumps(asJSON(selected, clients, table), indent=1) + "\n")
    mismatches = [(row, name, cell.mismatch) for row, cells in table.items()
                  for name, cell in cells.items() if cell.mismatch]
    for row, name, why in mismatches:
        sys.stdout.write(f"MISMATCH {row} x {name}: {why}\n")
    cells = sum(len(c) for c in table.values())
    sys.stdout.write(f"interop: {cells} cells, {len(clients)} clients, "
                     f"{len(mismatches)} mismatches, {seconds:.1f} s\n")
    return 1 if mismatches else 0

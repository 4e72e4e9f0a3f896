# -*- test-case-name: tests.test_check,tests.test_testing -*-
"""
C{tlsreply} / C{python -m tlsreply}: the tools that are not the server.

  - C{tlsreply check HOST:PORT [--ca FILE]}: connect twice and report the
    TLS facts and whether the session resumed.
  - C{tlsreply scenarios [--json]}: list the test scenarios and what a
    correct client sees for each.

The server itself runs under twistd: C{twistd -n tlsreply --port 4433}.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

USAGE = """usage: tlsreply check HOST:PORT [--ca FILE] [--servername NAME] [--json] [--timeout SECONDS]
       tlsreply scenarios [--json]

The server runs under twistd: twistd -n tlsreply --port 4433 (see --help there).
"""


def listScenarios(argv: list[str], out: TextIO) -> int:
    """
    Print every scenario with the outcome a correct client should see.
    """
    from tlsreply.testing.scenarios import describeScenarios

    if argv not in ([], ["--json"]):
        sys.stderr.write(USAGE)
        return 2
    scenarios = describeScenarios()
    if argv == ["--json"]:
        out.write(json.dumps(scenarios, indent=2) + "\n")
        return 0
    width = max(len(s["name"]) for s in scenarios)
    for scenario in scenarios:
        note = "" if scenario["available"] else f"  [unavailable: {scenario['unavailable']}]"
        out.write(
            f"{scenario['name']:<{width}}  expect: {scenario['expected']}{note}\n"
            f"{'':<{width}}  {scenario['description']}\n"
        )
    return 0


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    """
    Dispatch to a subcommand; returns the exit status.
    """
    if argv is None:
        argv = sys.argv[1:]
    if not argv or argv[0] in ("-h", "--help", "help"):
        out.write(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "check":
        from tlsreply.check import runCheck

        return runCheck(rest, out)
    if command == "scenarios":
        return listScenarios(rest, out)
    sys.stderr.write(f"tlsreply: unknown command {command!r}\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())

# -*- test-case-name: tests.test_cli -*-
"""
The C{tlsreply} command: one command line for everything tlsreply does::

    tlsreply serve [server options]       the server, in the foreground
    tlsreply check HOST[:PORT] [options]  the TLS facts of any server
    tlsreply scenarios [--json]           the local badssl's scenarios
    tlsreply show-config [server options] the server's effective settings

Every subcommand is a Twisted C{usage.Options}, the server's the very
L{tlsreply.command.tap.Options} that C{twistd tlsreply} and C{twist tlsreply}
parse, so C{tlsreply --help} (every subcommand with all its options) is
generated from the parsers themselves and cannot drift from them.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from typing import Any, NoReturn, TextIO

from twisted.python import usage

from tlsreply._version import VersionOption
from tlsreply.check.options import EXIT_USAGE, CheckCommand
from tlsreply.command._values import COERCION_PREFIX
from tlsreply.command.tap import Options as ServerOptions


class ServeCommand(ServerOptions):
    """
    C{tlsreply serve}: the server's options, run by Twisted's C{twist}.
    """

    longdesc = (
        ServerOptions.longdesc
        + " Runs in the foreground with its log on standard output, as "
        "`twist --log-format=text tlsreply` does (the same options); for a "
        "daemon with a pidfile, use `twistd tlsreply`."
    )


class ShowConfigCommand(ServerOptions):
    """
    C{tlsreply show-config}: what the server would run with, as JSON.
    """

    longdesc = (
        "Print the server's effective settings for these options (listeners, "
        "certificates with their fingerprints, the TLS policy) as JSON, and "
        "exit. It only reads: a development certificate that does not exist yet "
        "is described, not made."
    )


class ScenariosCommand(VersionOption, usage.Options):
    """
    C{tlsreply scenarios}: the test scenarios and what a correct client
    sees of each.
    """

    longdesc = (
        "List the test scenarios (a local badssl: twistd -n tlsreply --scenario "
        "NAME, or the pytest fixtures' scenario=) and what a correct client "
        "sees of each."
    )
    synopsis = "[--json]"
    optFlags = [
        [
            "json",
            None,
            "Print them as a JSON list: name, description, expected (one line), "
            "expectedOutcome (accepted, kind, message, requires: a strictly correct "
            "client's), outcomes (the same for each client stack: openssl, python-ssl, "
            "node, java, gnutls, boringssl; and correct), available, unavailable.",
        ]
    ]


class TLSReplyCommand(VersionOption, usage.Options):
    """
    The C{tlsreply} command line.
    """

    synopsis = "Usage: tlsreply [--version] [--help] COMMAND [options]"
    longdesc = (
        "A TLS reply server: it completes the TLS handshake with every client, "
        "writes a reply, sends close_notify and closes. It also runs under "
        "twistd (twistd -n --pidfile= tlsreply ...) and twist (twist tlsreply "
        "...), with the options of `tlsreply serve`."
    )
    subCommands: list[list[Any]] = [
        ["serve", None, ServeCommand, "Run the server in the foreground."],
        ["check", None, CheckCommand, "Report the TLS facts of a server and whether it resumes sessions."],
        ["scenarios", None, ScenariosCommand, "List the test scenarios and what a correct client sees."],
        ["show-config", None, ShowConfigCommand, "Print the server's effective settings as JSON."],
    ]

    def getUsage(self, width: int | None = None) -> str:
        """
        The usage of the command and, after it, of every subcommand with
        all its options.
        """
        text = [super().getUsage(width)]
        commands: list[list[Any]] = self.subCommands
        for entry in commands:
            name: str = entry[0]
            command: Any = entry[2]()
            synopsis = getattr(command, "synopsis", "[options]").removeprefix("Usage: ")
            text.append(f"\ntlsreply {name} {synopsis}\n" + command.getUsage(width))
        return "\n".join(text)

    def getSynopsis(self) -> str:
        # Twisted puts this before a subcommand's own synopsis: "Usage:
        # tlsreply serve [options]", not the whole synopsis then "serve".
        if self.subCommand is not None:
            return "Usage: tlsreply"
        return super().getSynopsis()

    def postOptions(self) -> None:
        if self.subCommand is None:
            raise usage.UsageError("which command? (serve, check, scenarios, show-config)")


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """
    Run the C{tlsreply} command; return its exit status.

    A reader that goes away (C{tlsreply --help | head}) ends the command
    quietly, with status 1, as Python's documentation recommends.
    """
    try:
        return _main(argv, out)
    except BrokenPipeError:
        # Python would report the pipe again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv: list[str] | None, out: TextIO | None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if out is None:
        out = sys.stdout
    if argv[:1] == ["check"]:
        # check writes everything, --help and errors included, to out.
        from tlsreply.check.report import runCheck

        return runCheck(argv[1:], out)
    command = TLSReplyCommand()
    try:
        command.parseOptions(argv)
    except usage.UsageError as e:
        message = str(e).removeprefix(COERCION_PREFIX)
        sys.stderr.write(f"tlsreply: {message} (see tlsreply --help)\n")
        return EXIT_USAGE
    if command.subCommand == "scenarios":
        return _listScenarios(bool(command.subOptions["json"]), out)
    if command.subCommand == "show-config":
        # tap.Options prints and exits for --show-config.
        ShowConfigCommand().parseOptions([*argv[1:], "--show-config"])
        return 0
    return _serve(argv[1:])


def _serve(arguments: list[str]) -> NoReturn:
    """
    Run the server as C{twist --log-format=text tlsreply ARGUMENTS} does
    (Twisted's runner: its logging, its reactor), in this process. Text
    logs whatever the output is: C{twist} alone writes JSON when its
    output is not a terminal.
    """
    sys.argv = ["tlsreply serve", "--log-format=text", "tlsreply", *arguments]
    runpy.run_module("twisted", run_name="__main__", alter_sys=True)
    raise SystemExit(0)


def _listScenarios(asJSON: bool, out: TextIO) -> int:
    """
    Print every scenario with the outcome a correct client should see.
    """
    from tlsreply.scenarios.servers import describeScenarios

    scenarios = describeScenarios()
    if asJSON:
        out.write(json.dumps(scenarios, indent=2) + "\n")
        return 0
    width = max(len(s["name"]) for s in scenarios)
    for scenario in scenarios:
        note = "" if scenario["available"] else f"  [unavailable: {scenario['unavailable']}]"
        out.write(f"{scenario['name']:<{width}}  expect: {scenario['expected']}{note}\n")
        requires = scenario["expectedOutcome"]["requires"]
        if requires is not None:
            out.write(f"{'':<{width}}  requires: {requires}\n")
        out.write(f"{'':<{width}}  {scenario['description']}\n")
    return 0

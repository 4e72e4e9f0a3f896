"""
The C{tlsreply} command: one command line, its help generated from the
parsers that parse it.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    clientContext,
    fetchWithSSL,
    makeCertificates,
    temporaryDirectory,
)
from tests.test_plugin import SCRIPTS, Daemon
from tlsreply._version import __version__
from tlsreply.command.cli import main
from tlsreply.command.tap import Options


def run(*argv: str) -> tuple[int, str, str]:
    """
    Run the command in this process; its status, standard output and error.
    """
    out, err = io.StringIO(), io.StringIO()
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        try:
            status = main(list(argv), out)
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else (err.write(f"{e.code}\n") and 1)
    finally:
        sys.stdout, sys.stderr = stdout, stderr
    return status, out.getvalue(), err.getvalue()


def _helpEntries(usage: str) -> dict[str, str]:
    """
    Each option's help text in a C{--help} output, by option name, its
    wrapped lines joined.
    """
    entries: dict[str, str] = {}
    name = None
    for line in usage.split("\n\n")[0].splitlines()[2:]:
        match = re.match(r"\s+(?:-\w, )?--([\w-]+)=?\s+(.*)", line)
        if match:
            name = match.group(1)
            entries[name] = match.group(2)
        elif name is not None and line.strip():
            entries[name] += " " + line.strip()
    return entries


class CommandLineTests(SynchronousTestCase):
    """
    C{tlsreply --version}, C{--help} and its subcommands.
    """

    def test_version(self) -> None:
        """
        C{--version} prints the version, as C{twistd tlsreply --version} does.
        """
        self.assertEqual(run("--version"), (0, f"tlsreply {__version__}\n", ""))
        for command in ("serve", "check", "scenarios", "show-config"):
            self.assertEqual(run(command, "--version"), (0, f"tlsreply {__version__}\n", ""))
        self.assertNotIn("Twisted version", run("--help")[1])
        with self.assertRaises(SystemExit):
            sys.stdout, saved = io.StringIO(), sys.stdout
            try:
                Options().parseOptions(["--version"])
            finally:
                sys.stdout = saved

    def test_helpListsEverySubcommandAndOption(self) -> None:
        """
        C{--help} lists every subcommand and, under each, every option its
        parser takes: the server's (the same as twistd's) and check's.
        """
        status, output, _ = run("--help")
        self.assertEqual(status, 0)
        for command in ("serve", "check", "scenarios", "show-config"):
            self.assertIn(f"\ntlsreply {command} ", output)
        for option in Options().longOpt:
            self.assertIn(f"--{option}", output)
        for option in ("--alpn=", "--send=", "--http", "--servername="):
            self.assertIn(option, output.split("tlsreply check")[1])

    def test_helpEntriesEndWithTheirDefault(self) -> None:
        """
        Each option's help reads as one text ending with its default: what
        the values may be comes before C{[default: ...]}, not after it
        (Twisted's own order gave C{[default: 3.0]. Seconds, a number >=
        0.}), and every option that takes seconds says so first, once.
        """
        for command in ("serve", "check"):
            entries = _helpEntries(run(command, "--help")[1])
            for name, text in entries.items():
                if "[default: " in text:
                    self.assertTrue(text.endswith("]"), f"{command} --{name}: {text}")
            seconds = [name for name, text in entries.items() if "Seconds" in text]
            self.assertNotEqual(seconds, [], command)
            for name in seconds:
                text = entries[name]
                self.assertTrue(text.startswith("Seconds "), f"{command} --{name}: {text}")
                self.assertEqual(text.count("Seconds"), 1, f"{command} --{name}: {text}")
        serve = _helpEntries(run("serve", "--help")[1])
        self.assertEqual(
            serve["min-tls"], "Lowest TLS version. One of: 1.2, 1.3. [default: 1.2]"
        )
        self.assertEqual(
            serve["session-timeout"],
            "Seconds a session or ticket can be resumed. A whole number from 1 to "
            "604800. [default: 300]",
        )

    def test_subcommandSynopsis(self) -> None:
        """
        A subcommand's help begins with its own synopsis.
        """
        self.assertTrue(run("serve", "--help")[1].startswith("Usage: tlsreply serve [options]\n"))
        self.assertTrue(run("scenarios", "--help")[1].startswith("Usage: tlsreply scenarios [--json]\n"))

    def test_readerGoneIsQuiet(self) -> None:
        """
        Output to a pipe whose reader has gone (C{tlsreply --help | head})
        ends the command with status 1 and no traceback.
        """
        for argv in (["--help"], ["scenarios", "--json"]):
            reading, writing = os.pipe()
            os.close(reading)
            try:
                result = subprocess.run(
                    [str(SCRIPTS / "tlsreply"), *argv], stdout=writing,
                    stderr=subprocess.PIPE, timeout=60,
                )
            finally:
                os.close(writing)
            self.assertEqual((result.returncode, result.stderr), (1, b""), argv)

    def test_mistakesAreOneLine(self) -> None:
        """
        No command, an unknown one, or a bad option: one line, status 2 (or
        1 for a server option, as twistd gives).
        """
        for argv, message in [
            ((), "which command?"),
            (("bogus",), "Unknown command: bogus"),
            (("scenarios", "--bogus"), "option --bogus not recognized"),
        ]:
            status, output, error = run(*argv)
            self.assertEqual(status, 2, (argv, error))
            self.assertEqual(error.count("\n"), 1, error)
            self.assertIn(message, error)
        status, _, error = run("show-config", "--min-tls", "1.1")
        self.assertEqual(status, 1)
        self.assertIn("--min-tls: expected 1.2 or 1.3, got '1.1'", error)

    def test_scenarios(self) -> None:
        """
        C{scenarios --json} is the catalogue that C{--list-scenarios} prints.
        """
        status, output, _ = run("scenarios", "--json")
        self.assertEqual(status, 0)
        names = [s["name"] for s in json.loads(output)]
        self.assertIn("expired", names)

    def test_showConfig(self) -> None:
        """
        C{show-config} describes the server these options would run.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        status, output, _ = run(
            "show-config", "--cert", str(certificates.certificatePath),
            "--key", str(certificates.keyPath), "--workers", "3",
        )
        self.assertEqual(status, 0)
        settings = json.loads(output)
        self.assertEqual(settings["workers"], 3)
        self.assertEqual(settings["certificates"][0]["key"], "ECDSA-P-256")

    def test_showConfigRefusesWhatServeWould(self) -> None:
        """
        C{show-config} refuses the TLS settings OpenSSL would refuse when
        serving, as a dry run should, without making anything.
        """
        workdir = temporaryDirectory(self)
        for arguments, message in [
            (("--ciphers", "BOGUS"), "cipher string 'BOGUS' selects no cipher"),
            (("--groups", "NOPE"), "unknown key-exchange group 'NOPE'"),
            (("--client-ca", str(workdir / "none.pem"), "--verify-client", "require"),
             "client CA file not found"),
        ]:
            status, output, error = run("show-config", *arguments)
            self.assertEqual((status, output), (1, ""), arguments)
            self.assertIn(message, error)
        self.assertEqual(list(workdir.iterdir()), [])


class ServeTests(SynchronousTestCase):
    """
    C{tlsreply serve} runs the server in the foreground, as C{twist} does.
    """

    def test_serveAnswersAndStops(self) -> None:
        """
        The server answers on the port it logs, and SIGTERM ends it with
        status 0.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        daemon = Daemon(
            [str(SCRIPTS / "tlsreply"), "serve", "--port", "tcp:0:interface=127.0.0.1",
             "--cert", str(certificates.certificatePath), "--key", str(certificates.keyPath)],
            certificates.caPath.parent,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        port = int(daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\]").group(1))
        result = fetchWithSSL(port, clientContext(str(certificates.caPath)))
        self.assertEqual(result.data, b"test\n")
        self.assertEqual(daemon.stop(), 0)

"""
The systemd units in C{contrib/systemd}: C{systemd-analyze verify} accepts
them, and their C{ExecStart=} is a command line tlsreply runs the way
systemd runs it: on the socket that socket activation passes, reloaded by
the unit's C{ExecReload=}, stopped by its C{KillSignal=} with exit status 0
well within its C{TimeoutStopSec=}. (The sandbox itself needs a running
systemd, which the test machines do not have.)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    TestCertificates,
    clientContext,
    fetchWithSSL,
    makeCertificates,
    requireTool,
    temporaryDirectory,
)
from tests.test_plugin import CHECKOUT, Daemon
from tlsreply.workers.supervisor import KILL_AFTER_GRACE

UNITS = CHECKOUT / "contrib" / "systemd"
UNIT_NAMES = ("tlsreply.socket", "tlsreply.service")

#: Where the units expect tlsreply: a virtual environment in /opt/tlsreply.
INSTALLED = "/opt/tlsreply/bin/tlsreply"

#: The tlsreply script of the environment that runs the tests.
HERE = str(Path(sys.executable).parent / "tlsreply")

#: The folder the units read the certificates from.
CERTIFICATES = "/etc/tlsreply"

#: Runs a program as systemd runs a socket-activated service, holding the
#: listening socket (IPv4, as tlsreply.socket's) as systemd does: each
#: generation of the program (GENERATIONS of them, the next one once the
#: file GO exists, as in a restart) is a child with the socket on
#: descriptor 3, LISTEN_FDS, LISTEN_PID (the child's, which the exec keeps)
#: and LISTEN_FDNAMES, and without PYTHONUNBUFFERED, which systemd does not
#: set. SIGTERM is passed on to the child and ends the generations, as
#: C{systemctl stop} does. Usage: python -c LAUNCHER GENERATIONS GO PROGRAM...
LAUNCHER = """\
import os, signal, socket, sys, time
generations, go, program = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
s = socket.socket(socket.AF_INET)
s.bind(("127.0.0.1", 0))
s.listen()
print("inherited port", s.getsockname()[1], flush=True)
child = 0
def stop(number, frame):
    global generations
    generations = 0
    if child:
        os.kill(child, number)
signal.signal(signal.SIGTERM, stop)
generation = 0
while generation < generations:
    while generation and generations and not os.path.exists(go):
        time.sleep(0.05)
    if not generations:
        break
    child = os.fork()
    if child == 0:
        os.dup2(s.fileno(), 3)
        os.set_inheritable(3, True)
        os.environ.pop("PYTHONUNBUFFERED", None)
        os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()),
                          LISTEN_FDNAMES="tlsreply.socket")
        os.execv(program[0], program)
    print("started pid", child, flush=True)
    print("exited", os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]), flush=True)
    child = 0
    generation += 1
"""


def unitText(name: str) -> str:
    """
    The text of one of the shipped units.
    """
    return (UNITS / name).read_text()


def setting(text: str, key: str) -> str:
    """
    The value of the one C{key=} line of a unit (comments aside).
    """
    values = re.findall(rf"^{key}=(.*)$", text, re.MULTILINE)
    assert len(values) == 1, f"{key}= {len(values)} times"
    return values[0]


def commandLines(text: str) -> list[list[str]]:
    """
    Every tlsreply command line of a unit, split into arguments: its
    C{ExecStart=} and those its comments give (the C{--workers} drop-in).
    Each is plain words, with nothing that systemd would expand or unquote
    (C{%} specifiers, C{$} variables, quotes, backslashes), so that
    splitting it on blanks is what systemd does.
    """
    lines = re.findall(r"^(?:#\s*)?ExecStart=(\S.*)$", text, re.MULTILINE)
    for line in lines:
        assert not re.search(r"[%$'\"\\]", line), line
    return [shlex.split(line) for line in lines]


def execStart(text: str) -> list[str]:
    """
    The arguments of the command line that a unit runs (its C{ExecStart=}),
    one of its L{commandLines}, so checked as they are.
    """
    arguments = shlex.split(setting(text, "ExecStart"))
    assert arguments in commandLines(text)
    return arguments


def withoutActivation() -> dict[str, str]:
    """
    This process's environment without socket activation's variables.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}


def certificateFolder(directory: Path) -> tuple[Path, TestCertificates]:
    """
    A folder laid out as the units expect C{/etc/tlsreply}: C{example.pem}
    and C{example.key}, issued by a test CA kept outside it.
    """
    made = makeCertificates(directory)
    folder = directory / "tlsreply"
    folder.mkdir()
    made.certificatePath = made.certificatePath.rename(folder / "example.pem")
    made.keyPath = made.keyPath.rename(folder / "example.key")
    return folder, made


def relocated(arguments: list[str], certificates: Path) -> list[str]:
    """
    A command line's arguments after the program and C{serve}, with the
    test's certificate folder in place of C{/etc/tlsreply}.
    """
    assert arguments[:2] == [INSTALLED, "serve"], arguments
    assert arguments.count(CERTIFICATES) == 1, arguments
    return [str(certificates) if a == CERTIFICATES else a for a in arguments[2:]]


class VerifyTests(SynchronousTestCase):
    """
    C{systemd-analyze verify} finds nothing to say about the units.
    """

    def systemdAnalyze(self) -> str:
        """
        The C{systemd-analyze} command: skipped without it, except in CI,
        where C{.ci/run} installs it (Debian's C{systemd} package).
        """
        return requireTool("systemd-analyze", "systemd")

    def verify(self, directory: Path) -> tuple[int, list[str]]:
        """
        Run C{systemd-analyze verify} on the units in C{directory}; its exit
        status and the lines of its output that concern them (they name the
        units or their folder, whose name has "tlsreply" in it too).
        """
        result = subprocess.run(
            [self.systemdAnalyze(), "verify", *(str(directory / n) for n in UNIT_NAMES)],
            cwd=directory, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=60, env={**withoutActivation(), "SYSTEMD_COLORS": "0"},
        )
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        return result.returncode, [line for line in output.splitlines() if "tlsreply" in line]

    def copyUnits(self, directory: Path) -> None:
        """
        Copy the units into C{directory}, with this environment's tlsreply
        in the service's C{ExecStart=} (verify checks the program exists):
        that path is the only change.
        """
        for name in UNIT_NAMES:
            original = unitText(name)
            copy, count = re.subn(
                rf"^ExecStart={re.escape(INSTALLED)} ",
                lambda match: f"ExecStart={HERE} ",
                original,
                flags=re.MULTILINE,
            )
            self.assertEqual(count, 1 if name.endswith(".service") else 0, name)
            changed = [
                (before, after)
                for before, after in zip(original.splitlines(), copy.splitlines(), strict=True)
                if before != after
            ]
            self.assertEqual(
                [after.replace(HERE, INSTALLED, 1) for _, after in changed],
                [before for before, _ in changed],
            )
            self.assertEqual(len(changed), count)
            (directory / name).write_text(copy)

    def test_unitsVerify(self) -> None:
        """
        C{systemd-analyze verify} accepts both units, with not one warning
        about them: every directive known, every value valid, the programs
        of C{ExecStart=} and C{ExecReload=} there.
        """
        directory = temporaryDirectory(self)
        self.copyUnits(directory)
        status, lines = self.verify(directory)
        self.assertEqual((status, lines), (0, []))

    def test_verifySpeaksUp(self) -> None:
        """
        The same check finds a mistake: a misspelt directive and a bad value
        are reported in the output read above, so its silence about the
        shipped units means something.
        """
        directory = temporaryDirectory(self)
        self.copyUnits(directory)
        service = directory / "tlsreply.service"
        text = service.read_text()
        mistakes = {"Type=exec": "Type=exe", "KillMode=mixed": "KillMod=mixed"}
        numbers = [text.splitlines().index(line) + 1 for line in mistakes]
        for line, mistake in mistakes.items():
            text = text.replace(f"\n{line}\n", f"\n{mistake}\n")
        service.write_text(text)
        status, lines = self.verify(directory)
        self.assertEqual(
            [line.split(" ")[0] for line in lines],
            [f"{service}:{number}:" for number in numbers],
        )


class CommandLineTests(SynchronousTestCase):
    """
    The units' command line is one that tlsreply accepts and runs as the
    units expect.
    """

    def test_socketFamilyIsTheDomain(self) -> None:
        """
        The socket unit listens on an IPv4 address, the family that
        C{systemd:domain=INET} adopts: a bare port would make systemd bind
        an IPv6 socket, whose addresses tlsreply would read as IPv4 ones.
        """
        listen = setting(unitText("tlsreply.socket"), "ListenStream")
        self.assertRegex(listen, r"^\d+\.\d+\.\d+\.\d+:\d+$")
        for arguments in commandLines(unitText("tlsreply.service")):
            self.assertIn("systemd:domain=INET:index=0", arguments)

    def test_stopTimeoutCoversTheGrace(self) -> None:
        """
        C{TimeoutStopSec=} leaves time for C{--shutdown-grace}, and with
        C{--workers} for the parent's wait past it before it kills a worker
        that overstays; otherwise systemd would kill connections that
        tlsreply was letting finish.
        """
        text = unitText("tlsreply.service")
        stopTimeout = float(setting(text, "TimeoutStopSec").removesuffix("s"))
        for arguments in commandLines(text):
            grace = float(arguments[arguments.index("--shutdown-grace") + 1])
            self.assertGreater(stopTimeout, grace + KILL_AFTER_GRACE)

    def test_commandLinesParse(self) -> None:
        """
        Each command line (the unit's and the C{--workers auto} one its
        comments give), started as systemd starts it, is one tlsreply
        accepts: C{tlsreply show-config} with the same options describes
        the systemd socket, the certificates of the folder, the grace, and
        for C{auto} one worker per CPU this process may use.
        """
        directory = temporaryDirectory(self)
        certificates, _ = certificateFolder(directory)
        lines = commandLines(unitText("tlsreply.service"))
        self.assertEqual(len(lines), 2)
        for arguments in lines:
            result = subprocess.run(
                [sys.executable, "-c", LAUNCHER, "1", "", HERE, "show-config",
                 *relocated(arguments, certificates)],
                cwd=directory, stdin=subprocess.DEVNULL, capture_output=True,
                timeout=60, env=withoutActivation(),
            )
            stdout = result.stdout.decode()
            self.assertIn("\nexited 0\n", stdout, result.stderr.decode())
            settings = json.loads(stdout[stdout.index("{") : stdout.rindex("}") + 1])
            self.assertEqual(settings["listen"], ["systemd:domain=INET:index=0"])
            self.assertEqual(
                [c["path"] for c in settings["certificates"]],
                [str(certificates / "example.pem")],
            )
            self.assertEqual(settings["shutdownGrace"], 10.0)
            workers = len(os.sched_getaffinity(0)) if "--workers" in arguments else 1
            self.assertEqual(settings["workers"], workers)

    def test_commandLineNeedsTheSocket(self) -> None:
        """
        Started without socket activation (the service without its socket,
        which is why it C{Requires=} it), the command line is refused with
        one line saying what is missing.
        """
        directory = temporaryDirectory(self)
        certificates, _ = certificateFolder(directory)
        arguments = execStart(unitText("tlsreply.service"))
        result = subprocess.run(
            [HERE, "show-config", *relocated(arguments, certificates)],
            cwd=directory, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=60, env=withoutActivation(),
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            "systemd passed no such socket (LISTEN_FDS is not set",
            result.stderr.decode(),
        )
        self.assertEqual(setting(unitText("tlsreply.service"), "Requires"), "tlsreply.socket")

    def test_servesReloadsAndRestarts(self) -> None:
        """
        The unit's command line, started as systemd starts it, serves TLS on
        the inherited socket (its log and connection lines reach a pipe, as
        the journal is, without delay); the unit's C{ExecReload=} command
        reloads the certificates; its C{KillSignal=} stops it with exit
        status 0, well within C{TimeoutStopSec=}. The socket outlives it: a
        client that connects before the next process starts waits in the
        queue and is served by that process, as in a restart.
        """
        directory = temporaryDirectory(self)
        folder, certificates = certificateFolder(directory)
        context = clientContext(str(certificates.caPath))
        text = unitText("tlsreply.service")
        go = directory / "go"
        daemon = Daemon(
            [sys.executable, "-c", LAUNCHER, "2", str(go),
             HERE, "serve", *relocated(execStart(text), folder)],
            directory,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        port = int(daemon.waitFor(r"inherited port (\d+)").group(1))
        pid = int(daemon.waitFor(r"started pid (\d+)").group(1))
        daemon.waitFor(rf"listening on \['127\.0\.0\.1:{port}'\]")
        self.assertEqual(fetchWithSSL(port, context).data, b"test\n")
        daemon.waitFor(r"replied to 127\.0\.0\.1:", timeout=5)

        reload = shlex.split(setting(text, "ExecReload"))
        self.assertEqual(reload[-1], "$MAINPID")
        subprocess.run([*reload[:-1], str(pid)], check=True, timeout=10)
        daemon.waitFor(r"reloaded: serving 1 certificate", timeout=10)

        stopTimeout = float(setting(text, "TimeoutStopSec").removesuffix("s"))
        started = time.monotonic()
        os.kill(pid, signal.Signals[setting(text, "KillSignal")])
        daemon.waitFor(r"^exited 0$", timeout=stopTimeout)
        self.assertLess(time.monotonic() - started, stopTimeout / 2)

        with socket.create_connection(("127.0.0.1", port), timeout=20) as queued:
            go.touch()
            daemon.waitFor(r"started pid")
            with context.wrap_socket(queued, server_hostname="localhost") as tls:
                self.assertEqual(tls.recv(100), b"test\n")
        daemon.waitFor(r"replied to 127\.0\.0\.1:", timeout=5)
        self.assertEqual(daemon.stop(), 0)
        self.assertEqual("".join(daemon.output).count("\nexited 0\n"), 2)

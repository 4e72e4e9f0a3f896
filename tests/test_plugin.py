"""
tlsreply as a twistd plugin, run the way operators run it: C{twistd -n
tlsreply} and C{twist tlsreply} in a subprocess, from an installed package.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    clientContext,
    fetchWithSSL,
    makeCertificates,
    requireTool,
    temporaryDirectory,
)
from tlsreply.command import tap

SCRIPTS = Path(sys.executable).parent
CHECKOUT = Path(__file__).resolve().parent.parent

def signalBeforeTheReactor(name: str) -> str:
    """
    A program to run with C{python -c}, then twistd's arguments: the real
    twistd, which sends itself the signal C{name} (and prints that it does)
    right after it has started the application, before its reactor runs.
    """
    return (
        "import os, signal, sys\n"
        "from twisted.application import app\n"
        "from twisted.scripts import twistd\n"
        "started = app.startApplication\n"
        "def startThenSignal(application, save):\n"
        "    started(application, save)\n"
        f"    print('{name} before the reactor runs', flush=True)\n"
        f"    os.kill(os.getpid(), signal.{name})\n"
        "app.startApplication = startThenSignal\n"
        "sys.argv[0] = 'twistd'\n"
        "twistd.run()\n"
    )


SIGTERM_BEFORE_THE_REACTOR = signalBeforeTheReactor("SIGTERM")


class Daemon:
    """
    A tlsreply process whose log (stdout) is read line by line.
    """

    def __init__(
        self, arguments: list[str], cwd: Path, environment: dict[str, str] | None = None
    ) -> None:
        """
        @param environment: variables to set besides this process's own.
        """
        self.output: list[str] = []
        self.process = subprocess.Popen(
            arguments,
            cwd=cwd,
            # twist writes its log through a buffered stdout.
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(environment or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Unbuffered: readline() must not hide lines from select().
            bufsize=0,
        )

    def waitFor(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """
        Read the log until a line matches, or fail after C{timeout}.
        """
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if not ready:
                continue
            line = self.process.stdout.readline().decode("utf-8", "replace")
            if not line:
                break
            self.output.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no {pattern!r} in:\n{''.join(self.output)}")

    def stop(self) -> int:
        """
        SIGTERM, as an init system would; return the exit status.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        rest, _ = self.process.communicate(timeout=20)
        self.output.append(rest.decode("utf-8", "replace"))
        return self.process.returncode


def startDaemon(testCase: SynchronousTestCase, command: list[str], cwd: Path) -> tuple[Daemon, int]:
    """
    Start tlsreply on an ephemeral 127.0.0.1 port and return it with the
    port it logged.
    """
    daemon = Daemon(command + ["--port", "tcp:0:interface=127.0.0.1"], cwd)
    testCase.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
    match = daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\]")
    return daemon, int(match.group(1))


def runToExit(arguments: list[str], cwd: Path) -> tuple[int, list[str]]:
    """
    Run a command that is expected to fail at start-up; return its exit
    status and its non-empty output lines (stdout and stderr).
    """
    result = subprocess.run(
        arguments, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    )
    text = (result.stdout + result.stderr).decode("utf-8", "replace")
    return result.returncode, [line for line in text.splitlines() if line.strip()]


class DiscoveryTests(SynchronousTestCase):
    """
    Twisted finds the plugin, and the plugin stays light.
    """

    def test_pluginIsDiscovered(self) -> None:
        """
        C{getPlugins(IServiceMaker)} finds C{tlsreply}, backed by
        L{tlsreply.command.tap}.
        """
        makers = {m.tapname: m for m in getPlugins(IServiceMaker)}
        self.assertIn("tlsreply", makers)
        self.assertIs(makers["tlsreply"].options, tap.Options)

    def test_pluginImportsNothingHeavy(self) -> None:
        """
        Importing the plugin module imports neither tlsreply nor a reactor,
        so C{twistd --reactor=...} can still choose one.
        """
        check = (
            "import sys, twisted.plugins.tlsreply_plugin as p; "
            "print(sorted(m for m in sys.modules if m.startswith('tlsreply') "
            "or m == 'twisted.internet.reactor'))"
        )
        result = subprocess.run(
            [sys.executable, "-c", check], capture_output=True, check=True,
            cwd=temporaryDirectory(self),
        )
        self.assertEqual(result.stdout.strip(), b"[]")


    def test_pytestPluginImportsNothingHeavy(self) -> None:
        """
        pytest imports every installed plugin at start-up, in every project
        that has tlsreply installed: tlsreply's imports neither Twisted,
        pyOpenSSL nor cryptography until a fixture is used.
        """
        check = (
            "import sys, tlsreply.testing.pytest_plugin; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'twisted', 'OpenSSL', 'cryptography'}))"
        )
        result = subprocess.run(
            [sys.executable, "-c", check], capture_output=True, check=True,
            cwd=temporaryDirectory(self),
        )
        self.assertEqual(result.stdout.strip(), b"[]")

    def test_publicNamesResolve(self) -> None:
        """
        Every name in C{tlsreply.__all__} resolves (they load on first use).
        """
        import tlsreply

        for name in tlsreply.__all__:
            self.assertIsNotNone(getattr(tlsreply, name), name)

    def test_dirListsThePublicNames(self) -> None:
        """
        C{dir()} of a fresh C{tlsreply} and C{tlsreply.testing} (what tab
        completion and C{help()} show) lists the public names, which load
        on first use, and not the lazy loader's own imports; listing them
        loads nothing heavy.
        """
        check = (
            "import json, sys, tlsreply, tlsreply.testing; "
            "print(json.dumps([dir(tlsreply), dir(tlsreply.testing), "
            "sorted({m.split('.')[0] for m in sys.modules} & "
            "{'twisted', 'OpenSSL', 'cryptography'})]))"
        )
        result = subprocess.run(
            [sys.executable, "-c", check], capture_output=True, check=True,
            cwd=temporaryDirectory(self),
        )
        import tlsreply
        import tlsreply.testing

        package, testing, heavy = json.loads(result.stdout)
        self.assertEqual(heavy, [])
        for listed, module in ((package, tlsreply), (testing, tlsreply.testing)):
            self.assertEqual(listed, sorted(listed))
            self.assertLessEqual(set(module.__all__), set(listed))
            self.assertLessEqual({"__all__", "__doc__", "__name__"}, set(listed))
            self.assertEqual({"import_module", "TYPE_CHECKING", "Any"} & set(listed), set())
        self.assertIn("testing", package)


class DaemonTests(SynchronousTestCase):
    """
    The installed commands serve real TLS clients.
    """

    def test_twistdServesWithDevelopmentCertificate(self) -> None:
        """
        C{twistd -n tlsreply}, run outside the checkout, makes a development
        certificate in C{./certs/}, serves C{test\\n} to a client that
        trusts it, and exits 0 on SIGTERM.
        """
        workdir = temporaryDirectory(self)
        daemon, port = startDaemon(
            self, [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply"], workdir
        )
        certificate = workdir / "certs" / "dev-cert.pem"
        result = fetchWithSSL(port, clientContext(str(certificate)))
        self.assertEqual(result.data, b"test\n")
        daemon.waitFor(r"replied to 127\.0\.0\.1:\d+: TLSv1\.3")
        self.assertEqual(daemon.stop(), 0)
        log = "".join(daemon.output)
        self.assertIn(f"created development certificate {certificate}", log)
        self.assertNotIn("Traceback", log)

    def test_twistServes(self) -> None:
        """
        C{twist tlsreply} works too, with an explicit certificate and reply.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        daemon, port = startDaemon(
            self,
            [str(SCRIPTS / "twist"), "--log-format=text", "tlsreply", "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath), "--reply", "pong\\r\\n"],
            workdir,
        )
        result = fetchWithSSL(port, clientContext(str(certificates.caPath)))
        self.assertEqual(result.data, b"pong\r\n")
        self.assertEqual(daemon.stop(), 0)


    def test_systemdSocketActivation(self) -> None:
        """
        With C{--port systemd:domain=INET:index=0} tlsreply serves on a
        socket it inherited the way systemd passes one (descriptor 3,
        C{LISTEN_FDS}, C{LISTEN_PID}, C{LISTEN_FDNAMES}), with TLS.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        launcher = (
            "import os, socket, sys\n"
            "s = socket.socket()\n"
            "s.bind(('127.0.0.1', 0))\n"
            "s.listen()\n"
            "os.dup2(s.fileno(), 3)\n"
            "os.set_inheritable(3, True)\n"
            "print('inherited port', s.getsockname()[1], flush=True)\n"
            "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid()),\n"
            "                  LISTEN_FDNAMES='tlsreply.socket')\n"
            "os.execv(sys.argv[1], sys.argv[1:])\n"
        )
        daemon = Daemon(
            [sys.executable, "-c", launcher, str(SCRIPTS / "twistd"), "-n",
             "--pidfile=", "tlsreply", "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath),
             "--port", "systemd:domain=INET:index=0"],
            workdir,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        port = int(daemon.waitFor(r"inherited port (\d+)").group(1))
        daemon.waitFor(rf"listening on \['127\.0\.0\.1:{port}'\]")
        result = fetchWithSSL(port, clientContext(str(certificates.caPath)))
        self.assertEqual(result.data, b"test\n")
        self.assertEqual(daemon.stop(), 0)

    def test_systemdSocketOfAnotherFamily(self) -> None:
        """
        An IPv6 socket described as C{domain=INET} (a systemd socket unit
        with C{ListenStream=443} on a host with IPv6) is read as what it
        is: its addresses are logged right, with a warning naming the fix.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        launcher = (
            "import os, socket, sys\n"
            "s = socket.socket(socket.AF_INET6)\n"
            "s.bind(('::1', 0))\n"
            "s.listen()\n"
            "os.dup2(s.fileno(), 3)\n"
            "os.set_inheritable(3, True)\n"
            "print('inherited port', s.getsockname()[1], flush=True)\n"
            "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid()),\n"
            "                  LISTEN_FDNAMES='tlsreply.socket')\n"
            "os.execv(sys.argv[1], sys.argv[1:])\n"
        )
        daemon = Daemon(
            [sys.executable, "-c", launcher, str(SCRIPTS / "twistd"), "-n",
             "--pidfile=", "tlsreply", "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath),
             "--port", "systemd:domain=INET:index=0"],
            workdir,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        port = int(daemon.waitFor(r"inherited port (\d+)").group(1))
        daemon.waitFor("is AF_INET6, not AF_INET as its description says; using "
                       "AF_INET6 \\(for systemd, write domain=INET6")
        daemon.waitFor(rf"listening on \['\[::1\]:{port}'\]")
        context = clientContext(str(certificates.caPath))
        with socket.create_connection(("::1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                self.assertEqual(tls.recv(100), b"test\n")
        daemon.waitFor(r"replied to \[::1\]:\d+: ")
        self.assertEqual(daemon.stop(), 0)


    def test_scenarioFromTheCommandLine(self) -> None:
        """
        C{--scenario expired} serves an expired certificate from a test CA
        written to C{./certs/scenario/ca.pem}; a client trusting that CA
        sees exactly the error C{--list-scenarios} promises.
        """
        workdir = temporaryDirectory(self)
        listing = subprocess.run(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply", "--list-scenarios"],
            cwd=workdir, capture_output=True, check=True, timeout=60,
        )
        expected = {s["name"]: s["expected"] for s in json.loads(listing.stdout)}
        daemon, port = startDaemon(
            self,
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply", "--scenario", "expired"],
            workdir,
        )
        with self.assertRaises(ssl.SSLCertVerificationError) as caught:
            fetchWithSSL(port, clientContext(str(workdir / "certs" / "scenario" / "ca.pem")))
        self.assertEqual(caught.exception.verify_message, expected["expired"])
        self.assertEqual(daemon.stop(), 0)


class StartupErrorTests(SynchronousTestCase):
    """
    Every bad configuration ends C{twistd -n tlsreply} with one line and a
    non-zero exit status, and no traceback.
    """

    def assertOneLineError(
        self, expected: str, *arguments: str, prefix: tuple[str, ...] = ()
    ) -> None:
        """
        Running twistd with these arguments exits non-zero with no traceback
        and one line that names the problem.

        Problems found while building the service are the only output.
        Problems found while listening come after twistd has started its
        log, so that line is a critical log event among the start-up
        events.
        """
        workdir = temporaryDirectory(self)
        command = [*prefix, str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
                   *arguments]
        status, lines = runToExit(command, workdir)
        self.assertNotEqual(status, 0)
        self.assertNotIn("Traceback", "\n".join(lines))
        errors = [line for line in lines if "tlsreply: " in line]
        self.assertEqual(len(errors), 1, lines)
        self.assertIn(expected, errors[0])
        others = [line for line in lines if line not in errors]
        self.assertEqual([line for line in others if "#info]" not in line], [])

    def test_missingCertificate(self) -> None:
        """
        A certificate path that does not exist.
        """
        self.assertOneLineError("certificate file not found: /nonexistent/cert.pem",
                                "--cert", "/nonexistent/cert.pem")

    def test_badEscape(self) -> None:
        """
        A reply escape that does not exist.
        """
        self.assertOneLineError("bad escape \\q", "--reply", "\\q")

    def test_badEndpoint(self) -> None:
        """
        A listen address Twisted cannot parse.
        """
        self.assertOneLineError("bad listen address 'tcpp:4433'", "--port", "tcpp:4433")

    def test_portInUse(self) -> None:
        """
        A port another socket holds.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        self.assertOneLineError(
            f"cannot listen on tcp:{port}:interface=127.0.0.1: Address already in use",
            "--port", f"tcp:{port}:interface=127.0.0.1",
        )

    def test_lowPortPermissionDenied(self) -> None:
        """
        A port below 1024 without the privilege to bind it. As root the
        test removes C{CAP_NET_BIND_SERVICE} with C{setpriv}, which is the
        situation of a service started without that capability.
        """
        prefix: tuple[str, ...] = ()
        if os.geteuid() == 0:
            setpriv = requireTool("setpriv", "util-linux")
            prefix = (setpriv, "--bounding-set", "-net_bind_service")
        elif int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()) <= 444:
            self.skipTest("unprivileged users may bind port 444 on this machine")
        self.assertOneLineError(
            "cannot listen on tcp:444:interface=127.0.0.1: Permission denied",
            "--port", "tcp:444:interface=127.0.0.1", prefix=prefix,
        )


class PackagingTests(SynchronousTestCase):
    """
    A normal (non-editable) install ships the plugin correctly.
    """

    def test_wheelInstallFindsPlugin(self) -> None:
        """
        The wheel holds C{twisted/plugins/tlsreply_plugin.py} but never a
        C{twisted/__init__.py} or C{twisted/plugins/__init__.py} (either
        would hide every other Twisted plugin), and once installed on its
        own, away from this checkout, twist lists and runs C{tlsreply}.
        """
        work = temporaryDirectory(self)
        # Build from a copy, so that the build leaves nothing in the checkout.
        source = work / "source"
        shutil.copytree(CHECKOUT, source, ignore=shutil.ignore_patterns(
            ".*", "build", "dist", "*.egg-info", "_trial_temp*", "__pycache__", "certs",
        ))
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--no-build-isolation", "--wheel-dir", str(work), str(source)],
            check=True, capture_output=True, timeout=300,
        )
        [wheel] = work.glob("tlsreply-*.whl")
        names = set(zipfile.ZipFile(wheel).namelist())
        self.assertIn("twisted/plugins/tlsreply_plugin.py", names)
        self.assertIn("tlsreply/py.typed", names)
        self.assertNotIn("twisted/__init__.py", names)
        self.assertNotIn("twisted/plugins/__init__.py", names)
        self.assertFalse([n for n in names if n.startswith("tests/")])

        # A bare environment: the wheel in a target directory, the
        # dependencies from this environment's site-packages (added as a
        # plain path, so its editable-install .pth files are not read).
        target = work / "site"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
             "--target", str(target), str(wheel)],
            check=True, capture_output=True, timeout=300,
        )
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(target), sysconfig.get_paths()["purelib"]]
        )
        probe = (
            "import sys, tlsreply, twisted.plugins.tlsreply_plugin as p; "
            "print(tlsreply.__file__); print(p.__file__)"
        )
        where = subprocess.run(
            [sys.executable, "-S", "-c", probe], env=environment, cwd=work,
            capture_output=True, check=True,
        ).stdout.decode().split()
        self.assertEqual([Path(w).is_relative_to(target) for w in where], [True, True])
        listing = subprocess.run(
            [sys.executable, "-S", "-m", "twisted", "--help"], env=environment,
            cwd=work, capture_output=True,
        ).stdout.decode()
        self.assertRegex(listing, r"\btlsreply\b")

    def test_editableInstallFindsPlugin(self) -> None:
        """
        The development install (C{make}'s): an editable install in
        setuptools' default mode prints no deprecation notice, and after
        C{scripts/expose_checkout.py} twist lists C{tlsreply} and loads the
        plugin and the package from the checkout, away from it.
        """
        work = temporaryDirectory(self)
        source = work / "source"
        shutil.copytree(CHECKOUT, source, ignore=shutil.ignore_patterns(
            ".*", "build", "dist", "*.egg-info", "_trial_temp*", "__pycache__", "certs",
        ))
        target = work / "site"
        install = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
             "--target", str(target), "-e", str(source)],
            capture_output=True, timeout=300,
        )
        output = (install.stdout + install.stderr).decode()
        self.assertEqual(install.returncode, 0, output)
        self.assertNotRegex(output, r"(?i)transitional|deprecat|compat")

        expose = runpy.run_path(str(source / "scripts" / "expose_checkout.py"))
        pth = expose["exposeCheckout"](target)
        self.assertEqual(expose["exposeCheckout"](target), pth)  # again: the same
        self.assertEqual(pth.read_text(), f"{source}\n")

        # The install first on the path and as a site directory (its .pth
        # files are read; its editable finder must win over this
        # environment's, which has the same module name), then this
        # environment's dependencies as a plain path.
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(target), sysconfig.get_paths()["purelib"]]
        )
        inSite = f"import site; site.addsitedir({str(target)!r}); "
        probe = inSite + (
            "import tlsreply, twisted.plugins.tlsreply_plugin as p, tests; "
            "print(tlsreply.__file__); print(p.__file__); print(tests.__file__)"
        )
        where = subprocess.run(
            [sys.executable, "-S", "-c", probe], env=environment, cwd=work,
            capture_output=True, check=True,
        ).stdout.decode().split()
        self.assertEqual([Path(w).is_relative_to(source) for w in where], [True] * 3)
        listing = subprocess.run(
            [sys.executable, "-S", "-c",
             inSite + "import sys, runpy; sys.argv = ['twist', '--help']; "
             "runpy.run_module('twisted', run_name='__main__')"],
            env=environment, cwd=work, capture_output=True,
        ).stdout.decode()
        self.assertRegex(listing, r"\btlsreply\b")

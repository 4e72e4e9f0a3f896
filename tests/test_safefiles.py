"""
Every file tlsreply writes, never through a symbolic link and never with a
key or secret left readable by others: the scenario files of C{--scenario}
and of the testing API, C{--keylog}, C{--access-log}, the development
certificate, and L{tlsreply.tls.safefiles} beneath them all. A symbolic link
planted where tlsreply writes points at a victim file, which must come out
unchanged, with one line that names the link.
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    captureLogEvents,
    clientContext,
    fetchWithSSL,
    makeCertificates,
    temporaryDirectory,
)
from tests.test_plugin import SCRIPTS, startDaemon
from tlsreply import TLSPolicy, buildServerContexts, loadCredentials
from tlsreply.errors import ConfigurationError
from tlsreply.logs.access import AccessLog
from tlsreply.scenarios.base import (
    CA_FILE,
    CLIENT_CERTIFICATE_FILE,
    CLIENT_KEY_FILE,
)
from tlsreply.scenarios.ca import writePrivateKey
from tlsreply.scenarios.servers import buildScenario
from tlsreply.testing import IssuingCA, TestCA
from tlsreply.tls.devcert import PRIVATE_KEY_NAME, ensureDevelopmentCertificate
from tlsreply.tls.safefiles import (
    SECRET_MODE,
    UnsafeFileError,
    openToAppend,
    restrictToOwner,
    writeFile,
)

VICTIM = b"the victim's own bytes\n"


def plantLink(directory: Path, name: str) -> tuple[Path, Path]:
    """
    Make a victim file (mode 0644) outside C{directory}, and a symbolic
    link to it named C{name} in C{directory}; return (link, victim).
    """
    directory.mkdir(parents=True, exist_ok=True)
    victim = directory.parent / f"victim-of-{name}"
    victim.write_bytes(VICTIM)
    victim.chmod(0o644)
    link = directory / name
    link.symlink_to(victim)
    return link, victim


def runTlsreply(cwd: Path, *arguments: str) -> tuple[int, list[str]]:
    """
    Run C{twistd -n tlsreply} on an ephemeral port, expecting it to refuse
    to start; return its exit status and its non-empty output lines. One
    that starts serving instead is stopped after 20 seconds and fails the
    test.
    """
    command = [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
               "--port", "tcp:0:interface=127.0.0.1", *arguments]
    try:
        result = subprocess.run(
            command, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=20
        )
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode("utf-8", "replace")
        raise AssertionError(f"tlsreply started instead of refusing:\n{output}") from None
    text = (result.stdout + result.stderr).decode("utf-8", "replace")
    return result.returncode, [line for line in text.splitlines() if line.strip()]


class CommandLineTests(SynchronousTestCase):
    """
    C{twistd -n tlsreply}, run as an operator runs it, with links planted
    where it writes: one line naming the link, exit status 1, the victim
    unchanged.
    """

    def assertRefused(self, cwd: Path, link: Path, victim: Path, *arguments: str) -> None:
        status, lines = runTlsreply(cwd, *arguments)
        self.assertEqual(status, 1, lines)
        self.assertNotIn("Traceback", "\n".join(lines))
        errors = [line for line in lines if "tlsreply: " in line]
        self.assertEqual(len(errors), 1, lines)
        self.assertIn(f"{link}: a symbolic link", errors[0])
        self.assertEqual(victim.read_bytes(), VICTIM)
        self.assertEqual(stat.S_IMODE(victim.stat().st_mode), 0o644)
        self.assertTrue(link.is_symlink())

    def test_scenarioCAFileLink(self) -> None:
        """
        C{--scenario valid} with C{certs/scenario/ca.pem} a link to another
        file: refused, and the other file keeps its bytes (it was
        overwritten with the test CA).
        """
        workdir = temporaryDirectory(self)
        link, victim = plantLink(workdir / "certs" / "scenario", CA_FILE)
        self.assertRefused(workdir, link, victim, "--scenario", "valid")

    def test_scenarioClientKeyLink(self) -> None:
        """
        C{--scenario client-cert-required} with C{client.key} a link: the
        victim neither gets the key nor has its mode changed.
        """
        workdir = temporaryDirectory(self)
        link, victim = plantLink(workdir / "certs" / "scenario", CLIENT_KEY_FILE)
        self.assertRefused(workdir, link, victim, "--scenario", "client-cert-required")

    def test_scenarioKeyOfAnEarlierRunBecomesPrivate(self) -> None:
        """
        A C{client.key} and C{client.pem} left by an earlier run with mode
        0644 hold the new key, readable by their owner only, once the
        scenario serves; a client presenting them is served.
        """
        workdir = temporaryDirectory(self)
        directory = workdir / "certs" / "scenario"
        directory.mkdir(parents=True)
        for name in (CLIENT_KEY_FILE, CLIENT_CERTIFICATE_FILE):
            (directory / name).write_bytes(b"an earlier run's key\n")
            (directory / name).chmod(0o644)
        daemon, port = startDaemon(
            self,
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
             "--scenario", "client-cert-required"],
            workdir,
        )
        for name in (CLIENT_KEY_FILE, CLIENT_CERTIFICATE_FILE):
            path = directory / name
            self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600, name)
            self.assertIn(b"-----BEGIN PRIVATE KEY-----", path.read_bytes())
        context = clientContext(str(directory / CA_FILE))
        context.load_cert_chain(directory / CLIENT_CERTIFICATE_FILE)
        self.assertEqual(fetchWithSSL(port, context).data, b"test\n")
        self.assertEqual(daemon.stop(), 0)

    def test_keyLogLink(self) -> None:
        """
        C{--keylog} naming a link: refused (it appended session keys to
        the victim and made it 0600).
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        link, victim = plantLink(workdir / "logs", "keys.log")
        self.assertRefused(
            workdir, link, victim, "--cert", str(certificates.certificatePath),
            "--key", str(certificates.keyPath), "--keylog", str(link),
        )

    def test_accessLogLink(self) -> None:
        """
        C{--access-log} naming a link: refused.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        link, victim = plantLink(workdir / "logs", "access.log")
        self.assertRefused(
            workdir, link, victim, "--cert", str(certificates.certificatePath),
            "--key", str(certificates.keyPath), "--access-log", str(link),
        )

    def test_developmentKeyLink(self) -> None:
        """
        With no C{--cert}, a C{certs/dev-key.pem} that is a link: refused
        (the key would be written, or chmodded, through it).
        """
        workdir = temporaryDirectory(self)
        link, victim = plantLink(workdir / "certs", PRIVATE_KEY_NAME)
        self.assertRefused(workdir, link, victim)


class ScenarioFilesTests(SynchronousTestCase):
    """
    The testing API writes its files as the command line does.
    """

    def test_buildScenarioRefusesALink(self) -> None:
        """
        L{buildScenario} raises L{ConfigurationError} naming the link, and
        leaves the victim alone.
        """
        directory = temporaryDirectory(self) / "scenario"
        link, victim = plantLink(directory, CA_FILE)
        with self.assertRaises(ConfigurationError) as caught:
            buildScenario("valid", TestCA(), directory)
        self.assertIn(f"{link}: a symbolic link", str(caught.exception))
        self.assertEqual(victim.read_bytes(), VICTIM)

    def test_buildScenarioMakesAnOldKeyPrivate(self) -> None:
        """
        A client key file that existed with mode 0644 is replaced by one
        with mode 0600.
        """
        directory = temporaryDirectory(self)
        (directory / CLIENT_KEY_FILE).write_bytes(b"old\n")
        (directory / CLIENT_KEY_FILE).chmod(0o644)
        setup = buildScenario("client-cert-required", TestCA(), directory)
        assert setup.clientKeyPath is not None
        self.assertEqual(stat.S_IMODE(setup.clientKeyPath.stat().st_mode), 0o600)
        self.assertNotEqual(setup.clientKeyPath.read_bytes(), b"old\n")

    def test_writersRefuseLinks(self) -> None:
        """
        L{writePrivateKey}, L{TestCA.writeCertificate} and L{IssuingCA}
        raise L{UnsafeFileError} (an L{OSError}) for a link, and leave the
        victim alone.
        """
        directory = temporaryDirectory(self)
        ca = TestCA()
        _, key = ca.issueClientCertificate("client")
        link, victim = plantLink(directory, "written.pem")
        with self.assertRaises(UnsafeFileError):
            writePrivateKey(link, key)
        with self.assertRaises(UnsafeFileError):
            ca.writeCertificate(link)
        issued = directory / "issued"
        plantLink(issued, "001-alice.key")
        with self.assertRaises(OSError):
            IssuingCA(ca, issued).issueClientCertificate("alice")
        self.assertEqual(victim.read_bytes(), VICTIM)
        self.assertEqual((issued.parent / "victim-of-001-alice.key").read_bytes(), VICTIM)


class KeyLogTests(SynchronousTestCase):
    """
    L{TLSPolicy.keyLogPath}, as contexts are built (at start and on every
    reload).
    """

    def contexts(self, keyLog: Path) -> None:
        certificates = makeCertificates(temporaryDirectory(self))
        credentials = loadCredentials(certificates.certificatePath, certificates.keyPath)
        buildServerContexts([credentials], TLSPolicy(keyLogPath=keyLog))

    def test_link(self) -> None:
        """
        A link is refused with a L{ConfigurationError} naming it.
        """
        link, victim = plantLink(temporaryDirectory(self) / "logs", "keys.log")
        with self.assertRaises(ConfigurationError) as caught:
            self.contexts(link)
        self.assertIn(f"key-log file {link}: a symbolic link", str(caught.exception))
        self.assertEqual(victim.read_bytes(), VICTIM)
        self.assertEqual(stat.S_IMODE(victim.stat().st_mode), 0o644)

    def test_existingFileBecomesPrivate(self) -> None:
        """
        A key-log file that existed with mode 0644 is appended to and made
        0600.
        """
        path = temporaryDirectory(self) / "keys.log"
        path.write_bytes(b"# earlier\n")
        path.chmod(0o644)
        self.contexts(path)
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertEqual(path.read_bytes(), b"# earlier\n")

    def test_hardLink(self) -> None:
        """
        A file with another hard link is refused: appending would write the
        keys into the other name's file too, and the chmod would change it.
        """
        directory = temporaryDirectory(self)
        victim = directory / "victim"
        victim.write_bytes(VICTIM)
        victim.chmod(0o644)
        path = directory / "keys.log"
        os.link(victim, path)
        with self.assertRaises(ConfigurationError) as caught:
            self.contexts(path)
        self.assertIn("has another hard link", str(caught.exception))
        self.assertEqual(stat.S_IMODE(victim.stat().st_mode), 0o644)


class AccessLogTests(SynchronousTestCase):
    """
    The access log refuses a link at start and when it is reopened.
    """

    def test_reopenRefusesALink(self) -> None:
        """
        Reopened (SIGHUP, after logrotate) when a link now stands at its
        path, the access log logs one error and keeps writing to the file
        it had.
        """
        from twisted.internet.task import Clock

        directory = temporaryDirectory(self)
        path = directory / "access.log"
        log = AccessLog.toFile(str(path), Clock())
        path.rename(directory / "access.log.1")
        victim = directory / "victim"
        victim.write_bytes(VICTIM)
        path.symlink_to(victim)
        events = captureLogEvents(self)
        log.reopen()
        [error] = [e for e in events if e.get("log_level") is not None and e["log_level"].name == "error"]
        self.assertIn("a symbolic link", error["error"])
        log.connectionEnded("127.0.0.1:3", "reset", None)
        log.flush()
        self.assertEqual(victim.read_bytes(), VICTIM)
        self.assertIn("127.0.0.1:3", (directory / "access.log.1").read_text())


class DevelopmentCertificateTests(SynchronousTestCase):
    """
    The development certificate's folder holds files tlsreply makes and
    renews itself: a link there is refused.
    """

    def test_keyLink(self) -> None:
        """
        A C{dev-key.pem} link is a L{ConfigurationError} naming it; the
        victim is unchanged.
        """
        directory = temporaryDirectory(self) / "certs"
        link, victim = plantLink(directory, PRIVATE_KEY_NAME)
        with self.assertRaises(ConfigurationError) as caught:
            ensureDevelopmentCertificate(directory)
        self.assertIn(f"{link}: a symbolic link", str(caught.exception))
        self.assertEqual(victim.read_bytes(), VICTIM)
        self.assertEqual(stat.S_IMODE(victim.stat().st_mode), 0o644)

    def test_lockLink(self) -> None:
        """
        The lock file, too, is never opened through a link.
        """
        directory = temporaryDirectory(self) / "certs"
        link, victim = plantLink(directory, ".dev-cert.lock")
        with self.assertRaises(ConfigurationError) as caught:
            ensureDevelopmentCertificate(directory)
        self.assertIn(f"{link}: a symbolic link", str(caught.exception))
        self.assertEqual(victim.read_bytes(), VICTIM)


class SafeFilesTests(SynchronousTestCase):
    """
    L{tlsreply.tls.safefiles}, the one module every writer goes through.
    """

    def test_writeFileReplacesWhole(self) -> None:
        """
        L{writeFile} replaces the file (a new inode: a hard link to the old
        one keeps the old bytes), with the mode asked for, and leaves no
        temporary file.
        """
        directory = temporaryDirectory(self)
        path = directory / "key.pem"
        path.write_bytes(b"old\n")
        path.chmod(0o644)
        os.link(path, directory / "other-name")
        writeFile(path, b"new\n", mode=SECRET_MODE)
        self.assertEqual(path.read_bytes(), b"new\n")
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertEqual((directory / "other-name").read_bytes(), b"old\n")
        self.assertEqual(sorted(os.listdir(directory)), ["key.pem", "other-name"])

    def test_writeFileDefaultMode(self) -> None:
        """
        Without a mode, a written file has the mode a new file gets (0666
        less the umask).
        """
        path = temporaryDirectory(self) / "ca.pem"
        umask = os.umask(0o022)
        self.addCleanup(os.umask, umask)
        writeFile(path, b"certificate\n")
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o644)

    def test_writeFileFailureLeavesNothing(self) -> None:
        """
        When the rename fails (a folder stands at the path), the temporary
        file is removed and the error is the operating system's.
        """
        directory = temporaryDirectory(self)
        (directory / "taken").mkdir()
        with self.assertRaises(IsADirectoryError):
            writeFile(directory / "taken", b"data")
        self.assertEqual(os.listdir(directory), ["taken"])

    def test_danglingLink(self) -> None:
        """
        A link to nothing is refused too: writing would create its target.
        """
        directory = temporaryDirectory(self)
        link = directory / "ca.pem"
        link.symlink_to(directory / "nowhere")
        with self.assertRaises(UnsafeFileError) as caught:
            writeFile(link, b"x")
        self.assertEqual(caught.exception.filename, str(link))
        with self.assertRaises(UnsafeFileError):
            openToAppend(link)
        self.assertFalse((directory / "nowhere").exists())

    def test_appendFIFO(self) -> None:
        """
        A secret is never appended to a FIFO (or a device), and opening one
        does not wait for a reader.
        """
        fifo = temporaryDirectory(self) / "keys.log"
        os.mkfifo(fifo, 0o644)
        result: list[BaseException] = []

        def attempt() -> None:
            try:
                openToAppend(fifo, secret=True)
            except OSError as e:
                result.append(e)

        thread = threading.Thread(target=attempt, daemon=True)
        thread.start()
        thread.join(5)
        self.assertFalse(thread.is_alive(), "opening a FIFO waited for a reader")
        [error] = result
        self.assertIsInstance(error, UnsafeFileError)
        self.assertIn("not a regular file", str(error))
        self.assertEqual(stat.S_IMODE(fifo.stat().st_mode), 0o644)

    def test_appendKeepsAppending(self) -> None:
        """
        L{openToAppend} appends (it never truncates), creates a missing
        file, and gives a secret mode 0600 on the open descriptor.
        """
        path = temporaryDirectory(self) / "keys.log"
        with openToAppend(path, secret=True) as stream:
            stream.write(b"one\n")
        path.chmod(0o640)
        with openToAppend(path, secret=True) as stream:
            stream.write(b"two\n")
        self.assertEqual(path.read_bytes(), b"one\ntwo\n")
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)

    def test_restrictToOwner(self) -> None:
        """
        L{restrictToOwner} makes a file 0600 and refuses a link (whose
        target it would have changed).
        """
        directory = temporaryDirectory(self)
        path = directory / "key.pem"
        path.write_bytes(b"key")
        path.chmod(0o644)
        restrictToOwner(path)
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        link, victim = plantLink(directory / "sub", "key.pem")
        with self.assertRaises(UnsafeFileError):
            restrictToOwner(link)
        self.assertEqual(stat.S_IMODE(victim.stat().st_mode), 0o644)

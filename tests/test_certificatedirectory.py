"""
C{--cert-dir}: which files a certificate folder may hold, and that no file
tlsreply would read is ever dropped without a word.

A file whose name tlsreply reads (C{*.pem}, C{*.crt}, C{*.cer}, C{*.key},
C{*.ocsp}, not hidden) is used, or it is an error naming the file: at start
the server does not start (one line, exit status 1), and on a reload the
whole reload fails and the previous certificates stay in use. Every other
name is ignored, as the README and docs/deployment.md say. A FIFO or a
device is never opened, so that it cannot hang the server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.trial.unittest import SynchronousTestCase

from tests.policyserver import writeCombined
from tests.support import LOOPBACK, clientContext, temporaryDirectory
from tests.test_metrics import scrape, value
from tests.test_plugin import SCRIPTS, Daemon
from tlsreply.errors import ConfigurationError
from tlsreply.tls.certificatedirectory import (
    IGNORED_EXAMPLES,
    isIgnored,
    loadCertificateDirectory,
)
from tlsreply.tls.credentials import ServerCredentials

MALFORMED_CERTIFICATE = b"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n"


def writeSeparate(folder: Path, stem: str, leaf: trustme.LeafCert) -> Path:
    """
    Write C{stem.pem} (the certificate and its chain) and C{stem.key}.
    """
    path = folder / f"{stem}.pem"
    path.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(folder / f"{stem}.key"))
    return path


def namesOf(found: list[ServerCredentials]) -> list[tuple[str, ...]]:
    """
    The names of each loaded certificate, in load order.
    """
    return [each.subjectNames for each in found]


class UnblockFIFO:
    """
    A guard for a test that puts a FIFO where a loader might open it: if
    nothing has been read from it after C{seconds}, open its writing end
    and close it, so that a reader blocked in C{open} or C{read} gets an
    end of file instead of hanging the test run. The test then sees how
    long the load took.
    """

    def __init__(self, testCase: SynchronousTestCase, path: Path, seconds: float = 5.0):
        self._done = threading.Event()
        self._path = path
        self._seconds = seconds
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        testCase.addCleanup(thread.join)
        testCase.addCleanup(self._done.set)

    def _run(self) -> None:
        if self._done.wait(self._seconds):
            return
        try:
            descriptor = os.open(self._path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader: nothing is blocked on it
            return
        os.close(descriptor)


class LoadTests(SynchronousTestCase):
    """
    L{loadCertificateDirectory}: every file it would read is used or is an
    error naming it; every other name is ignored.
    """

    def setUp(self) -> None:
        self.ca = trustme.CA()
        self.folder = temporaryDirectory(self) / "certs"
        self.folder.mkdir()
        self.a = self.ca.issue_cert("a.test")
        writeSeparate(self.folder, "a", self.a)

    def assertRefused(self, *fragments: str) -> str:
        """
        Loading the folder fails with one line holding every fragment.
        """
        with self.assertRaises(ConfigurationError) as caught:
            loadCertificateDirectory(self.folder)
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message

    def test_ignoredNames(self) -> None:
        """
        Names tlsreply does not read are ignored whatever they hold: other
        extensions (a README, notes, a certificate request, editor and
        package-manager backups of certificate files), hidden files (an
        editor's swap and lock files, a Kubernetes Secret volume's
        C{..data}) and sub-folders.
        """
        junk = b"-----BEGIN CERTIFICATE-----\nnot really\n"
        for name in ("README", "README.md", "notes.txt", "a.csr", "a.pem.bak",
                     "a.pem~", "a.pem.orig", "a.key.dpkg-old", "a.pem.dpkg-new",
                     "a.crt.rpmsave", "#a.pem#", ".a.pem.swp", ".#a.pem", ".hidden.pem",
                     ".b.key"):
            (self.folder / name).write_bytes(junk)
        # A hidden certificate without its key is ignored too, not refused.
        (self.folder / ".old.pem").write_bytes(self.a.cert_chain_pems[0].bytes())
        timestamped = self.folder / "..2024_01_01_00_00_00.1"
        timestamped.mkdir()
        (timestamped / "x.pem").write_bytes(junk)
        (self.folder / "..data").symlink_to(timestamped.name)
        (self.folder / "sub.pem").mkdir()
        self.assertEqual(namesOf(loadCertificateDirectory(self.folder)), [("a.test",)])

    def test_ignoredPatternsAreTheDocumentedOnes(self) -> None:
        """
        The examples of ignored names that the docs give are ignored, and
        the names a certificate folder is read for are not.
        """
        for name in IGNORED_EXAMPLES:
            self.assertTrue(isIgnored(name), name)
        for name in ("a.pem", "a.crt", "a.cer", "a.key", "a.ocsp", "A.PEM", "x.y.Key"):
            self.assertFalse(isIgnored(name), name)
        for document in ("README.md", "docs/deployment.md"):
            text = (Path(__file__).parent.parent / document).read_text()
            for name in IGNORED_EXAMPLES:
                self.assertIn(f"`{name}`", text, f"{document} does not name {name}")

    def test_symbolicLinksToRegularFiles(self) -> None:
        """
        Symbolic links to regular files are followed, as in Let's Encrypt's
        C{live/} folder or a Kubernetes Secret volume.
        """
        archive = self.folder.parent / "archive"
        archive.mkdir()
        b = self.ca.issue_cert("b.test")
        writeSeparate(archive, "b1", b)
        (self.folder / "b.pem").symlink_to(archive / "b1.pem")
        (self.folder / "b.key").symlink_to(archive / "b1.key")
        self.assertEqual(
            namesOf(loadCertificateDirectory(self.folder)), [("a.test",), ("b.test",)]
        )

    def test_junk(self) -> None:
        """
        A certificate file that holds no certificate is refused by name,
        rather than skipped (with it, a name would silently stop being
        served).
        """
        path = self.folder / "b.pem"
        path.write_bytes(b"this is not a certificate\n")
        self.assertRefused(str(path), "holds no PEM certificate")

    def test_empty(self) -> None:
        """
        An empty certificate file (half-written, or emptied) is refused as
        empty; so are an empty key file and an empty OCSP response.
        """
        path = self.folder / "b.crt"
        path.write_bytes(b"")
        self.assertRefused(f"certificate file {path} is empty")
        path.unlink()
        key = self.folder / "a.key"
        key.write_bytes(b"")
        self.assertRefused(f"private key file {key} is empty")
        writeSeparate(self.folder, "a", self.a)
        ocsp = self.folder / "a.ocsp"
        ocsp.write_bytes(b"")
        self.assertRefused(f"OCSP response file {ocsp} is empty")

    def test_malformedCertificate(self) -> None:
        """
        A malformed PEM certificate is reported as malformed, not as a
        certificate without a key, with or without a key beside it.
        """
        path = self.folder / "b.pem"
        path.write_bytes(MALFORMED_CERTIFICATE)
        message = self.assertRefused(str(path), "malformed PEM certificate")
        self.assertNotIn("has no key", message)
        pem = self.a.cert_chain_pems[0].bytes()
        path.write_bytes(pem[: len(pem) // 2])
        message = self.assertRefused(str(path), "malformed PEM certificate")
        self.assertNotIn("has no key", message)

    def test_malformedKeyInCertificateFile(self) -> None:
        """
        A certificate file whose key is cut off (half-written) is reported
        as holding a malformed key, not as having none.
        """
        path = self.folder / "b.pem"
        b = self.ca.issue_cert("b.test")
        key = b.private_key_pem.bytes()
        path.write_bytes(b.cert_chain_pems[0].bytes() + key[: len(key) // 2])
        message = self.assertRefused(str(path), "malformed PEM private key")
        self.assertNotIn("has no key", message)

    def test_keyOnly(self) -> None:
        """
        A certificate file that holds only a private key is refused: it
        would be used by no certificate.
        """
        path = self.folder / "b.pem"
        path.write_bytes(self.ca.issue_cert("b.test").private_key_pem.bytes())
        self.assertRefused(str(path), "holds a private key but no certificate")

    def test_derCertificate(self) -> None:
        """
        A DER certificate (as Windows writes C{.cer} files) is refused with
        the way to convert it.
        """
        leaf = x509.load_pem_x509_certificate(self.a.cert_chain_pems[0].bytes())
        path = self.folder / "b.cer"
        path.write_bytes(leaf.public_bytes(serialization.Encoding.DER))
        self.assertRefused(str(path), "holds no PEM certificate", "DER", "openssl x509")

    def test_keyWithoutCertificate(self) -> None:
        """
        A key or OCSP response with no certificate of its name beside it is
        refused: the certificate was probably misnamed.
        """
        key = self.folder / "b.key"
        key.write_bytes(self.ca.issue_cert("b.test").private_key_pem.bytes())
        self.assertRefused(f"private key file {key} belongs to no certificate")
        key.unlink()
        ocsp = self.folder / "b.ocsp"
        ocsp.write_bytes(b"0")
        self.assertRefused(f"OCSP response file {ocsp} belongs to no certificate")

    def test_keyBesideCertificateThatHoldsItsKey(self) -> None:
        """
        A C{NAME.key} beside a C{NAME.pem} that holds its own key would not
        be used: refused, rather than silently preferring one.
        """
        b = self.ca.issue_cert("b.test")
        writeCombined(self.folder / "b.pem", b)
        b.private_key_pem.write_to_path(str(self.folder / "b.key"))
        self.assertRefused(f"private key file {self.folder / 'b.key'} is not used",
                           "b.pem holds its own key")

    def test_extensionsInAnyCase(self) -> None:
        """
        Upper-case extensions are read, and C{NAME.KEY} is the key of
        C{NAME.CRT}.
        """
        b = self.ca.issue_cert("b.test")
        (self.folder / "B.CRT").write_bytes(b.cert_chain_pems[0].bytes())
        b.private_key_pem.write_to_path(str(self.folder / "B.KEY"))
        self.assertEqual(
            sorted(namesOf(loadCertificateDirectory(self.folder))), [("a.test",), ("b.test",)]
        )

    def assertNotOpened(self, path: Path, *fragments: str) -> None:
        """
        Loading the folder with C{path} in it is refused at once, naming
        C{path}, without opening it (opening a FIFO blocks until a writer
        comes; L{UnblockFIFO} ends that after 5 s).
        """
        started = time.monotonic()
        self.assertRefused(str(path), *fragments)
        self.assertLess(time.monotonic() - started, 4)

    def test_fifo(self) -> None:
        """
        A FIFO named like a certificate, or a symbolic link to one, is
        refused without being opened.
        """
        fifo = self.folder / "b.pem"
        os.mkfifo(fifo)
        UnblockFIFO(self, fifo)
        self.assertNotOpened(fifo, "is a FIFO, not a regular file")
        fifo.rename(self.folder.parent / "fifo")
        (self.folder / "b.pem").symlink_to(self.folder.parent / "fifo")
        UnblockFIFO(self, self.folder.parent / "fifo")
        self.assertNotOpened(fifo, "is a symbolic link to a FIFO, not a regular file")
        (self.folder / "b.pem").unlink()
        (self.folder / "a.key").unlink()
        os.mkfifo(self.folder / "a.key")
        UnblockFIFO(self, self.folder / "a.key")
        self.assertNotOpened(self.folder / "a.key", "is a FIFO")

    def test_fifoSwappedInAfterTheCheck(self) -> None:
        """
        A FIFO put in the place of a regular file between the check and the
        open (here: a C{stat} that still sees the file it replaced) does not
        block the open, and is refused once open.
        """
        path = self.folder / "b.pem"
        path.write_bytes(b"")
        before = os.stat(path)
        path.unlink()
        os.mkfifo(path)
        UnblockFIFO(self, path)
        realStat = os.stat

        def staleStat(where: object, *args: object, **kwargs: object) -> os.stat_result:
            if os.fspath(where) == os.fspath(path):  # type: ignore[call-overload]
                return before
            return realStat(where, *args, **kwargs)  # type: ignore[arg-type]

        self.patch(os, "stat", staleStat)
        self.assertNotOpened(path, "is a FIFO, not a regular file")

    def test_devices(self) -> None:
        """
        A symbolic link to a device (C{/dev/zero} would never end) is
        refused without being opened; so is a Unix socket.
        """
        for name, target in [("z.pem", "/dev/zero"), ("n.key", "/dev/null")]:
            link = self.folder / name
            link.symlink_to(target)
            self.assertNotOpened(link, "is a symbolic link to a character device")
            link.unlink()
        listening = socket.socket(socket.AF_UNIX)
        self.addCleanup(listening.close)
        listening.bind(str(self.folder / "s.pem"))
        self.assertNotOpened(self.folder / "s.pem", "is a socket, not a regular file")

    def test_brokenLink(self) -> None:
        """
        A symbolic link to nothing (a rotation that went wrong) is refused.
        """
        link = self.folder / "b.pem"
        link.symlink_to(self.folder / "gone.pem")
        self.assertRefused(str(link), "is a symbolic link to", "gone.pem", "does not exist")

    def test_unreadable(self) -> None:
        """
        A file that cannot be read is refused with the reason.
        """
        if os.geteuid() == 0:
            self.skipTest("root reads every file")
        path = self.folder / "a.key"
        path.chmod(0)
        self.assertRefused(str(path), "Permission denied")


# The real server.


def twistd(*arguments: str) -> list[str]:
    """
    The command that runs the server in the foreground as operators do.
    """
    return [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
            "--port", f"tcp:0:interface={LOOPBACK}", *arguments]


def runBounded(command: list[str], cwd: Path, timeout: float = 20.0) -> tuple[int, list[str]]:
    """
    Run a command that should fail at start; its status and its non-empty
    output lines. A command still running after C{timeout} (a server that
    started, or hangs) fails the test.
    """
    try:
        result = subprocess.run(
            command, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"still running after {timeout}s: {e.output!r}") from None
    text = (result.stdout + result.stderr).decode("utf-8", "replace")
    return result.returncode, [line for line in text.splitlines() if line.strip()]


class StartTests(SynchronousTestCase):
    """
    At start, a file in the certificate folder that tlsreply cannot use
    stops C{tlsreply serve} and C{twistd -n tlsreply}: one line naming the
    file, exit status 1, within seconds.
    """

    def setUp(self) -> None:
        self.workdir = temporaryDirectory(self)
        self.folder = self.workdir / "certs"
        self.folder.mkdir()
        writeSeparate(self.folder, "a", trustme.CA().issue_cert("a.test"))

    def assertStops(self, path: Path, fragment: str) -> None:
        """
        Both commands exit 1 at once, with one line that names C{path} and
        holds C{fragment}, and no traceback.
        """
        for command in (
            [str(SCRIPTS / "tlsreply"), "serve", "--port", f"tcp:0:interface={LOOPBACK}",
             "--cert-dir", str(self.folder)],
            twistd("--cert-dir", str(self.folder)),
        ):
            status, lines = runBounded(command, self.workdir)
            self.assertEqual((status, len(lines)), (1, 1), lines)
            [line] = lines
            self.assertTrue(line.startswith("tlsreply: "), line)
            self.assertIn(str(path), line)
            self.assertIn(fragment, line)

    def test_junk(self) -> None:
        """
        A C{.pem} of junk.
        """
        path = self.folder / "b.pem"
        path.write_bytes(b"junk\n")
        self.assertStops(path, "holds no PEM certificate")

    def test_empty(self) -> None:
        """
        An empty C{.pem}.
        """
        path = self.folder / "b.pem"
        path.write_bytes(b"")
        self.assertStops(path, "is empty")

    def test_fifo(self) -> None:
        """
        A FIFO named C{x.pem}: refused, not opened, nothing hangs.
        """
        path = self.folder / "x.pem"
        os.mkfifo(path)
        self.assertStops(path, "is a FIFO, not a regular file")

    def test_malformed(self) -> None:
        """
        A malformed PEM certificate says it is malformed.
        """
        path = self.folder / "b.pem"
        path.write_bytes(MALFORMED_CERTIFICATE)
        self.assertStops(path, "holds a malformed PEM certificate")


def servedNames(port: int, caPath: Path, serverName: str) -> list[str]:
    """
    Connect with a verifying client asking for C{serverName}, read the
    reply, and return the DNS names of the certificate the server sent.
    """
    context = clientContext(str(caPath))
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=serverName) as tls:
            der = tls.getpeercert(binary_form=True)
            while tls.recv(100):
                pass
    assert der is not None
    san = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    return san.value.get_values_for_type(x509.DNSName)


class ReloadTests(SynchronousTestCase):
    """
    A real C{twistd -n tlsreply --cert-dir ... --metrics ...}: a SIGHUP
    that finds a file it cannot use fails the whole reload.
    """

    def test_emptiedCertificateFailsTheReload(self) -> None:
        """
        Files with ignored names (a README, a C{.bak}) do not stop the
        server. When one certificate file is emptied, a SIGHUP fails: one
        error line names the file, C{tlsreply_reloads_total{outcome=
        "failure"}} counts it, and the name it held is still served (with
        its certificate, over a real handshake). A FIFO on the next
        reload fails it too, at once. Once the folder is right again, a
        reload serves both names.
        """
        workdir = temporaryDirectory(self)
        folder = workdir / "certs"
        folder.mkdir()
        ca = trustme.CA()
        caPath = workdir / "ca.pem"
        ca.cert_pem.write_to_path(str(caPath))
        writeSeparate(folder, "a", ca.issue_cert("a.test"))
        b = writeCombined(folder / "b.pem", ca.issue_cert("b.test"))
        (folder / "README").write_text("The certificates of a.test and b.test.\n")
        (folder / "b.pem.bak").write_bytes(b"")
        daemon = Daemon(
            twistd("--cert-dir", str(folder), "--metrics", f"tcp:0:interface={LOOPBACK}"),
            workdir,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        # The metrics port is bound and logged before the server's line.
        metricsPort = int(daemon.waitFor(r"metrics on 127\.0\.0\.1:(\d+)").group(1))
        port = int(daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\]").group(1))
        self.assertEqual(servedNames(port, caPath, "b.test"), ["b.test"])

        def assertReloads(success: int, failure: int) -> None:
            # The endpoint renders at most once a second: scrape until the
            # counts show the reload, or fail with what was seen.
            deadline = time.monotonic() + 10
            while True:
                text = scrape(metricsPort)
                seen = tuple(
                    value(text, "tlsreply_reloads_total", outcome=outcome)
                    for outcome in ("success", "failure")
                )
                if seen == (success, failure) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(seen, (success, failure))

        def reload() -> str:
            seen = len(daemon.output)
            daemon.process.send_signal(signal.SIGHUP)
            line = daemon.waitFor(r"reload failed|reloaded: serving").string
            self.assertIsNone(daemon.process.poll())
            errors = [each for each in daemon.output[seen:] if "#error]" in each]
            self.assertEqual(errors, [line] if "reload failed" in line else [])
            return line

        assertReloads(0, 0)
        b.write_bytes(b"")
        line = reload()
        self.assertIn(f"reload failed, still serving the previous certificates: "
                      f"certificate file {b} is empty", line)
        assertReloads(0, 1)
        self.assertEqual(servedNames(port, caPath, "b.test"), ["b.test"])
        self.assertEqual(servedNames(port, caPath, "a.test"), ["a.test"])

        writeCombined(b, ca.issue_cert("b.test"))
        fifo = folder / "c.pem"
        os.mkfifo(fifo)
        line = reload()
        self.assertIn(f"{fifo} is a FIFO, not a regular file", line)
        assertReloads(0, 2)
        self.assertEqual(servedNames(port, caPath, "b.test"), ["b.test"])

        fifo.unlink()
        self.assertIn("reloaded: serving 2 certificate(s)", reload())
        assertReloads(1, 2)
        self.assertEqual(daemon.stop(), 0)


"""
What an embedder relies on: the public names, the service's reading of the
policy, and the README's C{.tac} and trial examples, run as a user's files.
"""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import sys
from dataclasses import fields

from twisted.internet import reactor
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.ssl import CertificateOptions, TLSVersion
from twisted.trial.unittest import SynchronousTestCase

import tlsreply
from tests.support import (
    LOOPBACK,
    README,
    clientContext,
    fetchWithSSL,
    makeCertificates,
    readmeExample,
    runCommand,
    temporaryDirectory,
)
from tests.test_lifecycle import peerCertificateFingerprint
from tests.test_plugin import SCRIPTS, Daemon
from tlsreply import (
    ConnectionRecord,
    ReloadableContexts,
    ReplyFactory,
    TLSPolicy,
    TLSReplyService,
    buildServerContexts,
    loadCredentials,
)


class PublicNamesTests(SynchronousTestCase):
    """
    C{tlsreply.__all__} is the embedding API (that each name resolves is
    checked in L{tests.test_plugin.DiscoveryTests}).
    """

    def test_whatEmbeddersNeedIsPublic(self) -> None:
        """
        Building replies (escapes and HTTP), the lifecycle for a C{.tac}
        and the buffered access log are public, not only the server parts.
        """
        self.assertEqual(tlsreply.decodeReplyText("ok\\r\\n"), b"ok\r\n")
        response = tlsreply.httpResponse(b"ok")
        self.assertTrue(response.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(response.endswith(b"\r\n\r\nok"))
        for name in ("ServerLifecycle", "AccessLog", "ReloadableContexts", "ConnectionRecord"):
            self.assertIn(name, tlsreply.__all__)

    def test_unknownNameIsAnAttributeError(self) -> None:
        with self.assertRaises(AttributeError):
            tlsreply.notAName  # noqa: B018


class ServicePolicyTests(SynchronousTestCase):
    """
    L{TLSReplyService} reports the policy its contexts follow, so an
    embedder states it once.
    """

    def setUp(self) -> None:
        certificates = makeCertificates(temporaryDirectory(self))
        self.credentials = loadCredentials(
            str(certificates.certificatePath), str(certificates.keyPath)
        )
        self.policy = TLSPolicy(minimumVersion=TLSVersion.TLSv1_3, alpnProtocols=("h2",))

    def service(
        self, contexts: IOpenSSLServerConnectionCreator, policy: TLSPolicy | None = None
    ) -> TLSReplyService:
        return TLSReplyService.fromDescriptions(
            reactor, ["tcp:0"], contexts, ReplyFactory(b"x", clock=reactor), policy=policy
        )

    def test_fromServerContexts(self) -> None:
        contexts = buildServerContexts(self.credentials, self.policy)
        self.assertIs(self.service(contexts).policy, self.policy)

    def test_fromReloadableContexts(self) -> None:
        contexts = buildServerContexts(self.credentials, self.policy)
        reloadable = ReloadableContexts(contexts, lambda: contexts)
        self.assertIs(self.service(reloadable).policy, self.policy)

    def test_otherContextsReportTheDefaults(self) -> None:
        """
        Contexts that do not say what they follow (Twisted's own
        L{CertificateOptions}) are reported with the default policy, unless
        told otherwise.
        """
        options = CertificateOptions()
        self.assertEqual(self.service(options).policy, TLSPolicy())
        self.assertIs(self.service(options, self.policy).policy, self.policy)


class TacExampleTests(SynchronousTestCase):
    """
    The README's C{.tac} file, run by C{twistd -ny}: it serves, reloads its
    certificate on SIGHUP and exits 0 on SIGTERM.
    """

    def test_tacReloadsOnSighup(self) -> None:
        workdir = temporaryDirectory(self)
        first = makeCertificates(workdir / "first")
        second = makeCertificates(workdir / "second")
        bothCAs = workdir / "both.pem"
        bothCAs.write_bytes(first.caPath.read_bytes() + second.caPath.read_bytes())
        shutil.copy(first.certificatePath, workdir / "cert.pem")
        shutil.copy(first.keyPath, workdir / "key.pem")
        example = readmeExample("# app.tac: twistd -n --pidfile= -y app.tac")
        # The one change: an ephemeral port on the loopback for 8443.
        self.assertIn('"tcp:8443"', example)
        tac = workdir / "app.tac"
        tac.write_text(example.replace('"tcp:8443"', f'"tcp:0:interface={LOOPBACK}"'))

        daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "-y", str(tac)], workdir
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        port = int(daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\]").group(1))
        result = fetchWithSSL(port, clientContext(str(bothCAs)))
        self.assertEqual(result.data, b"hello from my app\n")
        before = peerCertificateFingerprint(port, str(bothCAs))

        shutil.copy(second.certificatePath, workdir / "cert.pem")
        shutil.copy(second.keyPath, workdir / "key.pem")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.waitFor("reloaded: serving 1 certificate")
        self.assertNotEqual(peerCertificateFingerprint(port, str(bothCAs)), before)
        self.assertIsNone(daemon.process.poll())
        self.assertEqual(daemon.stop(), 0)
        self.assertNotIn("Traceback", "".join(daemon.output))


class TrialExampleTests(SynchronousTestCase):
    """
    The README's trial example passes as a user's test file, run by trial.
    """

    def test_trialExamplePasses(self) -> None:
        """
        The file passes when run with the command the README gives right
        after it, from the folder that holds it: a new user cannot guess
        that the installed C{trial} does not look in the current folder.
        """
        workdir = temporaryDirectory(self)
        (workdir / "test_my_twisted_client.py").write_text(
            readmeExample("# test_my_twisted_client.py")
        )
        text = README.read_text()
        after = text[text.index("# test_my_twisted_client.py") :]
        commands = re.search(r"```\n\n[^`]*```console\n\$ (.*)\n```", after)
        assert commands is not None, "no command after the trial example"
        command = shlex.split(commands.group(1))
        self.assertEqual(command[:3], ["python", "-m", "twisted.trial"])
        result = runCommand([sys.executable, *command[1:]], cwd=workdir, timeout=60)
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        self.assertEqual(result.returncode, 0, output)
        self.assertIn("PASSED (successes=1)", output)


class RecordFieldsTests(SynchronousTestCase):
    """
    The README's "What is recorded" names every field of
    L{ConnectionRecord}, so a field added to records is documented.
    """

    def test_readmeListsEveryField(self) -> None:
        text = README.read_text()
        start = text.index("### What is recorded")
        section = text[start : text.index("\n### ", start + 1)]
        named = set(re.findall(r"`([a-zA-Z][a-zA-Z0-9]*)`", section))
        expected = {f.name for f in fields(ConnectionRecord)} | {"handshakeFailed"}
        self.assertEqual(expected - named, set())
